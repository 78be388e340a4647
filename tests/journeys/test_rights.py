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
from journeys.rights import Right
from review.services.grants import GOVERNED_PERMS, PERM_CODES

ROOT = Path(__file__).resolve().parents[2]
CODENAMES = {right.codename for right in rights.OBJECT_RIGHTS}


def test_the_registry_names_the_seven_rights_once():
    assert [r.key for r in rights.RIGHTS] == ["view", "take_over", "approve", "annotate", "audit", "pause", "unmask"]
    assert len({r.key for r in rights.RIGHTS}) == len(rights.RIGHTS)
    assert len({r.label for r in rights.RIGHTS}) == len(rights.RIGHTS)
    assert not Right.UNMASK.is_object_permission  # a sensitive-data grant, not a permission


def test_model_permissions_access_keys_and_grant_matrix_come_from_the_registry(db):
    assert JourneyDefinition._meta.permissions == [(r.codename, r.description) for r in rights.OBJECT_RIGHTS]
    stored = set(
        Permission.objects.filter(content_type__app_label="journeys", content_type__model="journeydefinition")
        .exclude(codename__in=["add_journeydefinition", "change_journeydefinition", "delete_journeydefinition"])
        .exclude(codename="view_journeydefinition")
        .values_list("codename", flat=True)
    )
    assert stored == CODENAMES
    assert {r: f"journeys.{r.codename}" for r in rights.OBJECT_RIGHTS} == PERMS
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
    assert f"<th>{Right.UNMASK.label}</th>" in body  # the seventh right: a grant, not a permission
    for right in rights.OBJECT_RIGHTS:
        assert f':{right.codename}"' in body


@pytest.mark.parametrize("right", [r for r in rights.OBJECT_RIGHTS])
def test_each_right_alone_opens_what_it_names_and_nothing_else(demo, django_user_model, right):
    person = django_user_model.objects.create_user("one-right", password="x")
    definition = JourneyDefinition.objects.get(key="fee_refund")
    assign_perm(right.perm, person, definition)
    assert perms_held(person) == {right}
    for other in rights.OBJECT_RIGHTS:
        assert list(definitions_for(person, other)) == ([definition] if other is right else [])
    labels = {item.label for item in items_for(person)}
    assert ("Live board" in labels) == (right is Right.VIEW)
    assert ("Audit" in labels) == (right is Right.AUDIT)
    assert ("Stop button" in labels) == (right is Right.PAUSE)


# Every helper that takes a right: called with a string, it is refused (and the scan below finds it).
ACCESS_HELPERS = {
    "definitions_for",
    "journeys_for",
    "user_may",
    "get_journey_for_user",
    "cases_for",
    "groups_for",
    "proposals_for",
    "get_proposal_for_user",
    "samples_for",
    "permission_of",
}


def _string_rights(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name not in ACCESS_HELPERS:
            continue
        args = [*node.args, *(k.value for k in node.keywords)]
        if any(isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in args):
            found.append(f"{path.relative_to(root)}:{node.lineno} {name}(…)")
    return found


def test_no_access_call_passes_a_right_as_a_string():
    paths = [
        path
        for top in ("journeys", "review", "console", "api", "demo", "bench", "examples", "tests")
        for path in sorted((ROOT / top).rglob("*.py"))
        if "migrations" not in path.parts
    ]
    assert [hit for path in paths for hit in _string_rights(path)] == []


def test_the_scan_sees_a_string_right(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('user_may(u, "take_over", d)\naccess.definitions_for(u, right="view")\nuser_may(u, R.VIEW, d)\n')
    assert [hit.split(" ", 1)[1] for hit in _string_rights(sample, tmp_path)] == ["user_may(…)", "definitions_for(…)"]


def test_a_string_right_is_refused_at_run_time(db, supervisor):
    as_text = Right.VIEW.key  # a string that slipped past the scan above
    with pytest.raises(TypeError, match="Right member"):
        definitions_for(supervisor, as_text)
    with pytest.raises(ValueError, match="may_unmask"):
        definitions_for(supervisor, Right.UNMASK)
    assert Right("take_over") is Right.TAKE_OVER  # a key from outside (a form, a payload) maps to its member
