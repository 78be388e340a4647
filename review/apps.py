from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and governance"

    def ready(self) -> None:
        from .cases import receivers  # noqa: F401  (connects the exception-case listener)
