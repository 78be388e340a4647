"""Seed the demo bank: action types, the four journey definitions, teams, users, grants, agent,
and core-bank customers. Idempotent: run it as often as you like."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from guardian.shortcuts import assign_perm

from demo.bank import seed_core_bank
from demo.definitions import install_definitions
from demo.journeys import JOURNEYS
from demo.scopes import ESCALATION_TEAM, install_demo_scopes
from journeys.actions import sync_action_types
from journeys.models import Agent, ApprovalLimit, JourneyDefinition, OrganisationGrant
from review.cases.services import labels_install_defaults
from review.models import SensitiveDataGrant


def _teams() -> dict[str, dict[str, Any]]:
    """Each journey's module names its owning team's grants; the organisation-wide teams follow."""
    teams: dict[str, dict[str, Any]] = {}
    for key, journey in JOURNEYS.items():
        grants = journey.GRANTS
        team = teams.setdefault(grants["team"], {"definitions": [], "perms": grants["perms"]})
        team["definitions"].append(key)
        team["approval_limit"] = grants["approval_limit"]
    teams["Compliance"] = {"definitions": "*", "perms": ["view_journeys", "audit"]}
    teams["Admins"] = {"definitions": "*", "perms": ["view_journeys", "pause_agents", "audit"]}
    # No standing grant at all: it decides only what is escalated to it, up to this limit.
    teams[ESCALATION_TEAM] = {"definitions": "*", "approval_limit": "10000.00", "perms": []}
    return teams


TEAMS = _teams()


def _sensitive_grants() -> dict[str, list[str] | str]:
    """Teams whose people may unmask sensitive customer fields (with a stated, audited reason)."""
    grants: dict[str, list[str] | str] = {}
    for key, journey in JOURNEYS.items():
        if journey.GRANTS.get("sensitive_data"):
            grants.setdefault(journey.GRANTS["team"], []).append(key)  # type: ignore[union-attr]
    grants["Compliance"] = "*"
    return grants


SENSITIVE_GRANTS = _sensitive_grants()

# Rights held across the whole organisation, granted explicitly (never implied by holding a right
# on every definition that exists today).
ORGANISATION_GRANTS: dict[str, list[str]] = {
    "Compliance": [OrganisationGrant.Right.AUDIT],
    "Admins": [OrganisationGrant.Right.AUDIT, OrganisationGrant.Right.PAUSE],
}

USERS = [
    # username, team, staff, superuser, name
    ("supervisor", "Cards team", False, False, "Sam Supervisor"),
    ("supervisor2", "Servicing team", False, False, "Sasha Servicing"),
    # Second approvers, so two-approver rules and a supervisor's own proposals can be decided.
    ("cards2", "Cards team", False, False, "Chris Cards"),
    ("servicing2", "Servicing team", False, False, "Robin Servicing"),
    ("compliance", "Compliance", False, False, "Casey Compliance"),
    ("admin", "Admins", True, True, "Alex Admin"),
    # A second admin: changes that widen scopes, limits or rights need two (maker-checker).
    ("admin2", "Admins", True, True, "Ari Admin"),
    ("lead", ESCALATION_TEAM, False, False, "Lee Lead"),
]

# Imperfect on purpose, so there are exceptions to work; tuned with the simulator so that, with
# nobody logged in, most journeys complete on their own (README, "The demo in steady state").
DEMO_AGENT_CONFIG = {"error_rate": 0.02, "low_confidence_rate": 0.06, "wrong_rate": 0.05, "think_seconds": 0.5}
# Earlier seeds' settings: an agent still on them (nobody edited it) moves to the current ones.
OLDER_AGENT_CONFIGS = [{"error_rate": 0.03, "low_confidence_rate": 0.15, "wrong_rate": 0.1, "think_seconds": 0.5}]


class Command(BaseCommand):
    help = "Seed the demo bank (idempotent)."

    def add_arguments(self, parser) -> None:
        # Enough customers that the simulator's own lost cards and address changes (which make a
        # customer's next one unusual for 30 days) do not use up the ordinary ones in an afternoon.
        parser.add_argument("--customers", type=int, default=300)

    @transaction.atomic
    def handle(self, *args: Any, customers: int, **options: Any) -> None:
        sync_action_types()
        install_definitions()
        all_keys = list(JourneyDefinition.objects.values_list("key", flat=True))
        for team_name, spec in TEAMS.items():
            team, _ = Group.objects.get_or_create(name=team_name)
            keys = all_keys if spec["definitions"] == "*" else spec["definitions"]
            for definition in JourneyDefinition.objects.filter(key__in=keys):
                for perm in spec["perms"]:
                    assign_perm(f"journeys.{perm}", team, definition)
                if "approval_limit" in spec:
                    ApprovalLimit.objects.update_or_create(
                        team=team, definition=definition, defaults={"limit": Decimal(spec["approval_limit"])}
                    )
        for team_name, keys in SENSITIVE_GRANTS.items():
            team = Group.objects.get(name=team_name)
            for definition in JourneyDefinition.objects.filter(key__in=all_keys if keys == "*" else keys):
                SensitiveDataGrant.objects.get_or_create(team=team, definition=definition)
        for team_name, rights in ORGANISATION_GRANTS.items():
            team = Group.objects.get(name=team_name)
            for right in rights:
                OrganisationGrant.objects.get_or_create(team=team, right=right)
        User = get_user_model()
        for username, team_name, staff, superuser, full_name in USERS:
            first, last = full_name.split(" ", 1)
            user, _ = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "is_staff": staff, "is_superuser": superuser},
            )
            user.set_password(settings.DEMO_PASSWORD)  # the README promises DEMO_PASSWORD works
            user.save()
            user.groups.add(Group.objects.get(name=team_name))
        agent_user, _ = User.objects.get_or_create(username="agent-scripted", defaults={"first_name": "Scripted agent"})
        agent_user.set_unusable_password()
        agent_user.save()
        agent, created = Agent.objects.get_or_create(
            name="Scripted agent",
            defaults={"user": agent_user, "kind": Agent.Kind.SCRIPTED, "group": "demo", "config": DEMO_AGENT_CONFIG},
        )
        if not created and agent.config in OLDER_AGENT_CONFIGS:
            Agent.objects.filter(pk=agent.pk).update(config=DEMO_AGENT_CONFIG)
        # The llm agent runs a share of the simulator's journeys when LLM_BASE_URL is set.
        llm_user, _ = User.objects.get_or_create(username="agent-llm", defaults={"first_name": "LLM agent"})
        llm_user.set_unusable_password()
        llm_user.save()
        Agent.objects.get_or_create(
            name="LLM agent",
            defaults={"user": llm_user, "kind": Agent.Kind.LLM, "group": "demo", "config": {"version": "1"}},
        )
        # An agent running elsewhere, for examples/external_agent.py: it may see every journey
        # (an admin issues its token on the API tokens page).
        ext_user, _ = User.objects.get_or_create(username="agent-external", defaults={"first_name": "External agent"})
        ext_user.set_unusable_password()
        ext_user.save()
        Agent.objects.get_or_create(
            name="External agent", defaults={"user": ext_user, "kind": Agent.Kind.EXTERNAL, "group": "external"}
        )
        for definition in JourneyDefinition.objects.all():
            assign_perm("journeys.view_journeys", ext_user, definition)
        install_demo_scopes()
        new = seed_core_bank(customers)
        labels_install_defaults()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo bank ready: {len(all_keys)} journey definitions, {len(USERS)} people, {new} new customers."
            )
        )
