"""Gauges read from the database at scrape time: the figures that must be global.

Six grouped queries in all, however many projects or items:
the figures are the deployment's, whichever web process answers the scrape.
Every project gets a sample for every label value, zero included, so a series
does not vanish when its queue empties.
"""

import time
from datetime import timedelta

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from datasets.models import DatasetExport, ExportStatus
from reviews.models import (
    DeliveryStatus,
    ItemStatus,
    Project,
    Review,
    ReviewItem,
    Verdict,
    WebhookDelivery,
)

DECISION_WINDOW = timedelta(minutes=1)

ITEMS = ("hitl_items", "Items by status, per project.", ["project", "status"])
QUEUE_DEPTH = ("hitl_queue_depth", "Items waiting for a human review, per project.", ["project"])
QUEUE_AGE = (
    "hitl_queue_oldest_age_seconds",
    "Age of the oldest item waiting for a human review (0 when none waits), per project.",
    ["project"],
)
JUDGE_AGE = (
    "hitl_judge_pending_oldest_age_seconds",
    "Time since the longest-waiting pending_judge item last changed (0 when none), per project.",
    ["project"],
)
DECISIONS = (
    "hitl_decisions_last_minute",
    "Reviews submitted in the last 60 seconds, by verdict, per project.",
    ["project", "verdict"],
)
WEBHOOKS_PENDING = (
    "hitl_webhook_deliveries_pending",
    "Webhook deliveries not yet delivered nor given up, per project.",
    ["project"],
)
WEBHOOKS_AGE = (
    "hitl_webhook_pending_oldest_age_seconds",
    "Age of the oldest pending webhook delivery (0 when none), per project.",
    ["project"],
)
EXPORTS = ("hitl_exports", "Dataset exports by status.", ["status"])
QUERY_SECONDS = (
    "hitl_metrics_database_seconds",
    "Time this scrape spent reading the database gauges.",
    [],
)
FAMILIES = (
    ITEMS,
    QUEUE_DEPTH,
    QUEUE_AGE,
    JUDGE_AGE,
    DECISIONS,
    WEBHOOKS_PENDING,
    WEBHOOKS_AGE,
    EXPORTS,
    QUERY_SECONDS,
)


def _family(spec) -> GaugeMetricFamily:
    name, documentation, labels = spec
    return GaugeMetricFamily(name, documentation, labels=labels)


def _age(now, since) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


class DatabaseCollector(Collector):
    """Reads the gauges above from the database on each ``collect()``."""

    def describe(self):
        return [_family(spec) for spec in FAMILIES]

    def collect(self):
        started = time.perf_counter()
        now = timezone.now()
        slugs = dict(Project.objects.order_by().values_list("pk", "slug"))

        # One pass over the items for both: a count of every row needs the whole
        # table anyway, and the oldest change per status comes with it.
        items, judge_age = _family(ITEMS), _family(JUDGE_AGE)
        counts = {
            (row["project_id"], row["status"]): row
            for row in ReviewItem.objects.order_by()
            .values("project_id", "status")
            .annotate(n=Count("id"), changed=Min("updated_at"))
        }
        for project_id, slug in slugs.items():
            for status in ItemStatus.values:
                items.add_metric([slug, status], counts.get((project_id, status), {}).get("n", 0))
            judging = counts.get((project_id, ItemStatus.PENDING_JUDGE), {})
            judge_age.add_metric([slug], _age(now, judging.get("changed")))

        queued = {
            row["project_id"]: row
            for row in ReviewItem.objects.filter(in_queue=True)
            .order_by()
            .values("project_id")
            .annotate(n=Count("id"), oldest=Min("created_at"))
        }
        depth, queue_age = _family(QUEUE_DEPTH), _family(QUEUE_AGE)
        for project_id, slug in slugs.items():
            row = queued.get(project_id, {})
            depth.add_metric([slug], row.get("n", 0))
            queue_age.add_metric([slug], _age(now, row.get("oldest")))

        decided = {
            (row["item__project_id"], row["verdict"]): row["n"]
            for row in Review.objects.filter(created_at__gte=now - DECISION_WINDOW)
            .order_by()
            .values("item__project_id", "verdict")
            .annotate(n=Count("id"))
        }
        decisions = _family(DECISIONS)
        for project_id, slug in slugs.items():
            for verdict in Verdict.values:
                decisions.add_metric([slug, verdict], decided.get((project_id, verdict), 0))

        pending = {
            row["project_id"]: row
            for row in WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
            .order_by()
            .values("project_id")
            .annotate(n=Count("id"), oldest=Min("created_at"))
        }
        webhooks, webhook_age = _family(WEBHOOKS_PENDING), _family(WEBHOOKS_AGE)
        for project_id, slug in slugs.items():
            row = pending.get(project_id, {})
            webhooks.add_metric([slug], row.get("n", 0))
            webhook_age.add_metric([slug], _age(now, row.get("oldest")))

        by_status = dict(
            DatasetExport.objects.order_by()
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        exports = _family(EXPORTS)
        for status in ExportStatus.values:
            exports.add_metric([status], by_status.get(status, 0))

        seconds = _family(QUERY_SECONDS)
        seconds.add_metric([], time.perf_counter() - started)
        yield from (items, depth, queue_age, judge_age, decisions, webhooks, webhook_age, exports)
        yield seconds
