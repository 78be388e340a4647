"""Admin pages for the API: bearer tokens (create, list with last use, revoke) and webhooks
(subscriptions, every delivery attempt, replay, secret rotation). Admins only; others get 404.

A new token or secret is shown once, in the page answering the POST that created it; only its
hash (tokens) or the secret itself for signing (webhooks) is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from api import selectors
from api.models import WebhookEvent, WebhookSubscription
from api.tokens import TokenError, token_create, token_revoke
from api.webhooks import subscription_create, subscription_rotate_secret

from .selectors import read_choices


def may_admin_api(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


def api_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not may_admin_api(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


class TokenForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="Which service or person uses it")
    user = forms.ModelChoiceField(
        queryset=None,
        help_text="The token acts as this user: an agent's service user, or yourself (a person's token is "
        "issued only by that person)",
    )
    rate_per_minute = forms.IntegerField(min_value=1, max_value=100000, initial=120, label="Calls per minute")

    def __init__(self, *args: Any, issuer: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = selectors.token_users(issuer)


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=120)
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)
    agent = forms.ModelChoiceField(
        queryset=selectors.webhook_agents(),
        required=False,
        empty_label="Every agent",
        help_text="Only this agent's journeys",
    )


@require_http_methods(["GET", "POST"])
@api_admin_required
def token_list(request: HttpRequest) -> HttpResponse:
    form = read_choices(TokenForm(request.POST or None, issuer=request.user))
    created_raw = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _, created_raw = token_create(
                    user=form.cleaned_data["user"],
                    name=form.cleaned_data["name"],
                    created_by=request.user,
                    rate_per_minute=form.cleaned_data["rate_per_minute"],
                )
            except TokenError as exc:
                form.add_error(None, str(exc))
                status = 400
            else:
                form = read_choices(TokenForm(issuer=request.user))
        else:
            status = 400
    tokens = selectors.token_rows()
    context = {"form": form, "tokens": tokens, "created_raw": created_raw, "audit_url": reverse("audit:search")}
    return render(request, "api/tokens.html", context, status=status)


@require_POST
@api_admin_required
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    if not selectors.token_exists(pk):
        raise Http404("No such token.")
    try:
        token = token_revoke(token_id=pk, revoked_by=request.user)
    except TokenError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Token {token.prefix}… revoked; its next call is refused.")
    return redirect("api_tokens")


@require_http_methods(["GET", "POST"])
@api_admin_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    form = read_choices(WebhookForm(request.POST or None))
    created_secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            _, created_secret = subscription_create(
                name=data["name"], url=data["url"], events=data["events"], agent=data["agent"], user=request.user
            )
            form = read_choices(WebhookForm())
        else:
            status = 400
    subs = selectors.subscriptions()
    return render(
        request, "api/webhooks.html", {"form": form, "subs": subs, "created_secret": created_secret}, status=status
    )


def _subscription_or_404(pk: int) -> WebhookSubscription:
    sub = selectors.subscription_or_none(pk)
    if sub is None:
        raise Http404("No such webhook.")
    return sub


@require_http_methods(["GET"])
@api_admin_required
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sub = _subscription_or_404(pk)
    deliveries = selectors.recent_deliveries(sub)
    return render(request, "api/webhook_detail.html", {"sub": sub, "deliveries": deliveries, "new_secret": None})


@require_POST
@api_admin_required
def webhook_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    sub = _subscription_or_404(pk)
    sub, secret = subscription_rotate_secret(subscription_id=sub.pk, user=request.user)
    deliveries = selectors.recent_deliveries(sub)
    return render(request, "api/webhook_detail.html", {"sub": sub, "deliveries": deliveries, "new_secret": secret})


@require_POST
@api_admin_required
def webhook_replay(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = selectors.delivery_or_none(pk)
    if delivery is None:
        raise Http404("No such delivery.")
    from api.webhooks import delivery_attempt

    attempt = delivery_attempt(delivery_id=delivery.pk, replay_by=request.user)
    if attempt is None:
        messages.error(request, "That delivery is being sent right now; try again in a moment.")
    elif attempt.ok:
        messages.success(request, f"Delivery {delivery.pk} replayed: HTTP {attempt.status_code}.")
    else:
        messages.error(request, f"Delivery {delivery.pk} replay failed: {attempt.error}")
    return redirect("webhook_detail", pk=delivery.subscription_id)
