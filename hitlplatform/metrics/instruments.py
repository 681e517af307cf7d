"""Event metrics, recorded where the event happens (web process or RQ worker).

With ``PROMETHEUS_MULTIPROC_DIR`` set (an environment variable, read when
prometheus_client is first imported) every process writes its values to files
in that directory and ``/metrics`` sums them. A process's files are named by
its pid, except in RQ work horses: RQ forks one per job, and a file per job
would pile up by the thousand and slow every scrape. A horse names its files
after its worker, whose horses run one at a time, so each worker keeps one set
of files however many jobs it runs.
"""

import contextlib
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import Counter, Histogram, values
from rq import get_current_job

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def process_identifier() -> str:
    """The name of this process's metric files: the worker for RQ work horses, else the pid."""
    job = get_current_job()
    if job is not None and job.worker_name:
        return "rq-" + _UNSAFE.sub("_", job.worker_name)
    return str(os.getpid())


if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
    # Before the first metric value is created (labelled metrics create theirs lazily).
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)

JUDGE_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
EXPORT_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)

JUDGE_CALL_SECONDS = Histogram(
    "hitl_judge_call_duration_seconds",
    "Time of one judge model call, answered or failed.",
    ["project", "backend"],
    buckets=JUDGE_LATENCY_BUCKETS,
)
JUDGE_ERRORS = Counter(
    "hitl_judge_errors",
    "Judge calls that gave no verdict, by kind; retried calls count each time.",
    ["project", "backend", "kind"],
)
WEBHOOK_ATTEMPTS = Counter(
    "hitl_webhook_attempts",
    "Webhook delivery attempts by outcome: delivered, retry (another attempt is "
    "scheduled) or failed (given up).",
    ["project", "outcome"],
)
EXPORT_BUILDS = Counter(
    "hitl_export_builds",
    "Dataset export builds finished, by format and outcome (succeeded or failed).",
    ["format", "outcome"],
)
DEGRADED_OPERATIONS = Counter(
    "hitl_degraded_operations",
    "Work done degraded because Redis was unreachable, by kind: throttle (the API "
    "counted requests per process) or enqueue (a job waits in the database for the sweeps).",
    ["kind"],
)
OTLP_SPANS = Counter(
    "hitl_otlp_spans",
    "Spans received on the OTLP traces endpoint, by outcome: stored (an LLM call that is "
    "an item or part of one), held (waiting for its trace's root), ignored (not an LLM "
    "call) or rejected (answered in partial_success).",
    ["project", "outcome"],
)
EXPORT_BUILD_SECONDS = Histogram(
    "hitl_export_build_duration_seconds",
    "Time of one dataset export build, succeeded or failed.",
    ["format", "outcome"],
    buckets=EXPORT_DURATION_BUCKETS,
)


class JudgeCall(Protocol):
    latency_ms: int
    error: str
    error_kind: str


def judge_calls_observe(*, project: str, backend: str, calls: Iterable[JudgeCall]) -> None:
    """Record the latency of each judge call and the kind of each failure.

    A call that never left (``error_kind`` ``config``: no usable API key) has
    no latency.
    """
    for call in calls:
        if call.error_kind != "config":
            JUDGE_CALL_SECONDS.labels(project, backend).observe(call.latency_ms / 1000)
        if call.error:
            JUDGE_ERRORS.labels(project, backend, call.error_kind or "other").inc()


def degraded_observe(*, kind: str) -> None:
    DEGRADED_OPERATIONS.labels(kind=kind).inc()


def otlp_spans_observe(*, project: str, counts: dict[str, int]) -> None:
    for outcome, count in counts.items():
        if count:
            OTLP_SPANS.labels(project, outcome).inc(count)


def webhook_attempt_observe(*, project: str, outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(project, outcome).inc()


@contextlib.contextmanager
def export_build_observed(*, format: str) -> Iterator[None]:
    """Count and time the export build run inside; an exception counts as failed."""
    started = time.monotonic()
    outcome = "failed"
    try:
        yield
        outcome = "succeeded"
    finally:
        EXPORT_BUILDS.labels(format, outcome).inc()
        EXPORT_BUILD_SECONDS.labels(format, outcome).observe(time.monotonic() - started)
