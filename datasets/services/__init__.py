"""Dataset export services: ``exports`` (create, retry, fail, delete) and ``build``."""

from datasets.services.build import export_build
from datasets.services.exports import (
    MAX_VALIDATION_RATIO,
    ExportSweep,
    export_create,
    export_delete,
    export_enqueue,
    export_fail,
    export_filters_normalise,
    export_retry,
    exports_sweep,
)

__all__ = [
    "MAX_VALIDATION_RATIO",
    "ExportSweep",
    "export_build",
    "export_create",
    "export_delete",
    "export_enqueue",
    "export_fail",
    "export_filters_normalise",
    "export_retry",
    "exports_sweep",
]
