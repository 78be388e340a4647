"""Read-side queries of the console's pages, next to the services that write.

Views call these and hand evaluated results to templates: no query runs while a template renders
(``tests/test_render_queries.py``), and template tags never query the database.
"""

from __future__ import annotations

from django import forms


def read_choices(form: forms.Form) -> forms.Form:
    """Read every model choice field's options now, in the view: rendering the form then lists
    them without a query. Validation still checks a submitted value against the queryset."""
    for field in form.fields.values():
        if isinstance(field, forms.ModelChoiceField):
            field.choices = list(field.choices)
    return form
