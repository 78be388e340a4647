from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from .actions import sync_action_types_after_migrate

        post_migrate.connect(sync_action_types_after_migrate, sender=self, dispatch_uid="journeys.sync_action_types")
