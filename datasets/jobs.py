"""RQ jobs for dataset exports: thin wrappers that load ids and call services."""

import dataclasses

from rq import get_current_job

from datasets.services import export_build, exports_sweep


def export_build_job(export_id: int) -> dict:
    """Build one export; the job's meta carries ``progress``, ``rows_done``, ``rows_total``."""
    job = get_current_job()

    def report(done: int, total: int) -> None:
        if job is None:
            return
        job.meta.update(
            {
                "progress": round(done / total, 4) if total else 1.0,
                "rows_done": done,
                "rows_total": total,
            }
        )
        job.save_meta()

    export = export_build(export_id=export_id, on_progress=report)
    return {"export_id": export.pk, "status": export.status, "rows": export.row_count}


def exports_sweep_job() -> dict:
    """Recover exports whose build died, clear leftovers, apply retention (RQ cron)."""
    return dataclasses.asdict(exports_sweep())
