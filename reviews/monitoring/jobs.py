"""RQ jobs of monitoring. Thin: they call a service and report a count."""

from reviews.monitoring.services import drift_evaluate_all


def drift_evaluate_job() -> int:
    """Evaluate drift for every project (run by the RQ cron scheduler)."""
    return len(drift_evaluate_all())
