"""The propose-an-action form of the person in control: one typed field per parameter.

Every action type's parameters get their own fields (named ``<action>-<parameter>``); the page
shows the fields of the chosen action only. Numbers are number inputs; parameters naming a bank
resource offer the journey customer's own accounts, cards and recent transactions (masked
labels, from the core bank); the action types the journey's current step uses come first. The
chosen action's parameters are checked together, so every error shows at once, with the same
rules as every other path (``journeys.actions``); a forged resource still reaches the service,
whose bounds check refuses and records it.
"""

from __future__ import annotations

from typing import Any

from django import forms

from journeys.actions import ACTION_SPECS, ActionParamsError, Param, coerce_param
from journeys.corebank import CoreBankError, get_core_bank
from journeys.models import Journey

KEY_REGEX = r"^[0-9a-f]{0,32}$"


def param_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _field(p: Param, name: str, resources: dict[str, list[tuple[str, str]]]) -> forms.Field:
    label = param_label(name) + ("" if p.required or p.type == "bool" else " (optional)")
    common: dict[str, Any] = {"required": False, "label": label, "help_text": p.help}
    if p.resource and resources.get(p.resource):
        options = list(resources[p.resource])
        if not p.required or len(options) > 1:
            options = [("", "— choose —"), *options]
        return forms.CharField(max_length=80, widget=forms.Select(choices=options), **common)
    if p.type in ("decimal", "int"):
        attrs: dict[str, Any] = {"step": "0.01" if p.type == "decimal" else "1"}
        if p.min is not None:
            attrs["min"] = str(p.min)
        if p.max is not None:
            attrs["max"] = str(p.max)
        attrs["inputmode"] = "decimal" if p.type == "decimal" else "numeric"
        return forms.CharField(max_length=40, widget=forms.NumberInput(attrs=attrs), **common)
    if p.type == "bool":
        return forms.BooleanField(**common)
    if p.type == "choice":
        return forms.ChoiceField(choices=[("", "— choose —"), *((c, c.replace("_", " ")) for c in p.choices)], **common)
    widget = forms.Textarea(attrs={"rows": 3}) if name == "text" else forms.TextInput()
    return forms.CharField(max_length=p.max_length, widget=widget, **common)


class ProposeForm(forms.Form):
    action = forms.ChoiceField(label="Action")
    explanation = forms.CharField(max_length=1000, label="Why")
    key = forms.RegexField(regex=KEY_REGEX, widget=forms.HiddenInput, max_length=32, required=False)

    def __init__(self, *args: Any, journey: Journey, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.journey = journey
        step = journey.version.step(journey.current_step) or {}
        fitting = [key for key in step.get("actions", []) if key in ACTION_SPECS]
        others = [key for key in ACTION_SPECS if key not in fitting]
        groups = []
        if fitting:
            groups.append((f"This step ({journey.current_step_title})", [(k, ACTION_SPECS[k].name) for k in fitting]))
        groups.append(("Other actions" if fitting else "Actions", [(k, ACTION_SPECS[k].name) for k in others]))
        self.fields["action"].choices = groups
        self.fields["action"].initial = (fitting or others)[0]
        try:
            resources = get_core_bank().customer_resources(customer=journey.customer_ref)
        except CoreBankError:
            resources = {}  # the bank cannot list them now: plain text fields, still bounds-checked
        for action, spec in ACTION_SPECS.items():
            for name, p in spec.params.items():
                self.fields[f"{action}-{name}"] = _field(p, name, resources)

    def fieldsets(self) -> list[dict[str, Any]]:
        """Per action type, its parameter fields (the template shows the chosen one's)."""
        chosen = self["action"].value() or self.fields["action"].initial
        return [
            {
                "action": action,
                "name": spec.name,
                "chosen": action == chosen,
                "fields": [self[f"{action}-{name}"] for name in spec.params],
            }
            for action, spec in ACTION_SPECS.items()
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = data.get("action")
        if not action:
            return data
        spec = ACTION_SPECS[action]
        params: dict[str, Any] = {}
        for name, p in spec.params.items():
            field = f"{action}-{name}"
            value = data.get(field)
            if p.type == "bool":
                params[name] = bool(value)
                continue
            if value in (None, ""):
                if p.required:
                    self.add_error(field, f"{param_label(name)} is required.")
                continue
            try:
                params[name] = coerce_param(action, name, value)
            except ActionParamsError as exc:
                self.add_error(field, str(exc).replace(f"{action}.{name}", param_label(name)))
        data["params"] = params
        return data
