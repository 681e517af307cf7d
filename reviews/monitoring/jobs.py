"""RQ jobs of monitoring. Thin: they call a service and report a count."""

from reviews.monitoring.rollups import rollups_fold
from reviews.monitoring.services import drift_evaluate_all


def drift_evaluate_job() -> int:
    """Evaluate drift for every project (run by the RQ cron scheduler)."""
    return len(drift_evaluate_all())


def rollups_fold_job() -> int:
    """Fold the decisions made since the last run into the daily rollups (cron, every minute)."""
    return rollups_fold().rows
