"""What a /metrics scrape costs on a big database.

    python bench/metrics.py [--rows 1000000] [--projects 20] [--keep]

Seeds a dedicated database (``hitl_bench_metrics`` on the server of
``DATABASE_URL``, or ``BENCH_DATABASE_NAME``) with N items spread over P
projects (89 % final, 10 % waiting for review, 1 % pending the judge), then
times, in this process, the database gauges alone and a whole scrape through
the Django test client (median of 7 after one warm-up), beside two references
measured in the same run: ``SELECT count(*)`` of the items table and a
``/healthz`` request. ``--keep`` reuses the seeded database of a previous run.
"""

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import create_database, items_cloned, with_path  # noqa: E402 (needs the sys.path entry above)

BENCH_DB = os.environ.get("BENCH_DATABASE_NAME", "hitl_bench_metrics")
TOKEN = secrets.token_urlsafe(24)  # this run only
RUNS = 7


def seed(rows: int, projects: int) -> None:
    """One template item through the ORM, then ``rows`` copies by INSERT ... SELECT."""
    from django.db import connection

    from reviews.models import Project, ReviewItem

    ids = [
        Project.objects.create(name=f"Bench {n}", slug=f"bench-{n}", audit_sample_rate=0.0).pk
        for n in range(projects)
    ]
    template = ReviewItem.objects.create(
        project_id=ids[0],
        external_id="template",
        prompt="What is the maximum daily dose of paracetamol?",
        output="4 g per day for a healthy adult.",
        model_name="acme-med",
        model_version="2026-11-01",
        confidence=0.8,
        payload_hash="0" * 64,
    )
    varied = {
        "project_id": f"(ARRAY{ids})[1 + g %% {projects}]",
        "external_id": "'bench-' || g",
        "status": "CASE WHEN g %% 100 < 89 THEN 'approved' WHEN g %% 100 < 99 "
        "THEN 'pending_review' ELSE 'pending_judge' END",
        "in_queue": "g %% 100 BETWEEN 89 AND 98",
        "created_at": "now() - (g %% 86400) * interval '1 second'",
        "updated_at": "now() - (g %% 3600) * interval '1 second'",
    }
    table = ReviewItem._meta.db_table
    with connection.cursor() as cursor:
        items_cloned(cursor, template=template, rows=rows, varied=varied)
        cursor.execute(f'VACUUM ANALYZE "{table}"')


def median_ms(action) -> float:
    action()  # warm-up: connections, caches, plans
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hitl")
    kept = create_database(server, BENCH_DB, keep=args.keep)
    os.environ["DATABASE_URL"] = with_path(server, f"/{BENCH_DB}")
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ["HITL_METRICS_TOKEN"] = TOKEN
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitlplatform.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    from hitlplatform.metrics.collector import DatabaseCollector
    from reviews.models import ReviewItem

    if not kept:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        seed(args.rows, args.projects)
        print(f"seeded {args.rows:,} items in {time.perf_counter() - started:.1f} s")
    items = ReviewItem.objects.count()

    def count_all():
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{ReviewItem._meta.db_table}"')  # noqa: S608
            cursor.fetchone()

    client = Client()
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def scrape():
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.status_code

    def healthz():
        assert client.get("/healthz").status_code == 200

    gauges_ms = median_ms(lambda: list(DatabaseCollector().collect()))
    scrape_ms = median_ms(scrape)
    count_ms = median_ms(count_all)
    healthz_ms = median_ms(healthz)
    size = len(client.get("/metrics", headers=headers).content)
    connections.close_all()

    print(f"{items:,} items in {args.projects} projects; median of {RUNS} runs")
    print(f"  database gauges (6 queries)   {gauges_ms:8.1f} ms")
    print(f"  whole /metrics scrape         {scrape_ms:8.1f} ms ({size:,} bytes)")
    print(f"  reference: SELECT count(*)    {count_ms:8.1f} ms")
    print(f"  reference: /healthz           {healthz_ms:8.1f} ms")
    print(f"items = {items}")
    print(f"gauges_ms = {gauges_ms:.1f}")
    print(f"scrape_ms = {scrape_ms:.1f}")
    print(f"count_all_ms = {count_ms:.1f}")
    print(f"healthz_ms = {healthz_ms:.1f}")
    print(f"scrape_bytes = {size}")


if __name__ == "__main__":
    main()
