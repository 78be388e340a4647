from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and governance"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed

        from journeys.events import event_recorded, events_written_together, governance_changed

        from . import policy  # noqa: F401 - registers the rules read with the lock of an agent's turn
        from .audit import listeners

        event_recorded.connect(listeners.on_event_recorded, dispatch_uid="review.audit.event_recorded")
        events_written_together.connect(
            listeners.on_events_written_together, dispatch_uid="review.audit.events_written_together"
        )
        governance_changed.connect(listeners.on_governance_changed, dispatch_uid="review.audit.governance_changed")
        user_login_failed.connect(listeners.on_login_failed, dispatch_uid="review.audit.login_failed")
        user_locked_out.connect(listeners.on_locked_out, dispatch_uid="review.audit.locked_out")

        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from journeys.models import (
            ApprovalLimit,
            DefinitionGroupPermission,
            DefinitionUserPermission,
            OrganisationGrant,
        )

        from .models import SensitiveDataGrant

        # Grants and memberships changed by any path (the Django admin included) are audited.
        for model in (
            DefinitionGroupPermission,
            DefinitionUserPermission,
            ApprovalLimit,
            SensitiveDataGrant,
            OrganisationGrant,
        ):
            uid = f"review.audit.grant.{model.__name__}"
            post_save.connect(listeners.on_grant_saved, sender=model, dispatch_uid=f"{uid}.saved")
            post_delete.connect(listeners.on_grant_deleted, sender=model, dispatch_uid=f"{uid}.deleted")
        m2m_changed.connect(
            listeners.on_membership_changed,
            sender=get_user_model().groups.through,
            dispatch_uid="review.audit.membership",
        )
        # Who may decide a proposal: the lifecycle asks this rule when pages derive buttons.
        from journeys.lifecycle.proposal import register_decision_rights

        from .access import decision_limit_for
        from .cases import receivers  # noqa: F401  (connects the exception-case listener)

        register_decision_rights(decision_limit_for)

        # Masking: every row that names a customer registers that customer with the request's
        # masker as it is loaded, so free text about them is masked on whatever page shows it.
        from django.db.models.signals import post_init

        from journeys.models import Event, Journey, ProposedAction

        from .audit.masking import register_journey
        from .models import AuditRecord, ExceptionCase

        def journey_loaded(sender, instance, **kwargs) -> None:
            register_journey(instance.__dict__.get("id"), instance.__dict__.get("customer_ref"))

        def journey_row_loaded(sender, instance, **kwargs) -> None:
            register_journey(instance.__dict__.get("journey_id"), instance.__dict__.get("customer_ref"))

        post_init.connect(journey_loaded, sender=Journey, weak=False, dispatch_uid="review.mask.journey")
        for model in (Event, ProposedAction, AuditRecord, ExceptionCase):
            post_init.connect(
                journey_row_loaded, sender=model, weak=False, dispatch_uid=f"review.mask.{model.__name__}"
            )
        # A core bank kept in this database (the demo's) registers its customer and card rows
        # the same way: see demo/apps.py (register_customer, register_card).
