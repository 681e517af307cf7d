"""Fixtures for the judge tests: a fake judge model on loopback, our own Redis
database (1) for the queues, and real ``rqworker`` subprocesses."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings

from reviews.judge.services import judge_config_save
from reviews.models import JudgeConfig
from tests import factories
from tests.judge.fake_llm import FakeJudge

BASE_DIR = Path(settings.BASE_DIR)
JUDGE_REDIS_DB = 1


def redis_host_port() -> tuple[str, int]:
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    return parts.hostname or "127.0.0.1", parts.port or 6379


def queues_at(url: str) -> dict:
    return {name: {"URL": url, "DEFAULT_TIMEOUT": 600} for name in settings.RQ_QUEUE_NAMES}


@pytest.fixture
def fake_judge():
    judge = FakeJudge(slow_seconds=3.0).start()
    yield judge
    judge.stop()


@pytest.fixture
def judge_redis(settings):
    """Point every RQ queue at our own Redis database, emptied first."""
    host, port = redis_host_port()
    url = f"redis://{host}:{port}/{JUDGE_REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.ping()  # a missing Redis is a failure, never a skip
    connection.flushdb()
    settings.RQ_INLINE = False
    settings.RQ_QUEUES = queues_at(url)
    settings.HITL_JUDGE_RETRY_BACKOFF = 1
    yield url
    connection.flushdb()
    connection.close()


def make_judge(project, fake: FakeJudge, **overrides) -> JudgeConfig:
    backend = overrides.pop("backend", "openai")
    api_key = overrides.pop("api_key", "")
    fields = {
        "backend": backend,
        "base_url": fake.anthropic_url if backend == "anthropic" else fake.openai_url,
        "model": "judge-large" if backend == "openai" else "claude-judge",
        "rubric": "The answer must be medically accurate and cite the formulary.",
        "threshold": 0.5,
        "timeout_seconds": 1.0,
        "max_concurrency": 20,
        "max_retries": 0,
    }
    fields.update(overrides)
    return judge_config_save(config=JudgeConfig(project=project, **fields), api_key=api_key)


@pytest.fixture
def judged_monitor_project(db):
    return factories.make_project(
        name="Judged monitor", slug="judged-monitor", mode="monitor", confidence_threshold=0.5
    )


def database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """``manage.py rqworker`` in a subprocess against the test database and our Redis db."""

    def __init__(self, redis_url: str, log_path: Path, *extra_args: str, env: dict | None = None):
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "judge", *extra_args],
            cwd=BASE_DIR,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def start_worker(tmp_path):
    workers: list[Worker] = []

    def start(redis_url: str, *extra_args: str, env: dict | None = None) -> Worker:
        worker = Worker(redis_url, tmp_path / f"worker-{len(workers)}.log", *extra_args, env=env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {message or predicate}")
