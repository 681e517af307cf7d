"""RQ jobs of file imports: thin wrappers that take an id and call the service."""

from reviews.imports.services import import_fail, import_run


def import_run_job(import_id: int) -> dict:
    """Ingest one confirmed import; a crash marks it failed (what was stored stays)."""
    try:
        item_import = import_run(import_id=import_id)
    except Exception as exc:
        import_fail(import_id=import_id, error=f"The import stopped: {exc}")
        raise
    return {
        "import_id": item_import.pk,
        "status": item_import.status,
        "created": item_import.created_count,
        "errors": item_import.error_count,
    }
