"""Items per second through POST /api/v1/items/ against PostgreSQL.

Serves the app with gunicorn on loopback, against a throwaway database, and
posts batches of 1, 100 and 1,000 items of ~1 KB each (300-char prompt,
600-char output, confidence, model version, one context document) through a
keep-alive HTTP connection. Every item is stored, checked (four tier-1 rules)
and routed, with its history row. Prints
``batch=N: X items/s, median Y ms per request``.

The reference is measured in the same run, on the same database server:
PostgreSQL's own COPY of the same item rows (batches of 1,000, one COPY and
one transaction each, from one connection) into a scratch copy of the items
table, once with the table's indexes (``LIKE ... INCLUDING ALL``: the unique
external id, the queue and full-text indexes) and once bare. The run ends with
a block of ``key = value`` lines; ``ingest_share_of_copy`` is the 2-client
1,000-item rate as a percentage of the bare COPY rate.

The search documents are built off the ingest path (``search_index_pending``,
a worker job in production): the server runs with inline queues and
``HITL_SEARCH_INDEX_ON_COMMIT=0``, so the timed intake only queues the items,
and the indexer then runs once over everything ingested, timed on its own
(``search_index_items_per_s``), so the deferred cost is visible in the same run.

    python bench/ingest.py [--requests-1 500] [--requests-100 60] [--requests-1000 20]
                           [--database hitl_bench_ingest]

Measured 2026-12-04 on the shared 2-core machine (load average 3.5-6), the
batch path before and after its rework, side by side: batches of 1,000, 2
clients, 2,427 items/s and 7.2% of the same-run bare COPY before, app CPU 182
ms per 1,000 items; after, four runs at 5,012-7,166 items/s and 14.8-27.4% of
COPY (the reference itself moved from 14,900 to 34,500 rows/s with the load),
app CPU 96-121 ms per 1,000 items (101 in the last). The PostgreSQL figure
counts every postgres process on the machine, other sessions' included; the
ingest backend alone, measured in process, spends 60-70 ms per 1,000 items.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import statistics
import string
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    bench_database,
    child_pids,
    cpu_by_pid,
    cpu_delta,
    cpu_seconds,
    manage,
    postgres_pids,
    search_index_timed,
    served,
)

SETUP = """
from reviews.models import CheckRule, Project
from reviews.services.projects import api_key_create
project = Project.objects.create(
    name="Bench", slug="bench", mode="monitor", confidence_threshold=0.5,
    risk_keywords=["overdose", "lawsuit", "fraud"], audit_sample_rate=0.05,
)
for fields in [
    dict(name="max", kind="max_length", limit=4000),
    dict(name="min", kind="min_length", limit=10),
    dict(name="banned", kind="banned_keywords", keywords=["guaranteed cure", "risk-free"]),
    dict(name="ssn", kind="must_not_match", pattern=r"\\b\\d{3}-\\d{2}-\\d{4}\\b",
         severity="warning"),
]:
    CheckRule.objects.create(project=project, **fields)
print(api_key_create(project=project, name="bench")[1])
"""


def text(rng: random.Random, n: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < n:
        words.append("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))))
    return " ".join(words)[:n]


def make_items(rng: random.Random, start: int, count: int) -> list[dict]:
    return [
        {
            "external_id": f"bench-{start + i}",
            "prompt": text(rng, 300),
            "output": text(rng, 600),
            "model_name": "bench-model",
            "model_version": "2026-11-01",
            "confidence": round(rng.random(), 3),
            "context": [{"text": text(rng, 80), "source": "kb"}],
        }
        for i in range(count)
    ]


def post_all(port: int, key: str, bodies: list[bytes]) -> list[float]:
    """POST ``bodies`` one after another on one keep-alive connection; latencies in s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    latencies = []
    for body in bodies:
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/items/", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - t0)
        if response.status != 201:
            raise SystemExit(f"unexpected {response.status}: {payload[:300]!r}")
    conn.close()
    return latencies


