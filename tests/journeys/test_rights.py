"""One registry of rights: the model permissions, access keys, teams page and menu derive from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from guardian.shortcuts import assign_perm

from console.navigation import items_for
from journeys import rights
from journeys.access import PERMS, definitions_for, perms_held
from journeys.models import JourneyDefinition
from review.services.grants import GOVERNED_PERMS, PERM_CODES

ROOT = Path(__file__).resolve().parents[2]
CODENAMES = {right.codename for right in rights.OBJECT_RIGHTS}


def test_the_registry_names_the_seven_rights_once():
    assert [r.key for r in rights.RIGHTS] == ["view", "take_over", "approve", "annotate", "audit", "pause", "unmask"]
    assert len({r.key for r in rights.RIGHTS}) == len(rights.RIGHTS)
    assert len({r.label for r in rights.RIGHTS}) == len(rights.RIGHTS)
    assert not rights.BY_KEY["unmask"].is_object_permission  # a sensitive-data grant, not a permission


def test_model_permissions_access_keys_and_grant_matrix_come_from_the_registry(db):
    assert JourneyDefinition._meta.permissions == [(r.codename, r.description) for r in rights.OBJECT_RIGHTS]
    stored = set(
        Permission.objects.filter(content_type__app_label="journeys", content_type__model="journeydefinition")
        .exclude(codename__in=["add_journeydefinition", "change_journeydefinition", "delete_journeydefinition"])
        .exclude(codename="view_journeydefinition")
        .values_list("codename", flat=True)
    )
    assert stored == CODENAMES
    assert {r.key: f"journeys.{r.codename}" for r in rights.OBJECT_RIGHTS} == PERMS
    assert [r.codename for r in rights.OBJECT_RIGHTS] == PERM_CODES
    assert {"approve_actions", "pause_agents"} == GOVERNED_PERMS


def test_no_product_module_spells_a_permission_codename_outside_the_registry():
    found = []
    for app in ("journeys", "review", "console", "api"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts or path == ROOT / "journeys" / "rights.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value.removeprefix("journeys.")
                    if text in CODENAMES - {"take_over", "annotate", "audit"}:  # those double as key words
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []


def test_the_teams_page_shows_one_column_per_object_right(client, admin_user):
    client.force_login(admin_user)
    team = Group.objects.get(name="Cards team")
    page = client.get(reverse("team_detail", args=[team.pk]))
    assert page.status_code == 200
    assert page.context["perm_labels"] == [r.label for r in rights.OBJECT_RIGHTS]
    body = page.content.decode()
    assert f"<th>{rights.BY_KEY['unmask'].label}</th>" in body  # the seventh right: a grant, not a permission
    for right in rights.OBJECT_RIGHTS:
        assert f':{right.codename}"' in body


@pytest.mark.parametrize("right", [r for r in rights.OBJECT_RIGHTS])
def test_each_right_alone_opens_what_it_names_and_nothing_else(demo, django_user_model, right):
    person = django_user_model.objects.create_user("one-right", password="x")
    definition = JourneyDefinition.objects.get(key="fee_refund")
    assign_perm(right.perm, person, definition)
    assert perms_held(person) == {right.key}
    for other in rights.OBJECT_RIGHTS:
        assert list(definitions_for(person, other.key)) == ([definition] if other is right else [])
    labels = {item.label for item in items_for(person)}
    assert ("Live board" in labels) == (right.key == rights.VIEW)
    assert ("Audit" in labels) == (right.key == rights.AUDIT)
    assert ("Stop button" in labels) == (right.key == rights.PAUSE)
