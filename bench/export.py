"""Export N reviewed items to SFT chat JSONL through a real RQ worker, on local disk and S3.

    python bench/export.py [--rows 1000000] [--keep] [--repeat 1]

Seeds a dedicated database (``<database of DATABASE_URL>_bench_export`` on its
server) with N final items (70 % approved, 30 % corrected, each with its
history row). Then, in the same run, for each storage (the local directory,
then S3 on a SeaweedFS server started on loopback ports), queues one SFT
export on a dedicated Redis database, runs ``manage.py rqworker exports
--burst`` as a child process and measures the build's rows/s (from the
export's started/finished times, which include publishing, and the wall
clock) and the worker's peak RSS (worker and work horse). Both builds must
give the same sha256. With ``--repeat N`` each storage is built N times,
alternating, and the best rows/s counts. ``--keep`` reuses the seeded
database from a previous run.

Just before each build, the same-run reference: PostgreSQL's own
``COPY (<the export's row query>) TO STDOUT`` of the same rows, read to the
end and thrown away (the database's speed at producing what the build reads,
on the machine as loaded at that moment); each build's rate is printed as a
share of its reference. CPU is printed beside every clock figure (worker,
PostgreSQL backends, storage server; per row in microseconds), and the load
average, since the machine may be shared.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import cpu_seconds, create_database, items_cloned, manage, with_path  # noqa: E402 (needs the sys.path entry above)
from tests.datasets.seaweedfs import SeaweedFS  # noqa: E402

# The bench's own database on the server of DATABASE_URL, named after its database.
BENCH_DB = os.environ.get(
    "BENCH_DATABASE",
    f"{urlsplit(os.environ.get('DATABASE_URL', 'postgres:///hitl')).path.strip('/') or 'hitl'}"
    "_bench_export",
)
BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "14"))


def seed(rows: int) -> int:
    """Insert ``rows`` final items and their history rows server-side; returns the project id.

    One template item goes through the ORM, so every column (including ones this
    script does not know about) gets a valid value; the rest are copies of it
    with varying text, made by INSERT ... SELECT over generate_series.
    """
    from django.db import connection

    from reviews.models import Project, ReviewItem

    project = Project.objects.create(name="Bench", slug="bench", audit_sample_rate=0.0)
    template = ReviewItem.objects.create(
        project=project,
        external_id="template",
        prompt="template",
        messages=[{"role": "system", "content": "You are a careful clinical assistant."}],
        output="template",
        model_name="acme-med",
        model_version="2026-11-01",
        confidence=0.8,
        payload_hash="0" * 64,
        status="approved",
        final_output="template",
        final_verdict="approve",
        final_severity="none",
    )
    varied = {
        "external_id": "'bench-' || g",
        "prompt": "'Patient ' || g || ' asks: what is the maximum daily dose of paracetamol "
        "for an adult weighing ' || (50 + g %% 50) || ' kg with normal liver function?'",
        "output": "'For a healthy adult of ' || (50 + g %% 50) || ' kg the usual maximum is "
        "4 g per day, taken as 500 mg to 1 g every 4 to 6 hours (case ' || g || ').'",
        "status": "CASE WHEN g %% 10 < 7 THEN 'approved' ELSE 'corrected' END",
        "final_verdict": "CASE WHEN g %% 10 < 7 THEN 'approve' ELSE 'correct' END",
        "final_output": "CASE WHEN g %% 10 < 7 THEN 'For a healthy adult of ' || (50 + g %% 50) "
        "|| ' kg the usual maximum is 4 g per day, taken as 500 mg to 1 g every 4 to 6 hours "
        "(case ' || g || ').' ELSE 'The maximum is 4 g per day; use at most 2 g per day with "
        "liver disease or chronic alcohol use (case ' || g || ').' END",
        "final_severity": "CASE WHEN g %% 10 < 7 THEN 'none' ELSE 'major' END",
        "final_reason_code": "CASE WHEN g %% 10 < 7 THEN '' ELSE 'factual_error' END",
        "decided_at": "now()",
        "created_at": "now()",
        "updated_at": "now()",
    }
    table = ReviewItem._meta.db_table
    history = ReviewItem.history.model._meta.db_table
    history_fields = {f.column for f in ReviewItem.history.model._meta.concrete_fields}
    item_columns = ", ".join(
        f'"{f.column}"' for f in ReviewItem._meta.concrete_fields if f.column in history_fields
    )
    with connection.cursor() as cursor:
        items_cloned(cursor, template=template, rows=rows, varied=varied)
        cursor.execute(f'DELETE FROM "{history}"')  # noqa: S608
        cursor.execute(
            f'INSERT INTO "{history}" ({item_columns}, history_date, '  # noqa: S608
            f"history_change_reason, history_type) SELECT {item_columns}, now(), "
            f"'Reviewed (bench)', '~' FROM \"{table}\""
        )
        cursor.execute(f'VACUUM ANALYZE "{table}"')
        cursor.execute(f'VACUUM ANALYZE "{history}"')
    return project.pk


class BackendCpu:
    """CPU seconds the bench database's PostgreSQL backends use from now on.

    Sampled from /proc while the build runs, since a backend's figures vanish
    when it exits; backends already connected (this script's own, which seeded
    the data) count only what they use after the start.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[int, float] = {}
        self.done = threading.Event()
        with psycopg.connect(self.url, autocommit=True) as conn:
            self.baseline: dict[int, float] = {
                pid: cpu_seconds([pid]) for pid in self._backends(conn)
            }
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _backends(conn) -> list[int]:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [BENCH_DB],
        ).fetchall()
        return [pid for (pid,) in rows]

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.done.wait(0.2):
                for pid in self._backends(conn):
                    used = cpu_seconds([pid])
                    if used:
                        self.seen[pid] = used

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        return sum(used - self.baseline.get(pid, 0.0) for pid, used in self.seen.items())


