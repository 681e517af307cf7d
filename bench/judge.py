"""Judge throughput: 1,000 items judged by 2 RQ workers against a loopback model.

The model is an OpenAI-compatible HTTP server on 127.0.0.1 that answers every
request after 200 ms. Items are ingested in one batch (one transaction, one
judge job per ``HITL_JUDGE_CHUNK_SIZE`` items enqueued after commit); the clock
runs from the ingest call until no item is left in ``pending_judge``. Worker CPU
is counted from the ingest call until the workers are idle again (the worker
processes, their scheduler and the work-horse each job forks; their start-up is
reported apart). The same-run reference sends the same number of requests from
one asyncio process to the same model with ``workers * concurrency`` in flight:
the floor the model's latency sets.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hitl python bench/judge.py

Uses its own database (``bench_hitl_judge``, created and dropped) and Redis
database 2 of ``REDIS_URL``'s server unless ``BENCH_REDIS_URL`` says otherwise.
Options: ``--items``, ``--workers``, ``--latency``, ``--concurrency``.
"""

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench._common import child_pids, cpu_seconds  # noqa: E402

VERDICT = json.dumps(
    {"score": 0.9, "label": "pass", "rationale": "Grounded.", "error_categories": []}
)


class FakeModel:
    """Chat completions after a fixed delay; counts requests in flight.

    An asyncio server on its own thread and loop, speaking just enough HTTP/1.1
    (keep-alive, Content-Length): cheap per request, so the machine's CPU goes
    to the workers being measured, not to the stand-in model.
    """

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self.handle, "127.0.0.1", 0, backlog=1024)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                request = json.loads(await reader.readexactly(length))
                self.requests += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                await asyncio.sleep(self.latency)
                self.in_flight -= 1
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
                        "usage": {
                            "prompt_tokens": 250,
                            "completion_tokens": 30,
                            "total_tokens": 280,
                        },
                    }
                ).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def worker_cpu_seconds(pids: list[int]) -> float:
    """CPU of the workers, of the children they reaped (work horses) and of the
    children alive now (the scheduler, a horse not yet reaped)."""
    alive = [child for pid in pids for child in child_pids(pid)]
    return cpu_seconds(pids, reaped_children=True) + cpu_seconds(alive)


def reference_seconds(port: int, requests: int, in_flight: int) -> float:
    """Wall time for ``requests`` chat completions, ``in_flight`` at once, from here."""
    import aiohttp

    body = json.dumps({"model": "bench-judge", "messages": [{"role": "user", "content": "x"}]})

    async def run() -> float:
        limit = asyncio.Semaphore(in_flight)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=in_flight)
        ) as session:

            async def one() -> None:
                async with limit, session.post(url, data=body) as response:
                    await response.read()

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(requests)))
            return time.perf_counter() - started

    return asyncio.run(run())


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

    import django_rq
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
    model.start()
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
    keys: list[tuple[str, object]] = []
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
                base_url=f"http://127.0.0.1:{model.port}/v1",
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
        worker_pids = [worker.pid for worker in workers]
        startup_cpu = worker_cpu_seconds(worker_pids)

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
        queue = django_rq.get_queue("judge")
        while queue.count or any(
            w.get_state() == "busy" for w in Worker.all(connection=redis_connection)
        ):
            time.sleep(0.05)
        time.sleep(0.2)  # the last work horse reaped
        run_cpu = worker_cpu_seconds(worker_pids) - startup_cpu
        load = os.getloadavg()
        reference = reference_seconds(model.port, args.items, args.workers * args.concurrency)
        statuses = dict(
            ReviewItem.objects.filter(project=project)
            .values_list("status")
            .annotate(n=django.db.models.Count("id"))
        )
        chunk = settings.HITL_JUDGE_CHUNK_SIZE
        in_flight = args.workers * args.concurrency
        report = [
            ("items judged", f"{args.items}"),
            ("workers", f"{args.workers}"),
            ("judge latency", f"{args.latency * 1000:.0f} ms per request"),
            ("chunk / concurrency", f"{chunk} items per job / {args.concurrency} in flight"),
            ("judge jobs", f"{-(-args.items // chunk)}"),
            ("ingest (1 batch)", f"{ingested:.3f} s"),
            ("ingest to all judged", f"{elapsed:.2f} s"),
            ("reference", f"{reference:.2f} s ({in_flight} in flight, same model)"),
            ("throughput", f"{args.items / elapsed:.0f} items/s"),
            (
                "worker CPU during run",
                f"{run_cpu:.2f} s = {run_cpu / args.items * 1000:.2f} ms/item",
            ),
            ("worker start-up CPU", f"{startup_cpu:.2f} s for {args.workers} workers"),
            ("max requests in flight", f"{model.max_in_flight}"),
            ("requests served", f"{model.requests}"),
            ("final statuses", f"{statuses}"),
            (
                "load average",
                f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores",
            ),
        ]
        keys = [
            ("judge_items", args.items),
            ("judge_workers", args.workers),
            ("judge_wall_s", f"{elapsed:.2f}"),
            ("judge_reference_s", f"{reference:.2f}"),
            ("judge_reference_in_flight", in_flight),
            ("judge_cpu_ms_per_item", f"{run_cpu / args.items * 1000:.2f}"),
            ("judge_worker_startup_cpu_s", f"{startup_cpu:.2f}"),
            ("judge_items_per_s", f"{args.items / elapsed:.0f}"),
            ("load_avg_1m", f"{load[0]:.2f}"),
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
    report.append(("worker CPU incl. start-up", f"{usage.ru_utime + usage.ru_stime:.2f} s"))
    for name, value in report:
        print(f"{name + ':':<25} {value}")
    print()
    for name, value in keys:
        print(f"{name} = {value}")


if __name__ == "__main__":
    main()
