from django.apps import AppConfig

from datasets import formats


class DatasetsConfig(AppConfig):
    name = "datasets"
    verbose_name = "Datasets"

    def ready(self) -> None:
        # Import every format module now, so a broken one fails at startup.
        formats.autodiscover()