def copy_reference(export, server: str) -> dict:
    """PostgreSQL's ``COPY (<export's row query>) TO STDOUT``: rows/s and backend CPU."""
    from django.db import connection

    from datasets.selectors import export_source_rows

    sql, params = export_source_rows(export).query.sql_with_params()
    with connection.cursor() as cursor:
        query = cursor.mogrify(sql, params)
    url = with_path(server, f"/{BENCH_DB}")
    rows = size = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET jit = off")  # as the build reads
        backends = BackendCpu(url)
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY ({query}) TO STDOUT") as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
                size += len(block)
        wall = time.perf_counter() - started
        pg_cpu = backends.stop()
    return {
        "rows": rows,
        "mb": size / 1e6,
        "wall_s": wall,
        "rows_per_s": rows / wall,
        "pg_cpu_s": pg_cpu,
    }


def build_once(project, env: dict[str, str], server: str, storage_pids: list[int]) -> dict:
    """One export built by a fresh ``rqworker --burst`` with ``env``; its figures.

    CPU counts the worker, the PostgreSQL backends and the storage server
    (``storage_pids``): on a shared machine it says more than the clock. The
    same-run reference (``copy_reference``) is measured just before.
    """
    from datasets.models import DatasetExport
    from datasets.services import export_create

    export = export_create(format="sft_chat", projects=[project], filters={}, via="bench")
    reference = copy_reference(export, server)
    backends = BackendCpu(with_path(server, f"/{BENCH_DB}"))
    storage_cpu = cpu_seconds(storage_pids)
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "exports", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # wait4: the peak RSS of this worker and the work horse it forks, nothing else.
    _pid, status, usage = os.wait4(worker.pid, 0)
    worker.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    pg_cpu = backends.stop()
    storage_cpu = cpu_seconds(storage_pids) - storage_cpu
    if worker.returncode != 0:
        raise SystemExit(f"rqworker exited with {worker.returncode}")
    export = DatasetExport.objects.get(pk=export.pk)
    if export.status != "succeeded":
        raise SystemExit(f"export {export.pk} is {export.status}: {export.error}")
    build = (export.finished_at - export.started_at).total_seconds()
    train = export.files["train"]
    return {
        "rows": export.row_count,
        "mb": train["bytes"] / 1e6,
        "name": train["name"],
        "build_s": build,
        "wall_s": wall,
        "rows_per_s": export.row_count / build,
        "rows_per_s_wall": export.row_count / wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "worker_cpu_s": usage.ru_utime + usage.ru_stime,
        "pg_cpu_s": pg_cpu,
        "storage_cpu_s": storage_cpu,
        "cpu_s": usage.ru_utime + usage.ru_stime + pg_cpu + storage_cpu,
        "sha256": train["sha256"],
        "reference": reference,
        "share_of_copy": (export.row_count / build) / reference["rows_per_s"],
        "load": os.getloadavg()[0],
    }


