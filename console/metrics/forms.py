from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from journeys.access import definitions_for
from journeys.models import JourneyDefinition

from .definitions import Window

MAX_DAYS = 366


class MetricsFilter(forms.Form):
    definition = forms.ModelChoiceField(
        queryset=JourneyDefinition.objects.none(),
        required=False,
        empty_label="All my journeys",
        to_field_name="key",
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    compare_since = forms.DateField(
        required=False,
        label="Compare with, from",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    compare_until = forms.DateField(
        required=False,
        label="to",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].queryset = definitions_for(user)

    def clean(self):
        data = super().clean()
        today = timezone.now().date()
        until = data.get("until") or today
        since = data.get("since") or until - timedelta(days=6)
        if since > until:
            raise forms.ValidationError("The window must start on or before its last day.")
        if (until - since).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"Pick a window of at most {MAX_DAYS} days.")
        length = (until - since).days + 1
        c_until = data.get("compare_until") or since - timedelta(days=1)
        c_since = data.get("compare_since") or c_until - timedelta(days=length - 1)
        if c_since > c_until:
            raise forms.ValidationError("The comparison window must start on or before its last day.")
        if (c_until - c_since).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"Pick a comparison window of at most {MAX_DAYS} days.")
        data["window"] = Window(since, until)
        data["compare"] = Window(c_since, c_until)
        return data
