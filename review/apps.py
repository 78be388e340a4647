from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and governance"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed

        from journeys.events import event_recorded, governance_changed

        from .audit import listeners

        event_recorded.connect(
            listeners.on_event_recorded, dispatch_uid="review.audit.event_recorded"
        )
        governance_changed.connect(
            listeners.on_governance_changed, dispatch_uid="review.audit.governance_changed"
        )
        user_login_failed.connect(
            listeners.on_login_failed, dispatch_uid="review.audit.login_failed"
        )
        user_locked_out.connect(listeners.on_locked_out, dispatch_uid="review.audit.locked_out")
