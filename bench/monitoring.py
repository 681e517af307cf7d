"""Monitoring and webhooks against PostgreSQL: what they cost and how they scale.

Against a throwaway database (and Redis database 6 for the queues), prints:

* ingest items/s through ``item_ingest`` (batches of 1,000) with and without a
  webhook URL, i.e. the cost of writing the outbox rows in the same transaction;
* webhook deliveries/s from one process to a loopback receiver (signed POST,
  attempt log, status update), with the median and p95 latency per delivery;
* the monitoring dashboard on a large history (default 200,000 decided items
  and 50,000 audit reviews over 90 days, three model versions): SQL queries
  and milliseconds for the selector and for the whole admin page, per period;
* the drift evaluation over every project and model version.

    python bench/monitoring.py [--decided 200000] [--audits 50000] [--deliveries 2000]
"""

import argparse
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bench_database, free_port, manage, percentile

WORKER_REDIS_DB = 6


def redis_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return f"redis://{parts.hostname}:{parts.port or 6379}/{WORKER_REDIS_DB}"


def payloads(prefix: str, count: int, version: str = "2026-11-01") -> list[dict]:
    return [
        {
            "external_id": f"{prefix}-{n}",
            "prompt": f"Question {n}: what does clause {n % 97} of the contract say about notice?",
            "output": "The notice period is thirty days, in writing, to the registered address. "
            * 4,
            "model_name": "bench-model",
            "model_version": version,
            "confidence": 0.95,
            "messages": [],
            "context": [],
            "metadata": {"n": n},
        }
        for n in range(count)
    ]


def bench_ingest(batches: int) -> None:
    from reviews.models import Project, WebhookDelivery
    from reviews.services.ingest import item_ingest

    configs = [("no webhook", ""), ("webhook on", "https://hooks.example.com/hitl")]
    projects = {}
    for label, url in configs:
        projects[label] = Project.objects.create(
            name=f"Ingest {label}",
            slug=f"ingest-{len(url)}",
            mode="monitor",
            confidence_threshold=0.5,
            audit_sample_rate=0.05,
            webhook_url=url,
        )
        item_ingest(project=projects[label], payloads=payloads(f"warm-{len(url)}", 100))
    best = dict.fromkeys(projects, 0.0)
    # Alternate the two configurations and keep each one's best round, so a
    # busy moment on the machine does not decide the comparison.
    for round_ in range(3):
        for label, project in projects.items():
            began = time.perf_counter()
            for b in range(batches):
                item_ingest(project=project, payloads=payloads(f"{label}-{round_}-{b}", 1000))
            best[label] = max(best[label], batches * 1000 / (time.perf_counter() - began))
    for label, project in projects.items():
        deliveries = WebhookDelivery.objects.filter(project=project).count()
        print(
            f"ingest, {label}: {best[label]:,.0f} items/s, best of 3 rounds of "
            f"{batches} x 1,000 ({deliveries:,} outbox rows written)"
        )


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def bench_deliveries(count: int) -> None:
    from django.conf import settings

    from reviews.models import DeliveryStatus, Project, WebhookDelivery
    from reviews.services.ingest import item_ingest
    from reviews.webhooks.services import webhook_deliver

    settings.HITL_WEBHOOK_ALLOW_PRIVATE = True
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    project = Project.objects.create(
        name="Deliveries",
        slug="deliveries",
        mode="monitor",
        confidence_threshold=0.5,
        audit_sample_rate=0.0,
        webhook_url=f"http://127.0.0.1:{port}/hook",
    )
    for start in range(0, count, 1000):
        item_ingest(project=project, payloads=payloads(f"d-{start}", min(1000, count - start)))
    ids = [
        str(pk)
        for pk in WebhookDelivery.objects.filter(project=project).values_list("pk", flat=True)
    ]
    latencies = []
    began = time.perf_counter()
    for delivery_id in ids:
        t0 = time.perf_counter()
        webhook_deliver(delivery_id=delivery_id)
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - began
    server.shutdown()
    done = WebhookDelivery.objects.filter(project=project, status=DeliveryStatus.DELIVERED).count()
    print(
        f"webhook deliveries, one process: {len(ids) / elapsed:,.0f} deliveries/s, "
        f"median {statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 95):.1f} ms "
        f"({done:,}/{len(ids):,} delivered)"
    )


