from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"

    def ready(self) -> None:
        # Models are importable only once the registry is ready: Django's documented place.
        from reviews.history_manager import history_manager_cached
        from reviews.roles import roles_sync_after_migrate

        history_manager_cached()

        post_migrate.connect(roles_sync_after_migrate, sender=self)
