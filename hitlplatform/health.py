"""Liveness and readiness for load balancers and orchestrators.

``/healthz`` answers 200 while the process can run Python: it touches no
dependency, so a database outage never makes a load balancer restart healthy
web processes. ``/readyz`` asks every registered check (the database, Redis
when ``REDIS_URL`` is set, the export storage) at once, each with a short
timeout, and answers 200 when all of them answer, else 503 naming the failed
ones. A new dependency is one function registered with :func:`readiness_check`.

Neither needs credentials (load balancers call them) and neither tells more
than a check's name, its time and the type of the error: connection errors
name hosts and ports, so the details go to the log, never into the answer.
"""

import functools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import boto3
import redis
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from storages.backends.s3 import S3Storage

logger = logging.getLogger(__name__)

# What a storage existence probe asks for; it need not exist.
STORAGE_PROBE_NAME = ".readyz-probe"
# One pool for every probe of this process: checks hung on a dead dependency
# occupy its threads until their own timeouts end them, and a flood of probes
# queues behind them (answered "no answer within ...") instead of starting a
# thread each.
_POOL = ThreadPoolExecutor(max_workers=12, thread_name_prefix="readyz")


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    run: Callable[[float], None]
    """Raises when the dependency does not answer; gets the timeout in seconds."""
    applies: Callable[[], bool]


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    ok: bool
    ms: float
    error: str = ""

    def as_json(self) -> dict:
        body: dict = {"status": "ok" if self.ok else "fail", "ms": round(self.ms, 1)}
        if self.error:
            body["error"] = self.error
        return body


CHECKS: dict[str, ReadinessCheck] = {}


def readiness_check(name: str, *, applies: Callable[[], bool] = lambda: True):
    """Register ``function(timeout)`` as the readiness check ``name``."""

    def register(function: Callable[[float], None]) -> Callable[[float], None]:
        CHECKS[name] = ReadinessCheck(name=name, run=function, applies=applies)
        return function

    return register


@readiness_check("database")
def database_answers(timeout: float) -> None:
    """A new connection (what the next request may need) runs ``SELECT 1``.

    Its own connection, closed at once: the check runs in a helper thread, and
    the request's connection would stay open there for good.
    """
    wrapper = connections.create_connection(DEFAULT_DB_ALIAS)
    if wrapper.vendor == "postgresql":
        # libpq counts whole seconds and treats anything under 2 as 2.
        options = {**wrapper.settings_dict.get("OPTIONS", {})}
        options["connect_timeout"] = max(2, round(timeout))
        wrapper.settings_dict = {**wrapper.settings_dict, "OPTIONS": options}
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        wrapper.close()


@readiness_check("redis", applies=lambda: bool(settings.REDIS_URL))
def redis_answers(timeout: float) -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


@readiness_check("storage")
def export_storage_answers(timeout: float) -> None:
    """The export storage (``STORAGES["exports"]``) can be reached.

    Object storage: one metadata request for a probe name, which proves the
    endpoint and the credentials (a refusal raises; a missing key does not).
    A local directory: it is a writable directory, or can be created as one
    by the first export.
    """
    storage = storages["exports"]
    if isinstance(storage, FileSystemStorage):
        _directory_usable(Path(storage.location))
    elif isinstance(storage, S3Storage):
        _s3_probe(storage, timeout)
    else:
        storage.exists(STORAGE_PROBE_NAME)


def _s3_probe(storage: S3Storage, timeout: float) -> None:
    """One HEAD request with the probe's own timeouts and no retries.

    The storage's own client waits 60 s per attempt and retries five times,
    which is right for a build and wrong for a probe.
    """
    client = _s3_probe_client(storage, timeout)
    key = "/".join(part for part in (storage.location, STORAGE_PROBE_NAME) if part)
    try:
        client.head_object(Bucket=storage.bucket_name, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
            raise


@functools.lru_cache(maxsize=8)
def _s3_probe_client(storage: S3Storage, timeout: float):
    config = storage.client_config.merge(
        Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"mode": "standard", "max_attempts": 1},
        )
    )
    session = boto3.session.Session(
        aws_access_key_id=storage.access_key or None,
        aws_secret_access_key=storage.secret_key or None,
    )
    return session.client(
        "s3",
        endpoint_url=storage.endpoint_url or None,
        region_name=storage.region_name or None,
        config=config,
    )


def _directory_usable(path: Path) -> None:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError("the export location is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError("the export location is not writable")


def readiness() -> list[CheckOutcome]:
    """Run every applicable check at once; each gets ``HITL_HEALTH_TIMEOUT`` seconds.

    A check still running after the timeout counts as failed; its thread (of
    the shared pool) is left to finish on its own: each check bounds itself by
    the same timeout.
    """
    timeout = settings.HITL_HEALTH_TIMEOUT
    checks = [check for check in CHECKS.values() if check.applies()]
    started = time.perf_counter()
    futures = {check.name: _POOL.submit(_timed, check, timeout) for check in checks}
    outcomes = []
    for name, future in futures.items():
        remaining = max(0.0, timeout - (time.perf_counter() - started))
        try:
            outcomes.append(future.result(timeout=remaining))
        except FutureTimeout:
            logger.warning("Readiness check %s gave no answer within %s s", name, timeout)
            outcomes.append(
                CheckOutcome(
                    name=name,
                    ok=False,
                    ms=(time.perf_counter() - started) * 1000,
                    error=f"no answer within {timeout:g} s",
                )
            )
    return outcomes


def _timed(check: ReadinessCheck, timeout: float) -> CheckOutcome:
    started = time.perf_counter()
    try:
        check.run(timeout)
    except Exception as exc:
        logger.warning("Readiness check %s failed: %r", check.name, exc)
        return CheckOutcome(
            name=check.name,
            ok=False,
            ms=(time.perf_counter() - started) * 1000,
            error=f"{check.name} did not answer: {type(exc).__name__}",
        )
    return CheckOutcome(name=check.name, ok=True, ms=(time.perf_counter() - started) * 1000)


@require_safe
@never_cache
def healthz(request):
    """The process is alive. Touches no dependency."""
    return JsonResponse({"status": "ok"})


@require_safe
@never_cache
def readyz(request):
    """200 when every dependency answers, else 503 with the failed checks named."""
    outcomes = readiness()
    failed = [outcome.name for outcome in outcomes if not outcome.ok]
    body = {
        "status": "fail" if failed else "ok",
        "failed": failed,
        "checks": {outcome.name: outcome.as_json() for outcome in outcomes},
    }
    return JsonResponse(body, status=503 if failed else 200)