def seed_history(decided: int, audits: int) -> None:
    """Bulk history for the dashboard: items through ingest, decisions and reviews in SQL."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from reviews.models import Project
    from reviews.services.ingest import item_ingest

    users = [get_user_model().objects.create_user(f"reviewer{n}", is_staff=True) for n in range(12)]
    gate = Project.objects.create(name="History gate", slug="history-gate", mode="gate")
    monitor = Project.objects.create(
        name="History monitor",
        slug="history-monitor",
        mode="monitor",
        confidence_threshold=0.5,
        audit_sample_rate=1.0,
    )
    versions = ["2026-09-01", "2026-10-01", "2026-11-01"]
    began = time.perf_counter()
    for project, total in [(gate, decided), (monitor, audits)]:
        for start in range(0, total, 1000):
            version = versions[(start // 1000) % len(versions)]
            item_ingest(
                project=project,
                payloads=payloads(f"h{project.pk}-{start}", min(1000, total - start), version),
            )
    user_ids = "{" + ",".join(str(u.pk) for u in users) + "}"
    with connection.cursor() as cursor:
        # Decisions spread over 90 days: ~93% approved, the rest corrected or rejected.
        cursor.execute(
            """
            WITH picked AS (
                SELECT id, random() AS r, random() AS t
                FROM reviews_reviewitem WHERE project_id = %s
            )
            UPDATE reviews_reviewitem i SET
                status = CASE WHEN p.r < 0.93 THEN 'approved' WHEN p.r < 0.97 THEN 'corrected'
                         ELSE 'rejected' END,
                final_verdict = CASE WHEN p.r < 0.93 THEN 'approve' WHEN p.r < 0.97
                                THEN 'correct' ELSE 'reject' END,
                in_queue = (p.r > 0.995),
                decided_at = now() - (p.t * interval '90 days'),
                created_at = now() - (p.t * interval '90 days') - interval '1 hour'
            FROM picked p WHERE i.id = p.id
            """,
            [gate.pk],
        )
        cursor.execute(
            """
            INSERT INTO reviews_review
                (item_id, reviewer_id, verdict, reason_code, note, severity, seconds_spent,
                 is_audit, created_at)
            SELECT i.id, (%s::bigint[])[1 + (i.id %% 12)],
                   CASE WHEN i.project_id = %s THEN i.final_verdict
                        WHEN random() < 0.95 THEN 'approve' ELSE 'reject' END,
                   CASE WHEN i.final_verdict IN ('correct', 'reject') OR i.project_id = %s
                        THEN (ARRAY['factual_error', 'hallucination', 'format', 'tone'])
                             [1 + (i.id %% 4)]
                        ELSE '' END,
                   '', CASE WHEN i.final_verdict = 'approve' THEN 'none' ELSE 'minor' END,
                   20 + (i.id %% 60), i.project_id = %s,
                   COALESCE(i.decided_at, now() - random() * interval '90 days')
            FROM reviews_reviewitem i WHERE i.project_id IN (%s, %s)
            """,
            [user_ids, gate.pk, monitor.pk, monitor.pk, gate.pk, monitor.pk],
        )
        # Audited samples have left the queue, as after a real audit review.
        cursor.execute(
            "UPDATE reviews_reviewitem SET in_queue = false WHERE project_id = %s", [monitor.pk]
        )
    # What autovacuum does on a live database: statistics and the visibility map.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(
        f"seeded {decided:,} decided items and {audits:,} audit reviews over 90 days "
        f"in {time.perf_counter() - began:.0f} s"
    )


def bench_dashboard() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from reviews.monitoring.selectors import dashboard
    from reviews.monitoring.services import drift_evaluate_all

    admin = get_user_model().objects.create_superuser("bench-admin", "a@example.com", "x-pass-123")
    client = Client()
    client.force_login(admin)
    for days, bucket in [(7, "day"), (30, "day"), (90, "week")]:
        timings, queries = [], []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        for _ in range(3):
            queries.clear()
            with connection.execute_wrapper(count):
                t0 = time.perf_counter()
                dashboard(user=admin, bucket=bucket, days=days)
                timings.append((time.perf_counter() - t0) * 1000)
        page = []
        for _ in range(3):
            t0 = time.perf_counter()
            response = client.get(
                reverse("admin:reviews_dashboard"), {"days": days, "bucket": bucket}
            )
            page.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        print(
            f"dashboard, last {days} days by {bucket}: {len(queries)} queries, "
            f"selector {min(timings):.0f} ms, whole page {min(page):.0f} ms (best of 3)"
        )
    t0 = time.perf_counter()
    alerts = drift_evaluate_all()
    print(
        f"drift evaluation, all projects and versions: {(time.perf_counter() - t0) * 1000:.0f} ms "
        f"({len(alerts)} alerts)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decided", type=int, default=200_000)
    parser.add_argument("--audits", type=int, default=50_000)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--ingest-batches", type=int, default=10)
    args = parser.parse_args()

    with bench_database("hitl_bench_monitoring") as url:
        env = dict(os.environ, DATABASE_URL=url, REDIS_URL=redis_url())
        manage(env, "migrate", "--noinput", "-v0")
        os.environ.update(
            DATABASE_URL=url, REDIS_URL=redis_url(), DJANGO_SETTINGS_MODULE="hitlplatform.settings"
        )
        import django
        import redis

        django.setup()
        from django.db import connection

        redis.Redis.from_url(redis_url()).flushdb()
        try:
            bench_ingest(args.ingest_batches)
            bench_deliveries(args.deliveries)
            seed_history(args.decided, args.audits)
            bench_dashboard()
        finally:
            connection.close()
            redis.Redis.from_url(redis_url()).flushdb()


if __name__ == "__main__":
    main()
