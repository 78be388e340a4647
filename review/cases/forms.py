from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from journeys.access import definitions_for
from journeys.models import JourneyDefinition

from ..models import ExceptionCase, Label


class LabelChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Label) -> str:
        return obj.name


class _OwnIds(forms.Form):
    """Several of these forms share a page: each prefixes its element ids with its own name."""

    id_prefix = "form"

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)


class AnnotateForm(_OwnIds):
    id_prefix = "annotate"
    labels = LabelChoiceField(
        queryset=Label.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    note = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        data = super().clean()
        if not data.get("labels") and not (data.get("note") or "").strip():
            raise forms.ValidationError("Pick a label or write a note.")
        return data


class FlagForm(_OwnIds):
    id_prefix = "flag"
    note = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this journey needs a second look.",
    )
    labels = LabelChoiceField(
        queryset=Label.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class AssignForm(_OwnIds):
    id_prefix = "assign"
    assignee = forms.ModelChoiceField(queryset=get_user_model().objects.none(), empty_label="Choose a person")

    def __init__(self, *args, assignees, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignees


class ResolveForm(_OwnIds):
    id_prefix = "resolve"
    resolution = forms.ChoiceField(choices=[("", "Choose a resolution"), *ExceptionCase.Resolution.choices])
    note = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))


class WorkbenchFilter(forms.Form):
    definition = forms.ModelChoiceField(
        queryset=JourneyDefinition.objects.none(),
        required=False,
        empty_label="All definitions",
        to_field_name="key",
    )
    show = forms.ChoiceField(choices=[("open", "Unresolved"), ("all", "All, resolved too")], required=False)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].queryset = definitions_for(user)


class LabelForm(forms.Form):
    name = forms.CharField(max_length=80)
    description = forms.CharField(max_length=200, required=False)
    is_active = forms.BooleanField(required=False, initial=True, label="In use")
