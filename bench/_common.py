"""Helpers shared by the bench scripts: a throwaway PostgreSQL database and a served app."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def bench_database(name: str):
    """Create an empty database ``name``, yield its URL, drop it afterwards."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def with_path(url: str, path: str) -> str:
    """``url`` with its path (the database name, for a PostgreSQL URL) replaced."""
    return urlunsplit(urlsplit(url)._replace(path=path))


def create_database(server_url: str, name: str, *, keep: bool) -> bool:
    """Create the bench database ``name`` on ``server_url``'s server (dropping an old
    one); True when it already existed and ``keep`` asks to reuse it."""
    with psycopg.connect(with_path(server_url, "/postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and keep:
            return True
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return False


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(env: dict, workers: int = 2):
    """Run gunicorn on a free loopback port; yield its process (``.port`` set)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "hitlplatform.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
    )
    proc.port = port
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pids: list[int], *, reaped_children: bool = False) -> float:
    """User + system CPU seconds used so far by ``pids`` (gone processes count 0),
    with ``reaped_children`` also that of the children they have waited for."""
    tick = os.sysconf("SC_CLK_TCK")
    last = 15 if reaped_children else 13  # utime, stime[, cutime, cstime]
    total = 0.0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += sum(int(value) for value in fields[11:last]) / tick
    return total


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two ``cpu_by_pid`` samples by the processes alive at both
    (one that exited meanwhile would otherwise count negative) and those started since."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each of ``pids`` that is still running."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            found[pid] = sum(int(value) for value in fields[11:13]) / tick
    return found


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (gunicorn's workers)."""
    pids = (int(name) for name in os.listdir("/proc") if name.isdigit())
    return [pid for pid in pids if (fields := _stat_fields(pid)) and int(fields[1]) == parent]


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine: backends, WAL writer, checkpointer."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if Path(f"/proc/{name}/comm").read_text().strip() == "postgres":
                    found.append(int(name))
            except OSError:
                continue
    return found


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def items_cloned(cursor, *, template, rows: int, varied: dict[str, str]) -> None:
    """``rows`` copies of the ``template`` item, server-side, then the template removed.

    ``varied`` maps a column to the SQL expression it takes instead of the
    template's value; ``g`` is the row number (1 to ``rows``). One
    INSERT … SELECT from ``generate_series``: millions of rows in seconds.
    """
    from reviews.models import ReviewItem

    columns = [f.column for f in ReviewItem._meta.concrete_fields if f.column != "id"]
    select = ", ".join(varied.get(column, f't."{column}"') for column in columns)
    names = ", ".join(f'"{column}"' for column in columns)
    table = ReviewItem._meta.db_table
    cursor.execute(
        f'INSERT INTO "{table}" ({names}) SELECT {select} '  # noqa: S608
        f'FROM generate_series(1, %s) AS g, (SELECT * FROM "{table}" WHERE id = %s) AS t',
        [rows, template.pk],
    )
    cursor.execute(f'DELETE FROM "{table}" WHERE id = %s', [template.pk])  # noqa: S608
