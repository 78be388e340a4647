from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API, tokens and webhooks"

    def ready(self) -> None:
        from journeys.events import event_recorded, events_written_together, governance_changed

        from . import webhooks

        event_recorded.connect(webhooks.on_event_recorded, dispatch_uid="api.webhooks.event_recorded")
        events_written_together.connect(
            webhooks.on_events_written_together, dispatch_uid="api.webhooks.events_written_together"
        )
        governance_changed.connect(webhooks.on_governance_changed, dispatch_uid="api.webhooks.governance_changed")
