"""Form errors in words a person uses: "From: Enter a date like 2026-03-01.", never a field key."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

# Django's stock wording for a value not in the list or not a date, said plainly.
CHOICE_ERROR = "“{value}” is not one of the choices you may see; pick one from the list."
DATE_ERROR = "“{value}” is not a date; write it like 2026-03-01."
TIME_ERROR = "“{value}” is not a date and time; write it like 2026-03-01 14:30."


def errors_in_words(form: forms.Form) -> list[str]:
    """Every error of a bound form, each prefixed with its field's label (non-field errors bare)."""
    lines = []
    for name, errors in form.errors.as_data().items():
        field = form.fields.get(name) if name != NON_FIELD_ERRORS else None
        for error in errors:
            text = " ".join(error.messages)
            if field is not None:
                value = str(form.data.get(form.add_prefix(name), ""))[:60]
                if error.code == "invalid_choice":
                    text = CHOICE_ERROR.format(value=value)
                elif error.code == "invalid" and isinstance(field, forms.DateTimeField):
                    text = TIME_ERROR.format(value=value)
                elif error.code == "invalid" and isinstance(field, forms.DateField):
                    text = DATE_ERROR.format(value=value)
                label = str(field.label or name.replace("_", " ").capitalize())
                text = f"{label}: {text}"
            lines.append(text)
    return lines
