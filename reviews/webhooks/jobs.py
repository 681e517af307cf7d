"""RQ jobs for webhook deliveries. Thin: they take ids and call services."""

from reviews.webhooks.services import webhook_deliver, webhook_deliveries_sweep


def webhook_deliver_job(delivery_ids: list[str]) -> None:
    """Send each listed delivery that is due; failures schedule their own retries."""
    for delivery_id in delivery_ids:
        webhook_deliver(delivery_id=delivery_id)


def webhooks_sweep_job() -> int:
    """Re-enqueue deliveries whose job was lost (run by the RQ cron scheduler)."""
    return webhook_deliveries_sweep()
