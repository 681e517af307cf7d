"""Judge throughput: 1,000 items judged by 2 RQ workers against a loopback model.

The model is an OpenAI-compatible HTTP server on 127.0.0.1 that answers every
request after 200 ms. Items are ingested in one batch (one transaction, one
judge job per ``HITL_JUDGE_CHUNK_SIZE`` items enqueued after commit); the clock
runs from the ingest call until no item is left in ``pending_judge``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hitl python bench/judge.py

Uses its own database (``bench_hitl_judge``, created and dropped) and Redis
database 2 of ``REDIS_URL``'s server unless ``BENCH_REDIS_URL`` says otherwise.
Options: ``--items``, ``--workers``, ``--latency``, ``--concurrency``.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

VERDICT = json.dumps(
    {"score": 0.9, "label": "pass", "rationale": "Grounded.", "error_categories": []}
)


class FakeModel(ThreadingHTTPServer):
    """Chat completions after a fixed delay; counts requests in flight."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, latency: float) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.latency = latency
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeModel

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length))
        with self.server.lock:
            self.server.in_flight += 1
            self.server.requests += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        time.sleep(self.server.latency)
        with self.server.lock:
            self.server.in_flight -= 1
        body = json.dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": VERDICT},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 250, "completion_tokens": 30, "total_tokens": 280},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per judge answer")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight per job")
    parser.add_argument(
        "--worker-log", type=Path, help="append the workers' logs (INFO: per-job timings) here"
    )
    args = parser.parse_args()

    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hitl")
    server_url = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    redis_url = os.environ.get(
        "BENCH_REDIS_URL",
        f"redis://{server_url.hostname or '127.0.0.1'}:{server_url.port or 6379}/2",
    )
    os.environ["REDIS_URL"] = redis_url
    os.environ["TEST_DATABASE_NAME"] = "bench_hitl_judge"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitlplatform.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()

    import redis
    from django.conf import settings
    from django.db import connection
    from rq import Worker

    from reviews.judge.services import judge_config_save
    from reviews.models import ItemStatus, JudgeConfig, Project, ReviewItem
    from reviews.services.ingest import item_ingest

    if connection.vendor != "postgresql":
        sys.exit("bench/judge.py needs PostgreSQL: set DATABASE_URL.")
    redis_connection = redis.Redis.from_url(redis_url)
    redis_connection.ping()
    redis_connection.flushdb()

    model = FakeModel(args.latency)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    db = settings.DATABASES["default"]
    worker_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}"
        + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        + f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db_name}",
        "REDIS_URL": redis_url,
    }
    report: list[tuple[str, str]] = []
    log = subprocess.DEVNULL
    if args.worker_log:
        worker_env["LOG_LEVEL"] = "INFO"
        log = args.worker_log.open("a")
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "judge", "--with-scheduler"],
            cwd=BASE_DIR,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(args.workers)
    ]
    try:
        project = Project.objects.create(
            name="Bench", slug="bench-judge", mode="monitor", audit_sample_rate=0.0
        )
        judge_config_save(
            config=JudgeConfig(
                project=project,
                base_url=f"http://127.0.0.1:{model.server_address[1]}/v1",
                model="bench-judge",
                rubric="Grade accuracy.",
                timeout_seconds=30,
                max_concurrency=args.concurrency,
                max_retries=3,
            )
        )
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=redis_connection)) < args.workers:
            if time.monotonic() > deadline:
                sys.exit("RQ workers did not start.")
            time.sleep(0.1)

        payloads = [
            {
                "external_id": f"bench-{n}",
                "prompt": f"What is the maximum daily dose of paracetamol? (case {n})",
                "output": "For healthy adults the usual maximum is 4 g per day.",
                "model_name": "acme-med",
                "model_version": "2026-11-01",
                "confidence": 0.95,
                "messages": [],
                "context": [{"text": "Adults: max 4 g/24 h.", "source": "formulary.pdf"}],
                "metadata": {},
            }
            for n in range(args.items)
        ]
        started = time.perf_counter()
        item_ingest(project=project, payloads=payloads, via="bench")
        ingested = time.perf_counter() - started
        pending = ReviewItem.objects.filter(project=project, status=ItemStatus.PENDING_JUDGE)
        while pending.exists():
            if time.perf_counter() - started > 300:
                sys.exit(f"Gave up: {pending.count()} items still pending after 300 s.")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        statuses = dict(
            ReviewItem.objects.filter(project=project)
            .values_list("status")
            .annotate(n=django.db.models.Count("id"))
        )
        chunk = settings.HITL_JUDGE_CHUNK_SIZE
        load = os.getloadavg()[0]
        report = [
            ("items judged", f"{args.items}"),
            ("workers", f"{args.workers}"),
            ("judge latency", f"{args.latency * 1000:.0f} ms per request"),
            ("chunk / concurrency", f"{chunk} items per job / {args.concurrency} in flight"),
            ("judge jobs", f"{-(-args.items // chunk)}"),
            ("ingest (1 batch)", f"{ingested:.3f} s"),
            ("ingest to all judged", f"{elapsed:.2f} s"),
            ("throughput", f"{args.items / elapsed:.0f} items/s"),
            ("max requests in flight", f"{model.max_in_flight}"),
            ("requests served", f"{model.requests}"),
            ("final statuses", f"{statuses}"),
            ("load average (1 min)", f"{load:.1f} on {os.cpu_count()} cores"),
        ]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        model.shutdown()
        if log is not subprocess.DEVNULL:
            log.close()
        redis_connection.flushdb()
        connection.creation.destroy_test_db(db_name, verbosity=0)
    # The workers have exited: their CPU time (and their job processes') is known.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report.append(("worker CPU (user+sys)", f"{usage.ru_utime + usage.ru_stime:.2f} s"))
    for name, value in report:
        print(f"{name + ':':<25} {value}")


if __name__ == "__main__":
    main()
