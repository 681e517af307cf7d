"""Items per second through POST /api/v1/items/ against PostgreSQL.

Serves the app with gunicorn on loopback, against a throwaway database, and
posts batches of 1, 100 and 1,000 items of ~1 KB each (300-char prompt,
600-char output, confidence, model version, one context document) through a
keep-alive HTTP connection. Every item is stored, checked (four tier-1 rules)
and routed, with its history row. Prints
``batch=N: X items/s, median Y ms per request``.

    python bench/ingest.py [--requests-1 500] [--requests-100 60] [--requests-1000 20]
"""

import argparse
import http.client
import json
import os
import random
import statistics
import string
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bench_database, child_pids, cpu_seconds, manage, postgres_pids, served

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


def run(server, key: str, batch: int, requests: int, start: int, clients: int) -> str:
    """Post ``requests`` batches from ``clients`` connections at once; a result line."""
    rng = random.Random(batch)
    bodies = [
        json.dumps({"items": make_items(rng, start + r * batch, batch)}).encode()
        for r in range(requests)
    ]
    shares = [bodies[i::clients] for i in range(clients)]
    workers, database = child_pids(server.pid), postgres_pids()
    app_cpu, db_cpu = cpu_seconds(workers), cpu_seconds(database)
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [
            s for share in pool.map(lambda b: post_all(server.port, key, b), shares) for s in share
        ]
    elapsed = time.perf_counter() - began
    per_k = 1_000_000 / (batch * requests)  # CPU seconds -> ms per 1,000 items
    app_cpu = (cpu_seconds(workers) - app_cpu) * per_k
    db_cpu = (cpu_seconds(database) - db_cpu) * per_k
    return (
        f"batch={batch}: {batch * requests / elapsed:,.0f} items/s, "
        f"median {statistics.median(latencies) * 1000:.1f} ms per request "
        f"(CPU per 1,000 items: app {app_cpu:,.0f} ms, PostgreSQL {db_cpu:,.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-1", type=int, default=500)
    parser.add_argument("--requests-100", type=int, default=60)
    parser.add_argument("--requests-1000", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[1, 2],
        help="concurrent client connections; one run per value",
    )
    args = parser.parse_args()

    with bench_database("hitl_bench_ingest") as url:
        env = dict(os.environ, DATABASE_URL=url, HITL_API_THROTTLE="1000000/min")
        env.pop("REDIS_URL", None)
        manage(env, "migrate", "--noinput", "-v0")
        key = manage(env, "shell", "-c", SETUP).strip().splitlines()[-1]
        size = len(json.dumps(make_items(random.Random(0), 0, 1)[0]))
        print(f"item size ~{size} bytes; gunicorn workers={args.workers}; PostgreSQL")
        with served(env, workers=args.workers) as server:
            run(server, key, 10, 8, 10_000_000, clients=args.workers)  # warm up every worker
            start = 0
            for clients in args.clients:
                print(f"{clients} client(s), load average {os.getloadavg()[0]:.2f}:")
                for batch, requests in [
                    (1, args.requests_1),
                    (100, args.requests_100),
                    (1000, args.requests_1000),
                ]:
                    print(run(server, key, batch, requests, start, clients))
                    start += batch * requests


if __name__ == "__main__":
    main()