def run(server, key: str, batch: int, requests: int, start: int, clients: int) -> dict:
    """Post ``requests`` batches from ``clients`` connections at once; the figures."""
    rng = random.Random(batch)
    bodies = [
        json.dumps({"items": make_items(rng, start + r * batch, batch)}).encode()
        if batch > 1
        else json.dumps(make_items(rng, start + r, 1)[0]).encode()
        for r in range(requests)
    ]
    shares = [bodies[i::clients] for i in range(clients)]
    workers = child_pids(server.pid)
    app_cpu, db_cpu = cpu_seconds(workers), cpu_by_pid(postgres_pids())
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [
            s for share in pool.map(lambda b: post_all(server.port, key, b), shares) for s in share
        ]
    elapsed = time.perf_counter() - began
    per_k = 1_000_000 / (batch * requests)  # CPU seconds -> ms per 1,000 items
    app_cpu = (cpu_seconds(workers) - app_cpu) * per_k
    # Every PostgreSQL process on the machine: on a shared machine, others' too.
    db_cpu = cpu_delta(db_cpu, cpu_by_pid(postgres_pids())) * per_k
    figures = {
        "rate": batch * requests / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "app_cpu_ms_per_k": app_cpu,
        "db_cpu_ms_per_k": db_cpu,
    }
    print(
        f"batch={batch}: {figures['rate']:,.0f} items/s, "
        f"median {figures['median_ms']:.1f} ms per request "
        f"(CPU per 1,000 items: app {app_cpu:,.0f} ms, PostgreSQL {db_cpu:,.0f} ms)"
    )
    return figures


def stored_rows(rng: random.Random, start: int, count: int, project_id: int) -> list[tuple]:
    """The rows ingest stores for ``make_items``' items, as the items table holds them."""
    now = datetime.now(UTC)
    rows = []
    for item in make_items(rng, start, count):
        digest = hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
        rows.append(
            (
                project_id,
                item["external_id"],
                item["prompt"],
                "[]",
                "[]",
                False,
                item["output"],
                item["model_name"],
                item["model_version"],
                item["confidence"],
                json.dumps(item["context"]),
                "{}",
                digest,
                "auto_approved",
                100,
                False,
                False,
                "[]",
                item["output"],
                "",
                "",
                "",
                False,
                False,
                False,
                "",
                now,
                now,
                now,
                "single",
                "",
                None,
            )
        )
    return rows


COPY_COLUMNS = (
    "project_id, external_id, prompt, messages, tools, is_transcript, output, model_name, "
    "model_version, confidence, context, metadata, payload_hash, status, priority, in_queue, "
    "is_audit, review_reasons, final_output, final_verdict, final_reason_code, final_severity, "
    "adjudicated, is_control, second_review, review_notes, decided_at, created_at, updated_at, "
    "kind, final_preference, final_candidate_id"
)


