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
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    compare_since = forms.DateField(
        required=False,
        label="Compare with, from",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    compare_until = forms.DateField(
        required=False,
        label="Compare with, to",
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
        if self.errors:
            return data  # a field is already wrong; its own message says which
        if since > until:
            raise forms.ValidationError({"since": "Must be on or before the last day (To)."})
        if (until - since).days + 1 > MAX_DAYS:
            raise forms.ValidationError({"since": f"The window can be at most {MAX_DAYS} days long."})
        length = (until - since).days + 1
        c_until = data.get("compare_until") or since - timedelta(days=1)
        c_since = data.get("compare_since") or c_until - timedelta(days=length - 1)
        if c_since > c_until:
            raise forms.ValidationError({"compare_since": "Must be on or before the comparison's last day."})
        if (c_until - c_since).days + 1 > MAX_DAYS:
            raise forms.ValidationError(
                {"compare_since": f"The comparison window can be at most {MAX_DAYS} days long."}
            )
        data["window"] = Window(since, until)
        data["compare"] = Window(c_since, c_until)
        return data
