"""RQ jobs of file imports: thin wrappers that take an id and call the service."""

import logging

from reviews.imports.services import import_fail, import_run

logger = logging.getLogger(__name__)


def import_run_job(import_id: int) -> dict:
    """Ingest one confirmed import; a crash marks it failed (what was stored stays)."""
    try:
        item_import = import_run(import_id=import_id)
    except Exception as exc:
        # The admin sees the kind of failure; the details (SQL, storage endpoints) go to the log.
        logger.exception("Import %s stopped", import_id)
        import_fail(
            import_id=import_id,
            error=f"The import stopped ({type(exc).__name__}); the worker's log has the details.",
        )
        raise
    return {
        "import_id": item_import.pk,
        "status": item_import.status,
        "created": item_import.created_count,
        "errors": item_import.error_count,
    }
