"""The customer simulator: opens journeys and plays the customers.

Behaviours (rough shares): cooperative 65 %, slow to reply 15 %, abandons mid-journey 8 %,
complains 3 %, comes back within minutes about the same thing 9 %. The customer mix is tuned with
them: a small share of failed identity checks, mostly small disputed charges, few expedited
cards, and each journey opened mostly by a customer for whom it is routine (its module's
``ordinary_customers``; an ``UNUSUAL_SHARE`` by anyone, e.g. an address change right after a phone
change). So, with nobody logged in, the demo bank settles where real deployments report agents:
roughly 60 to 80 % of journeys completed without a person (README, "The demo in steady state"). What a customer says
on each journey lives in that journey's module (``demo.journeys``). Each
journey remembers its customer's persona in ``context["simulator"]``, so the simulator can be
restarted at any time and pick up where it was.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from journeys.models import Agent, Journey, JourneyDefinition
from journeys.services import JourneyError, journey_customer_message, journey_start

from .journeys import JOURNEYS
from .models import CoreCustomer

PERSONAS = [("cooperative", 65), ("slow", 15), ("abandons", 8), ("complains", 3), ("returns", 9)]
# Share of journeys whose customer fails the identity check.
FAILED_IDENTITY_SHARE = 0.03


class Simulator:
    def __init__(self, *, seed: int | None = None, reply_scale: float = 1.0) -> None:
        self.rng = random.Random(seed)
        self.reply_scale = reply_scale
        self.returns_due: list[tuple[Any, str, str]] = []  # (when, definition key, customer ref)

    def persona(self) -> str:
        names, weights = zip(*PERSONAS, strict=True)
        return self.rng.choices(names, weights)[0]

    # --- opening journeys ------------------------------------------------------------------
    def open_journey(
        self,
        definition_key: str | None = None,
        customer: CoreCustomer | None = None,
        persona: str | None = None,
        repeat: bool = False,
    ) -> Journey:
        definitions = list(JourneyDefinition.objects.filter(versions__isnull=False).distinct())
        definition = (
            next(d for d in definitions if d.key == definition_key) if definition_key else self.rng.choice(definitions)
        )
        customer = customer or self._customer_for(JOURNEYS[definition.key])
        persona = persona or self.persona()
        message, request = JOURNEYS[definition.key].customer_request(self, customer)
        if self.rng.random() < FAILED_IDENTITY_SHARE:
            request["identity_ok"] = False
        channel = self.rng.choice([c for c, _ in Journey.Channel.choices])
        journey = journey_start(
            agent=self._llm_agent_for_a_share(),
            definition=definition,
            customer_ref=customer.ref,
            channel=channel,
            message=message,
            request=request,
            simulator={"persona": persona, "repeat": repeat},
        )
        if persona == "returns" and not repeat:
            self.returns_due.append(
                (
                    timezone.now() + timedelta(seconds=self.rng.uniform(60, 180) * self.reply_scale),
                    definition.key,
                    customer.ref,
                )
            )
        return journey

    def _llm_agent_for_a_share(self) -> Agent | None:
        """With ``LLM_BASE_URL`` set, a share (``LLM_JOURNEY_SHARE``) of journeys run on the llm
        agent; otherwise (and for the rest) the default agent. No draw without it, so seeded runs
        stay as they were."""
        if not settings.LLM_BASE_URL or self.rng.random() >= settings.LLM_JOURNEY_SHARE:
            return None
        return Agent.objects.filter(kind=Agent.Kind.LLM, is_enabled=True).order_by("pk").first()

    def _customer_for(self, journey_module) -> CoreCustomer:
        """Who opens this journey: mostly a customer for whom it is routine (the module's
        ``ordinary_customers``), an ``UNUSUAL_SHARE`` of the time anyone; anyone when nobody is
        ordinary any more."""
        if self.rng.random() >= journey_module.UNUSUAL_SHARE:
            pool = journey_module.ordinary_customers(CoreCustomer.objects.all()).distinct()
            count = pool.count()
            if count:
                return pool.order_by("pk")[self.rng.randrange(count)]
        return self._random_customer()

    def _random_customer(self) -> CoreCustomer:
        count = CoreCustomer.objects.count()
        return CoreCustomer.objects.order_by("pk")[self.rng.randrange(count)]

    # --- playing the customer --------------------------------------------------------------
    def reply_delay(self, persona: str) -> float:
        low, high = {"slow": (20, 60), "abandons": (4, 10), "complains": (3, 8)}.get(persona, (2, 6))
        return self.rng.uniform(low, high) * self.reply_scale

    def tick(self) -> dict[str, int]:
        """Answer every customer whose reply is due; open the repeat contacts that are due."""
        now = timezone.now()
        replied = 0
        waiting = Journey.objects.filter(
            status=Journey.Status.RUNNING, waiting_on=Journey.WaitingOn.CUSTOMER, context__simulator__isnull=False
        ).select_related("definition")
        for journey in waiting:
            sim = journey.context.get("simulator", {})
            persona = sim.get("persona", "cooperative")
            delay = random.Random(f"{journey.pk}:{journey.turn_seq}").uniform(0, 1)
            low_high = self.reply_delay(persona)
            if journey.state_changed_at + timedelta(seconds=low_high * (0.5 + delay)) > now:
                continue
            text, data, intent = self.answer(journey, persona)
            try:
                journey_customer_message(journey_id=journey.pk, text=text, data=data, intent=intent)
                replied += 1
            except JourneyError:
                continue
        opened = 0
        for item in [r for r in self.returns_due if r[0] <= now]:
            self.returns_due.remove(item)
            _, key, ref = item
            self.open_journey(key, CoreCustomer.objects.get(ref=ref), persona="cooperative", repeat=True)
            opened += 1
        return {"replied": replied, "reopened": opened}

    def answer(self, journey: Journey, persona: str) -> tuple[str, dict[str, Any], str]:
        if persona == "abandons":
            return "Never mind, I'll sort it out later.", {}, "abandon"
        if persona == "complains":
            return "This is taking far too long. I want to make a complaint.", {}, "complaint"
        facts = journey.context.get("facts", {})
        step = journey.current_step
        if step == "verify_identity":
            return (
                "Sorry — it's the card ending as on file, and my date of birth is right.",
                {"identity_ok": True},
                "reply",
            )
        journey_module = JOURNEYS.get(journey.definition.key)
        reply = journey_module.customer_reply(self, journey, facts) if journey_module else None
        if reply is not None:
            return reply
        return "OK, thanks.", {}, "reply"