def report(label: str, run: dict) -> None:
    ref, rows = run["reference"], run["rows"]
    print(
        f"{label} reference: COPY (the export's row query) TO STDOUT: {ref['rows']:,} rows "
        f"({ref['mb']:.0f} MB) in {ref['wall_s']:.1f} s: {ref['rows_per_s']:,.0f} rows/s; "
        f"PostgreSQL CPU {ref['pg_cpu_s']:.1f} s ({ref['pg_cpu_s'] / ref['rows'] * 1e6:.1f} us/row)"
    )
    print(
        f"{label}: {rows:,} rows ({run['mb']:.0f} MB) in {run['build_s']:.1f} s in the "
        f"job, {run['wall_s']:.1f} s wall: {run['rows_per_s']:,.0f} rows/s (job, "
        f"{run['share_of_copy']:.0%} of the reference), {run['rows_per_s_wall']:,.0f} rows/s "
        f"(wall); worker peak RSS {run['peak_rss_mb']:.0f} MB; CPU worker "
        f"{run['worker_cpu_s']:.1f} s ({run['worker_cpu_s'] / rows * 1e6:.1f} us/row, with its "
        f"start-up), PostgreSQL {run['pg_cpu_s']:.1f} s ({run['pg_cpu_s'] / rows * 1e6:.1f} "
        f"us/row), storage server {run['storage_cpu_s']:.1f} s; sha256 {run['sha256'][:16]}…; "
        f"load {run['load']:.1f} on {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse a seeded bench database")
    parser.add_argument("--repeat", type=int, default=1, help="builds per storage")
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hitl")
    redis = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    scratch = Path(tempfile.mkdtemp(prefix="hitl-bench-export-"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HITL_S3_", "HITL_EXPORT_"))
    }
    env.update(
        {
            "DATABASE_URL": with_path(server, f"/{BENCH_DB}"),
            "REDIS_URL": urlunsplit(redis._replace(path=f"/{BENCH_REDIS_DB}")),
            "HITL_EXPORT_DIR": str(scratch / "local"),
            "LOG_LEVEL": "WARNING",
        }
    )
    kept = create_database(server, BENCH_DB, keep=args.keep)
    # Also when kept: the schema follows the code under test.
    manage(env, "migrate", "--noinput")
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitlplatform.settings")
    import django

    django.setup()
    import django_rq

    from reviews.models import Project

    if kept:
        project = Project.objects.get(slug="bench")
    else:
        started = time.perf_counter()
        project = Project.objects.get(pk=seed(args.rows))
        print(f"seeded {args.rows:,} items in {time.perf_counter() - started:.1f} s")
    print(f"items in database: {project.items.count():,}")
    django_rq.get_queue("exports").connection.flushdb()

    seaweed = SeaweedFS(scratch / "seaweedfs").start()
    try:
        seaweed.bucket_create("hitl-bench")
        s3_env = {
            **env,
            **seaweed.env(bucket="hitl-bench", prefix="exports"),
            "HITL_EXPORT_DIR": str(scratch / "s3-worker"),
        }
        runs: dict[str, list[dict]] = {"local": [], "s3": []}
        for _ in range(args.repeat):
            for label, run_env, pids in (
                ("local", env, []),
                ("s3", s3_env, [seaweed.process.pid]),
            ):
                run = build_once(project, run_env, server, pids)
                report(label, run)
                runs[label].append(run)
                shutil.rmtree(scratch / "local", ignore_errors=True)  # keep the disk free
    finally:
        seaweed.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    best = {label: max(found, key=lambda run: run["rows_per_s"]) for label, found in runs.items()}
    hashes = {run["sha256"] for found in runs.values() for run in found}
    if len(hashes) != 1:
        raise SystemExit(f"the builds differ: {sorted(hashes)}")
    sha256 = hashes.pop()
    print(f"sha256 (every build, both storages): {sha256}")
    share = best["s3"]["rows_per_s"] / best["local"]["rows_per_s"]
    peak_rss = max(run["peak_rss_mb"] for found in runs.values() for run in found)
    references = [run["reference"]["rows_per_s"] for found in runs.values() for run in found]
    loads = [run["load"] for found in runs.values() for run in found]
    local = best["local"]
    print(f"export_rows = {local['rows']}")
    print(f"export_rows_per_s = {local['rows_per_s']:.0f}")
    print(f"export_peak_rss_mb = {peak_rss:.0f}")
    print(f"export_sha256 = {sha256}")
    print(f"export_copy_rows_per_s = {max(references):.0f}")
    print(f"export_share_of_copy = {local['share_of_copy']:.2f}")
    print(f"export_worker_cpu_us_per_row = {local['worker_cpu_s'] / local['rows'] * 1e6:.1f}")
    print(f"export_pg_cpu_us_per_row = {local['pg_cpu_s'] / local['rows'] * 1e6:.1f}")
    print(f"export_rows_per_s_local = {best['local']['rows_per_s']:.0f}")
    print(f"export_rows_per_s_s3 = {best['s3']['rows_per_s']:.0f}")
    print(f"export_peak_rss_mb_local = {max(r['peak_rss_mb'] for r in runs['local']):.0f}")
    print(f"export_peak_rss_mb_s3 = {max(r['peak_rss_mb'] for r in runs['s3']):.0f}")
    print(f"export_cpu_s_local = {min(r['cpu_s'] for r in runs['local']):.1f}")
    print(f"export_cpu_s_s3 = {min(r['cpu_s'] for r in runs['s3']):.1f}")
    print(f"s3_share_of_local = {share:.2f}")
    print(f"load_average = {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
    main()
