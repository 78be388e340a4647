"""Forms of the review pages: queue filters, decisions, scope and limit editors, samples."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.db.models import Q
from guardian.core import ObjectPermissionChecker

from journeys.access import definitions_for
from journeys.actions import ACTION_SPECS
from journeys.models import ActionType, Agent, ApprovalLimit, JourneyDefinition, ProposedAction
from journeys.rights import Right

from .access import escalated_to_user
from .models import CumulativeLimit, PermissionScope, ReviewSample
from .models.scopes import OPERATORS, OnTimeout, condition_text

CONDITION_LINE = re.compile(r"^\s*(?P<param>[a-z_][a-z0-9_]*)\s*(?P<op>not in|in|<=|>=|==|!=|<|>)\s*(?P<value>.+?)\s*$")
NUMERIC_TYPES = {"decimal", "int"}


class QueueFilter(forms.Form):
    definition = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="All definitions", to_field_name="key"
    )
    action = forms.ModelChoiceField(
        queryset=ActionType.objects.all(), required=False, empty_label="All action types", to_field_name="key"
    )

    def __init__(self, *args: Any, user, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The definitions the user approves on, and those of items escalated to their teams.
        escalated = escalated_to_user(user).values("journey__definition_id")
        self.fields["definition"].queryset = JourneyDefinition.objects.filter(
            Q(pk__in=definitions_for(user, Right.APPROVE).values("pk")) | Q(pk__in=escalated)
        )

    def apply(self, qs):
        if self.cleaned_data.get("definition"):
            qs = qs.filter(journey__definition=self.cleaned_data["definition"])
        if self.cleaned_data.get("action"):
            qs = qs.filter(action_type=self.cleaned_data["action"])
        return qs


class RejectForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        strip=True,
        error_messages={"required": "A rejection needs a reason: the agent reads it to decide what to do next."},
    )


class BatchForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.CharField(max_length=1000, required=False, strip=True)

    def __init__(self, data=None, *args: Any, **kwargs: Any) -> None:
        super().__init__(data, *args, **kwargs)
        self.raw_ids = data.getlist("ids") if data is not None else []

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            data["ids"] = [int(value) for value in self.raw_ids]
        except ValueError:
            raise forms.ValidationError("The selection is not a list of actions.") from None
        if not data["ids"]:
            raise forms.ValidationError("Select at least one action.")
        if len(data["ids"]) > 200:
            raise forms.ValidationError("Decide at most 200 actions at once.")
        if data.get("decision") == "reject" and not data.get("reason"):
            self.add_error("reason", "A rejection needs a reason: the agent reads it to decide what to do next.")
        return data


class EditProposalBase(forms.Form):
    """The edit form has fields only for the parameters a person may edit; the others are shown
    read-only. A forged POST that sends one of those anyway is passed on as sent, so the service
    refuses it with its reason (another customer's resource: a recorded refusal; any identity
    parameter: it cannot be edited) — it is never silently dropped."""

    fixed_params: dict[str, Any] = {}
    fixed_names: tuple[str, ...] = ()

    def params(self, proposal: ProposedAction) -> dict[str, Any]:
        """The edited parameters: the fixed ones as proposed (or as forged), the editable ones
        as entered."""
        data = dict(self.cleaned_data)
        data.pop("edit_reason", None)
        edited = {k: v for k, v in data.items() if v not in (None, "")}
        forged = {k: self.data[k] for k in self.fixed_names if k in self.data}
        return {**self.fixed_params, **forged, **edited}


def edit_form_class(proposal: ProposedAction) -> type[forms.Form]:
    """A form with one field per *editable* parameter of the proposal's action type, plus the
    reason; the other parameters are shown read-only and refused if a POST sends them changed."""
    spec = ACTION_SPECS[proposal.action_type.key]
    fixed_names = tuple(name for name, p in spec.params.items() if not p.editable)
    fields: dict[str, Any] = {
        "fixed_names": fixed_names,
        "fixed_params": {k: v for k, v in proposal.params.items() if k not in spec.params or k in fixed_names},
    }
    for name, p in spec.params.items():
        if not p.editable:
            continue
        label = name.replace("_", " ").capitalize()
        if p.type == "bool":
            fields[name] = forms.BooleanField(required=False, label=label)
        elif p.type == "choice":
            choices = [("", "—")] if not p.required else []
            fields[name] = forms.ChoiceField(
                choices=choices + [(c, c) for c in p.choices], required=p.required, label=label
            )
        elif p.type in NUMERIC_TYPES:
            fields[name] = forms.CharField(required=p.required, label=label, max_length=20, help_text=p.help)
        else:
            fields[name] = forms.CharField(
                required=p.required,
                label=label,
                max_length=p.max_length,
                widget=forms.Textarea(attrs={"rows": 2}) if p.max_length > 500 else None,
            )
    # Not "reason": several action types have a parameter of that name.
    fields["edit_reason"] = forms.CharField(
        max_length=1000,
        label="Reason for the edit",
        error_messages={"required": "An edit needs a reason: say why the parameters changed."},
    )
    return type("EditProposalForm", (EditProposalBase,), fields)


def parse_conditions(text: str, action_type: ActionType | None) -> list[dict[str, Any]]:
    """Parse one condition a line (``amount <= 500.00``, ``kind in dispute, fraud``,
    ``expedited == true``) into the JSON the engine reads; raise ValidationError naming the line."""
    schema = ACTION_SPECS[action_type.key].params if action_type and action_type.key in ACTION_SPECS else None
    conditions: list[dict[str, Any]] = []
    errors: list[str] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = CONDITION_LINE.match(line)
        if not match:
            errors.append(
                f"Line {number} (“{line.strip()}”): write parameter, operator, value — e.g. "
                f"“amount <= 500.00”; operators: {', '.join(OPERATORS)}."
            )
            continue
        param, op, raw = match["param"], match["op"], match["value"]
        if schema is None:
            errors.append(f"Line {number}: choose an action type before adding conditions on its parameters.")
            continue
        if param not in schema:
            errors.append(f"Line {number}: {action_type.key} has no parameter “{param}” (it has {', '.join(schema)}).")
            continue
        p = schema[param]
        if op in ("<", "<=", ">", ">="):
            if p.type not in NUMERIC_TYPES:
                errors.append(f"Line {number}: “{param}” is not a number, so it cannot be compared with {op}.")
                continue
            try:
                value: Any = Decimal(raw)
            except InvalidOperation:
                errors.append(f"Line {number}: “{raw}” is not a number.")
                continue
            if not value.is_finite():
                errors.append(f"Line {number}: “{raw}” is not a finite number.")
                continue
            value = str(value)
        elif op in ("in", "not in"):
            value = [v.strip() for v in raw.split(",") if v.strip()]
            if not value:
                errors.append(f"Line {number}: list at least one value after “{op}”.")
                continue
            bad = [v for v in value if p.choices and v not in p.choices]
            if bad:
                errors.append(f"Line {number}: {', '.join(bad)} is not a value of “{param}” ({', '.join(p.choices)}).")
                continue
        elif p.type == "bool":
            if raw.lower() not in ("true", "false"):
                errors.append(f"Line {number}: “{param}” is true or false, not “{raw}”.")
                continue
            value = raw.lower() == "true"
        else:
            value = raw
            if p.choices and raw not in p.choices:
                errors.append(f"Line {number}: “{raw}” is not a value of “{param}” ({', '.join(p.choices)}).")
                continue
            if p.type in NUMERIC_TYPES:
                try:
                    value = str(Decimal(raw))
                except InvalidOperation:
                    errors.append(f"Line {number}: “{raw}” is not a number.")
                    continue
        conditions.append({"param": param, "op": op, "value": value})
    if errors:
        raise forms.ValidationError(errors)
    return conditions


class ScopeForm(forms.ModelForm):
    conditions_text = forms.CharField(
        label="Conditions",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One a line, all must hold: “amount <= 500.00”, “expedited == true”, “kind in dispute, fraud”. "
        "Empty: always.",
    )
    reason = forms.CharField(
        max_length=500,
        label="Reason for this change",
        help_text="Kept in the history.",
        error_messages={"required": "Say why you change the rule; the reason is kept with the change."},
    )

    class Meta:
        model = PermissionScope
        fields = [
            "name",
            "description",
            "definition",
            "agent",
            "agent_group",
            "action_type",
            "effect",
            "approval_timeout_minutes",
            "on_timeout",
            "escalate_to",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].queryset = JourneyDefinition.objects.all()
        self.fields["definition"].empty_label = "Any definition"
        self.fields["agent"].queryset = Agent.objects.all()
        self.fields["agent"].empty_label = "Any agent or person"
        self.fields["action_type"].queryset = ActionType.objects.all()
        self.fields["action_type"].empty_label = "Any action type"
        self.fields["action_type"].label_from_instance = lambda a: f"{a.name} ({a.key})"
        self.fields["escalate_to"].queryset = Group.objects.order_by("name")
        self.fields["escalate_to"].empty_label = "The definition's owning team"
        timeout = self.fields["approval_timeout_minutes"]
        timeout.validators.append(MinValueValidator(1))
        timeout.widget.attrs["min"] = 1
        if self.instance.pk and not self.is_bound:
            self.fields["conditions_text"].initial = "\n".join(
                f"{c['param']} {c['op']} {_raw(c['value'])}" for c in self.instance.conditions or []
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("agent") and data.get("agent_group"):
            self.add_error("agent_group", "Choose an agent or an agent group, not both.")
        team, definition = data.get("escalate_to"), data.get("definition")
        if (
            data.get("on_timeout") == OnTimeout.ESCALATE
            and team
            and definition
            and not ObjectPermissionChecker(team).has_perm(Right.APPROVE.codename, definition)
            and not ApprovalLimit.objects.filter(team=team, definition=definition).exists()
        ):
            # An escalation delegates the one item, up to the team's approval limit there: a team
            # with neither the approve grant nor a limit could only reject, so it is refused.
            self.add_error(
                "escalate_to",
                f"{team.name} may not approve actions on {definition.name}: it holds neither the approve grant "
                "nor an approval limit there; give it a limit or choose another team.",
            )
        try:
            data["conditions"] = parse_conditions(data.get("conditions_text", ""), data.get("action_type"))
        except forms.ValidationError as exc:
            self.add_error("conditions_text", exc)
        return data

    def save(self, commit: bool = True) -> PermissionScope:
        self.instance.conditions = self.cleaned_data.get("conditions", [])
        return super().save(commit=commit)


def _raw(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class LimitForm(forms.ModelForm):
    reason = forms.CharField(
        max_length=500,
        label="Reason for this change",
        help_text="Kept in the history.",
        error_messages={"required": "Say why you change the rule; the reason is kept with the change."},
    )

    class Meta:
        model = CumulativeLimit
        fields = [
            "name",
            "definition",
            "action_type",
            "measure",
            "subject",
            "maximum",
            "window_minutes",
            "effect_when_exceeded",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["definition"].empty_label = "Any definition"
        self.fields["action_type"].label_from_instance = lambda a: f"{a.name} ({a.key})"
        self.fields["window_minutes"].help_text = "e.g. 60 for an hour, 43200 for 30 days"
        self.fields["window_minutes"].validators.append(MinValueValidator(1))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = data.get("action_type")
        if action and data.get("measure") == CumulativeLimit.Measure.AMOUNT and not action.money_param:
            self.add_error("measure", f"{action.name} carries no amount; count actions instead.")
        maximum = data.get("maximum")
        if maximum is not None and maximum < 0:
            self.add_error("maximum", "The maximum cannot be negative.")
        if (
            maximum is not None
            and data.get("measure") == CumulativeLimit.Measure.COUNT
            and maximum != maximum.to_integral_value()
        ):
            self.add_error("maximum", "A number of actions is a whole number.")
        return data


class ToggleForm(forms.Form):
    reason = forms.CharField(max_length=500, error_messages={"required": "Say why; the reason is kept in the history."})


class SampleMarkForm(forms.Form):
    verdict = forms.ChoiceField(choices=[(ReviewSample.Verdict.FINE, "Fine"), (ReviewSample.Verdict.WRONG, "Wrong")])
    note = forms.CharField(max_length=1000, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("verdict") == ReviewSample.Verdict.WRONG and not data.get("note", "").strip():
            self.add_error("note", "Say what was wrong, so the scopes or the agent can be fixed.")
        return data


__all__ = [
    "BatchForm",
    "LimitForm",
    "QueueFilter",
    "RejectForm",
    "SampleMarkForm",
    "ScopeForm",
    "ToggleForm",
    "condition_text",
    "edit_form_class",
    "parse_conditions",
]
