"""Fault tests: private Redis and PostgreSQL servers this suite starts, stops and
restarts, real ``rqworker`` / ``manage.py cron`` / gunicorn processes, a loopback judge.

Nothing here touches the shared services: each Redis runs on a free port with
no persistence (a restart loses every key, as a crash of an unpersisted Redis
does), and the PostgreSQL cluster lives in a temporary directory owned by the
``postgres`` user.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
import redis

from tests.judge.conftest import database_url, queues_at
from tests.judge.fake_llm import FakeJudge
from tests.monitoring.receiver import free_port

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


# --- Redis --------------------------------------------------------------------------


class PrivateRedis:
    """A ``redis-server`` on a free port, no RDB, no AOF: a restart starts empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)

    def up(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.up, timeout=10, what=f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


@pytest.fixture
def private_redis(settings):
    """A private Redis, the test process's queues pointed at it."""
    server = PrivateRedis().start()
    settings.RQ_INLINE = False
    settings.RQ_QUEUES = queues_at(server.url())
    yield server
    server.stop()


# --- PostgreSQL -----------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory, run as the ``postgres`` user."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hitl-faults-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.name = "hitl_faults_private"

    def _as_postgres(self, *command: str, timeout: float = 120) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def init(self) -> "PrivatePostgres":
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def url(self, name: str | None = None) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name or self.name}"

    def pg_ctl(self, *args: str) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "-l",
            str(self.dir / "server.log"),
            "-w",
            *args,
        )

    def start(self) -> None:
        self.pg_ctl("start")

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres():
    server = PrivatePostgres().init()
    yield server
    server.destroy()


# --- processes ------------------------------------------------------------------------


def base_env(**overrides: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.update(overrides)
    return env


class Process:
    """A subprocess of this checkout in its own session (so its whole tree can be killed)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def descendants(self) -> list[int]:
        return descendants(self.pid)

    def kill_tree(self) -> None:
        """SIGKILL the process and everything it started (a machine lost)."""
        pids = [self.pid, *self.descendants()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        started = time.monotonic()
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill_tree()
        for pid in descendants(self.pid):  # orphans of a kill (a horse, a scheduler)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()
        if time.monotonic() - started > 5:  # shown with -s: a slow shutdown is worth knowing
            print(f"stopped {self.log_path.name} in {time.monotonic() - started:.1f} s")

    def log(self) -> str:
        return self.log_path.read_text()


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.fixture
def spawn(tmp_path):
    """Start ``manage.py`` / gunicorn processes; all are stopped after the test."""
    started: list[Process] = []

    def run(args: list[str], env: dict[str, str], name: str) -> Process:
        process = Process(args, env, tmp_path / f"{name}-{len(started)}.log")
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()


def worker_env(redis_url: str, db_url: str | None = None, **overrides: str) -> dict[str, str]:
    return base_env(
        DATABASE_URL=db_url or database_url(),
        REDIS_URL=redis_url,
        HITL_WEBHOOK_ALLOW_PRIVATE="1",
        HITL_WEBHOOK_TIMEOUT="2",
        **overrides,
    )


def rqworker(spawn, env: dict[str, str], *queues: str) -> Process:
    """``manage.py rqworker <queues>``: no --with-scheduler, the worker class runs it."""
    return spawn([sys.executable, "manage.py", "rqworker", *queues], env, "rqworker")


def cron(spawn, env: dict[str, str]) -> Process:
    """``manage.py cron``: the sweeps of ``hitlplatform.schedule``, surviving Redis outages."""
    return spawn([sys.executable, "manage.py", "cron"], env, "cron")


class WebServer:
    def __init__(self, process: Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"


def gunicorn(spawn, env: dict[str, str], workers: int = 2) -> WebServer:
    port = free_port()
    process = spawn(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "hitlplatform.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "60",
        ],
        env,
        "gunicorn",
    )
    server = WebServer(process, port)

    def answering():
        assert process.alive(), process.log()
        try:
            urllib.request.urlopen(server.url + "/api/v1/items/", timeout=2)
        except urllib.error.HTTPError:
            return True  # 401/403: the app answers
        except OSError:
            return False
        return True

    wait_for(answering, timeout=60, what="gunicorn to answer")
    return server


def post_json(url: str, body, key: str, timeout: float = 30) -> tuple[int, dict, dict]:
    """POST ``body``; returns (status, headers, parsed body). Never raises on HTTP errors."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, headers = exc.read(), exc.code, dict(exc.headers)
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"_raw": raw.decode(errors="replace")[:500]}
    return status, headers, parsed


@pytest.fixture
def fake_judge():
    """The loopback judge; ``[[judge:slow]]`` answers after 8 s."""
    judge = FakeJudge(slow_seconds=8.0).start()
    yield judge
    judge.stop()


def job_count(connection: redis.Redis, pattern: str = "rq:job:*") -> int:
    return len(connection.keys(pattern))