def copy_reference(url: str, *, like: str, batches: int, project_id: int) -> float:
    """Rows per second of PostgreSQL's COPY of ingest's item rows into a scratch table
    (``CREATE TABLE ... (LIKE reviews_reviewitem <like>)``), 1,000 rows per COPY and
    transaction, from one connection; the rows are built before the clock starts."""
    rng = random.Random(7)
    prepared = [stored_rows(rng, 50_000_000 + b * 1000, 1000, project_id) for b in range(batches)]
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_scratch")
        conn.execute(f"CREATE TABLE bench_copy_scratch (LIKE reviews_reviewitem {like})")
        conn.commit()
        began = time.perf_counter()
        for rows in prepared:
            with conn.cursor().copy(f"COPY bench_copy_scratch ({COPY_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - began
        conn.execute("DROP TABLE bench_copy_scratch")
        conn.commit()
    return batches * 1000 / elapsed


def single_item_statements(env: dict) -> int:
    """SQL statements of one new single-item POST, as Django logs them (BEGIN, COMMIT
    and COPY included)."""
    out = manage(env, "shell", "-c", STATEMENTS)
    return int(out.strip().splitlines()[-1])


STATEMENTS = """
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from reviews.models import ApiKey
from reviews.services.projects import api_key_create
raw = api_key_create(project=ApiKey.objects.get(name="bench").project, name="count")[1]
client = Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")
def post(ext):
    body = {"external_id": ext, "prompt": "A question about the contract terms.",
            "output": "A plain answer of some length.", "model_name": "bench-model",
            "model_version": "2026-11-01", "confidence": 0.9}
    return client.post("/api/v1/items/", body, content_type="application/json")
post("count-warm")
with CaptureQueriesContext(connection) as ctx:
    assert post("count-1").status_code == 201
# BEGIN and COMMIT are logged too, and rows_copy logs each COPY.
print(len(ctx.captured_queries))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-1", type=int, default=500)
    parser.add_argument("--requests-100", type=int, default=60)
    parser.add_argument("--requests-1000", type=int, default=20)
    parser.add_argument("--copy-batches", type=int, default=20, help="reference COPY batches")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[1, 2],
        help="concurrent client connections; one run per value",
    )
    parser.add_argument(
        "--database", default="hitl_bench_ingest", help="throwaway database (dropped and recreated)"
    )
    args = parser.parse_args()

    with bench_database(args.database) as url:
        env = dict(
            os.environ,
            DATABASE_URL=url,
            HITL_API_THROTTLE="1000000/min",
            HITL_SEARCH_INDEX_ON_COMMIT="0",
        )
        env.pop("REDIS_URL", None)
        manage(env, "migrate", "--noinput", "-v0")
        key = manage(env, "shell", "-c", SETUP).strip().splitlines()[-1]
        with psycopg.connect(url) as conn:
            project_id = conn.execute("SELECT id FROM reviews_project").fetchone()[0]
        size = len(json.dumps(make_items(random.Random(0), 0, 1)[0]))
        print(f"item size ~{size} bytes; gunicorn workers={args.workers}; PostgreSQL")
        results: dict[tuple[int, int], dict] = {}
        with served(env, workers=args.workers) as server:
            # Warm up every worker on both paths (imports, precompiled queries).
            run(server, key, 10, 8, 10_000_000, clients=args.workers)
            run(server, key, 1, 40, 10_100_000, clients=args.workers)
            start = 0
            for clients in args.clients:
                print(f"{clients} client(s), load average {os.getloadavg()[0]:.2f}:")
                for batch, requests in [
                    (1, args.requests_1),
                    (100, args.requests_100),
                    (1000, args.requests_1000),
                ]:
                    results[clients, batch] = run(server, key, batch, requests, start, clients)
                    start += batch * requests
        indexed, index_seconds, index_db_cpu = search_index_timed(env)
        print(
            f"search indexer, after the intake: {indexed:,} items in {index_seconds:.1f} s, "
            f"{indexed / index_seconds:,.0f} items/s "
            f"(PostgreSQL CPU {index_db_cpu:.2f} ms per item)"
        )
        statements = single_item_statements(env)
        copy_bare = copy_reference(
            url,
            like="INCLUDING DEFAULTS INCLUDING IDENTITY",
            batches=args.copy_batches,
            project_id=project_id,
        )
        copy_indexed = copy_reference(
            url, like="INCLUDING ALL", batches=args.copy_batches, project_id=project_id
        )
        print(
            f"reference, PostgreSQL COPY of the same item rows, 1,000 per COPY, 1 connection: "
            f"{copy_bare:,.0f} rows/s bare, {copy_indexed:,.0f} rows/s with the items "
            f"table's indexes"
        )
        most = max(args.clients)
        batch_k = results[most, 1000]["rate"]
        single = results[min(args.clients), 1]
        print()
        print(f"load_average = {os.getloadavg()[0]:.2f}")
        print(f"copy_rows_per_s = {copy_bare:.0f}")
        print(f"copy_indexed_rows_per_s = {copy_indexed:.0f}")
        print(f"ingest_batch_1000_clients = {most}")
        print(f"ingest_batch_1000_items_per_s = {batch_k:.0f}")
        print(f"ingest_share_of_copy = {100 * batch_k / copy_bare:.1f}")
        print(f"ingest_share_of_indexed_copy = {100 * batch_k / copy_indexed:.1f}")
        print(f"single_item_app_cpu_ms = {single['app_cpu_ms_per_k'] / 1000:.2f}")
        print(f"single_item_db_cpu_ms = {single['db_cpu_ms_per_k'] / 1000:.2f}")
        print(f"single_item_median_ms = {single['median_ms']:.2f}")
        print(f"single_item_statements = {statements}")
        print(f"search_index_items_per_s = {indexed / index_seconds:.0f}")
        print(f"search_index_db_cpu_ms_per_item = {index_db_cpu:.3f}")


if __name__ == "__main__":
    main()
