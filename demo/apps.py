from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo bank: its simulated core bank, scripted agent, customer simulator and seed.

    Installed only when ``HANDOFF_DEMO`` is on; the product apps never import it.
    """

    name = "demo"
    verbose_name = "Demo bank"

    def ready(self) -> None:
        from journeys.agents import register_adapter

        from .agent import ScriptedAgent

        register_adapter("scripted", ScriptedAgent)

        # Masking: a customer or card row loaded on any page (the Django admin included) registers
        # its values with the request's masker, so free text naming them is masked.
        from django.db.models.signals import post_init

        from review.audit.masking import register_card, register_customer

        from .models import CoreCard, CoreCustomer

        def customer_loaded(sender, instance, **kwargs) -> None:
            register_customer(instance.__dict__.get("ref"))

        def card_loaded(sender, instance, **kwargs) -> None:
            register_card(instance.__dict__.get("token"), instance.__dict__.get("number"))

        post_init.connect(customer_loaded, sender=CoreCustomer, weak=False, dispatch_uid="review.mask.customer")
        post_init.connect(card_loaded, sender=CoreCard, weak=False, dispatch_uid="review.mask.card")
