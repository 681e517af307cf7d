"""Tier 2: the LLM judge grades outputs, and its verdict routes them.

Flow: ingest stores an item in ``pending_judge`` (with the check, risk and
confidence triggers it found in ``review_reasons``) and, after commit, enqueues
one ``judge`` job per chunk of items. The job calls :func:`judge_pending_items`,
which calls the judge for every item still pending (many requests in flight at
once) and stores the verdicts and routes the items batch by batch as the calls
complete, each batch in one transaction holding its item rows' locks. A flag, a
fail, a score under the threshold or any judge failure adds a risk reason, so
the item goes to a human even in monitor mode; a judge failure never
auto-approves an item. The database is the source of truth: an item whose job
was lost stays in ``pending_judge`` until :func:`judge_requeue_stuck` enqueues
it again.
"""

import logging
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from hitlplatform.metrics.instruments import judge_calls_observe
from hitlplatform.queues import get_queue
from reviews.judge.backends import JudgeSettings
from reviews.judge.crypto import SecretDecryptError, decrypt_secret, encrypt_secret
from reviews.judge.prompt import build_request
from reviews.judge.runner import CallOutcome, judge_calls_stream
from reviews.models import ItemStatus, JudgeConfig, JudgeLabel, JudgeVerdict, Project, ReviewItem
from reviews.services.judge_queue import (
    JUDGE_JOB,
    JUDGE_QUEUE,
    judge_chunks,
    judge_config_active,
    judge_job_options,
)
from reviews.services.routing import REASON_JUDGE_FLAG, Budget, budget_open, route
from reviews.services.transitions import items_route

logger = logging.getLogger(__name__)

# Starts with the judge-flag reason, so routing treats it as a risk trigger.
REASON_JUDGE_ERROR = f"{REASON_JUDGE_FLAG}:error"
# What api_key_env may hold: a plain environment variable name.
ENV_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


class JudgeConfigError(Exception):
    """The judge cannot be called as configured (e.g. its API key is unavailable)."""


# --- configuration -------------------------------------------------------------


@transaction.atomic
def judge_config_save(
    *, config: JudgeConfig, api_key: str = "", clear_api_key: bool = False, user=None
) -> JudgeConfig:
    """Save a judge configuration edited in the admin.

    A non-empty ``api_key`` replaces the stored key (encrypted with Fernet);
    empty keeps it; ``clear_api_key`` removes it. The key is never written to
    the history table. A changed rubric text bumps ``rubric_version`` so each
    verdict names the rubric it was graded against.
    """
    previous = (
        JudgeConfig.objects.select_for_update().filter(pk=config.pk).first() if config.pk else None
    )
    if previous is not None:
        config.rubric_version = previous.rubric_version
        if previous.rubric.strip() != config.rubric.strip():
            config.rubric_version += 1
    if api_key:
        config.api_key_encrypted = encrypt_secret(api_key)
    elif clear_api_key:
        config.api_key_encrypted = ""
    elif previous is not None:
        config.api_key_encrypted = previous.api_key_encrypted
    config._history_user = user
    config._change_reason = (
        "Judge configuration created" if previous is None else "Judge configuration changed"
    )
    config.save()
    return config


def judge_api_key(*, config: JudgeConfig) -> str | None:
    """The key to send: the stored one, else the named environment variable, else None."""
    if config.api_key_encrypted:
        try:
            return decrypt_secret(config.api_key_encrypted)
        except SecretDecryptError as exc:
            raise JudgeConfigError(str(exc)) from exc
    if config.api_key_env:
        value = os.environ.get(config.api_key_env)
        if not value:
            raise JudgeConfigError(
                f"The environment variable {config.api_key_env} named in the judge "
                "configuration is not set on this worker."
            )
        return value
    return None


def _judge_settings(config: JudgeConfig) -> JudgeSettings:
    return JudgeSettings(
        backend=config.backend,
        base_url=config.base_url,
        model=config.model,
        api_key=judge_api_key(config=config),
        rubric=config.rubric,
        rubric_version=config.rubric_version,
        threshold=config.threshold,
        timeout_seconds=config.timeout_seconds,
        max_concurrency=config.max_concurrency,
        response_format=config.response_format,
        max_tokens=config.max_tokens,
    )


# --- enqueueing -------------------------------------------------------------------


# --- judging -----------------------------------------------------------------------


@dataclass
class JudgeRunResult:
    recorded: int = 0
    """Items judged (or routed) and moved out of pending_judge by this run."""
    skipped: int = 0
    """Items no longer pending_judge (already judged by another run): left alone."""
    retry_item_ids: list[int] = field(default_factory=list)
    """Items whose call failed transiently; still pending, for the job's next attempt."""


def judge_pending_items(
    *, item_ids: list[int], final_attempt: bool | None = True, attempt: int = 1
) -> JudgeRunResult:
    """Judge the listed items that are still ``pending_judge``, then route them.

    Idempotent: items already judged are skipped without a call. Calls run
    concurrently (``max_concurrency`` per project) outside any transaction;
    :func:`judge_verdicts_record` stores each batch of verdicts as it
    completes, under row locks, while later calls are still in flight.
    A transient failure (timeout, connection error, 429, 5xx) leaves the item
    pending and listed in ``retry_item_ids`` unless ``final_attempt``, in which
    case it is recorded as a judge error and sent to a human. ``final_attempt=None``
    (a judge job) decides per project: final once ``attempt`` exceeds the
    configuration's ``max_retries``, and always with inline queues. Unparseable
    replies and other API errors are recorded as errors at once.
    """
    result = JudgeRunResult()
    pending = list(
        ReviewItem.objects.filter(pk__in=item_ids, status=ItemStatus.PENDING_JUDGE)
        .select_related("project")
        .order_by("pk")
    )
    result.skipped = len(set(item_ids)) - len(pending)
    by_project: dict[int, list[ReviewItem]] = defaultdict(list)
    for item in pending:
        by_project[item.project_id].append(item)
    for items in by_project.values():
        started = time.perf_counter()
        project = items[0].project
        config = judge_config_active(project=project)
        if config is None:
            result.recorded += judge_route_without_verdict(item_ids=[item.pk for item in items])
            continue
        final = final_attempt
        if final is None:
            final = settings.RQ_INLINE or attempt > config.max_retries
        calls = recorded = skipped = retries = 0
        # Verdicts are stored batch by batch while the later calls are in flight.
        for judge, outcomes in _outcome_batches(config=config, items=items):
            calls += len(outcomes)
            judge_calls_observe(project=project.slug, backend=config.backend, calls=outcomes)
            to_record = []
            for outcome in outcomes:
                if outcome.retryable and not final:
                    result.retry_item_ids.append(outcome.item_id)
                    retries += 1
                else:
                    to_record.append(outcome)
            batch_recorded, batch_skipped = judge_verdicts_record(
                config=config, judge=judge, outcomes=to_record, attempt=attempt
            )
            recorded += batch_recorded
            skipped += batch_skipped
        result.recorded += recorded
        result.skipped += skipped
        logger.info(
            "Judge %s on %s: %d call(s), %d recorded, %d to retry, in %.2f s",
            config.model,
            project.slug,
            calls,
            recorded,
            retries,
            time.perf_counter() - started,
        )
    return result


def _outcome_batches(
    *, config: JudgeConfig, items: list[ReviewItem]
) -> Iterator[tuple[JudgeSettings | None, list[CallOutcome]]]:
    """The call outcomes for ``items``, in batches as the calls complete, each with
    the settings they were judged with (None: the configuration is unusable)."""
    try:
        judge = _judge_settings(config)
    except JudgeConfigError as exc:
        yield (
            None,
            [
                CallOutcome(item_id=item.pk, verdict=None, error=str(exc), error_kind="config")
                for item in items
            ],
        )
        return
    requests = [
        build_request(
            item_id=item.pk,
            rubric=judge.rubric,
            rubric_version=judge.rubric_version,
            prompt=item.prompt,
            output=item.output,
            messages=item.messages,
            context=item.context,
            tools=item.tools,
            is_transcript=item.is_transcript,
        )
        for item in items
    ]
    for outcomes in judge_calls_stream(judge, requests):
        yield judge, outcomes


def _verdict_for(
    *, item: ReviewItem, config: JudgeConfig, judge: JudgeSettings | None, outcome, attempt: int
) -> JudgeVerdict:
    parsed = outcome.verdict
    threshold = judge.threshold if judge else config.threshold
    verdict = JudgeVerdict(
        item=item,
        backend=config.backend,
        model=config.model,
        rubric_version=judge.rubric_version if judge else config.rubric_version,
        threshold=threshold,
        attempts=attempt,
        latency_ms=outcome.latency_ms,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
    )
    if parsed is None:
        verdict.label = JudgeLabel.ERROR
        verdict.flagged = True
        verdict.error = outcome.error
        verdict.raw_reply = outcome.raw_reply
    else:
        verdict.label = parsed.label
        verdict.score = parsed.score
        verdict.rationale = parsed.rationale
        verdict.error_categories = parsed.error_categories
        verdict.flagged = parsed.label != JudgeLabel.PASS or parsed.score < threshold
    return verdict


@transaction.atomic
def judge_verdicts_record(
    *,
    config: JudgeConfig,
    judge: JudgeSettings | None,
    outcomes: list[CallOutcome],
    attempt: int = 1,
) -> tuple[int, int]:
    """Store one verdict per item and route it; returns (recorded, skipped).

    Locks the item rows (in id order, so concurrent runs cannot deadlock) and
    records only items still ``pending_judge``: a second run for the same item
    finds it routed and does nothing. The item keeps the triggers found at
    ingest and gains ``judge_flag`` (or ``judge_flag:error``) when flagged,
    then goes through :func:`route` and the state machine to ``pending_review``
    or ``auto_approved``.
    """
    by_id = {outcome.item_id: outcome for outcome in outcomes}
    if not by_id:
        return 0, 0
    items = list(
        ReviewItem.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk__in=list(by_id), status=ItemStatus.PENDING_JUDGE)
        .order_by("pk")
    )
    verdicts, routes = [], []
    for item in items:
        verdict = _verdict_for(
            item=item, config=config, judge=judge, outcome=by_id[item.pk], attempt=attempt
        )
        verdicts.append(verdict)
        reasons = list(item.review_reasons)
        if verdict.flagged:
            reasons.append(
                REASON_JUDGE_ERROR if verdict.label == JudgeLabel.ERROR else REASON_JUDGE_FLAG
            )
        score = "" if verdict.score is None else f" (score {verdict.score:.2f})"
        routes.append((item, reasons, f"Judge {config.model}: {verdict.label}{score}"))
    items_route(entries=_decided(routes))
    JudgeVerdict.objects.bulk_create(verdicts)
    return len(items), len(by_id) - len(items)


@transaction.atomic
def judge_route_without_verdict(*, item_ids: list[int]) -> int:
    """Route pending items of a project whose judge was disabled meanwhile, on the
    triggers found at ingest alone. Locks the rows; skips items no longer pending."""
    items = list(
        ReviewItem.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk__in=item_ids, status=ItemStatus.PENDING_JUDGE)
        .order_by("pk")
    )
    items_route(
        entries=_decided(
            [
                (item, list(item.review_reasons), "Judge disabled; routed without a verdict")
                for item in items
            ]
        )
    )
    return len(items)


def _decided(entries: list[tuple[ReviewItem, list[str], str]]) -> list[tuple]:
    """(item, reasons, why) -> (item, where routing sends it, history reason).

    Call in the transaction that routes them: a project's review budget is
    opened (its rows locked) for the items and closed here.
    """
    routed = []
    budgets: dict[int, Budget | None] = {}
    for item, reasons, why in entries:
        if item.project_id not in budgets:
            budgets[item.project_id] = budget_open(project=item.project)
        decision = route(
            project=item.project,
            external_id=item.external_id,
            reasons=reasons,
            budget=budgets[item.project_id],
            model_version=item.model_version,
            confidence=item.confidence,
        )
        routed.append((item, decision, f"{why}; routed to {decision.status}"))
    for budget in budgets.values():
        if budget is not None:
            budget.close()
    return routed


# --- reconciliation ----------------------------------------------------------------


@dataclass
class RequeueResult:
    items: int = 0
    jobs: int = 0


def judge_requeue_stuck(*, older_than: timedelta | None = None) -> RequeueResult:
    """Enqueue judge jobs again for items in ``pending_judge`` that no live job holds.

    An item needs one when it has been pending longer than ``older_than``
    (default ``HITL_JUDGE_SWEEP_GRACE_SECONDS``, which keeps the sweep off items
    whose ingest has just committed) and no job in Redis lists it: not queued,
    not scheduled (a retry waiting for its backoff), not running with a recent
    heartbeat. That covers Redis down at ingest, a Redis restart that lost the
    queues and the scheduled retries, and a worker killed mid-job (its job's
    heartbeat lapses after three ``HITL_WORKER_HEARTBEAT_SECONDS``). Jobs are
    idempotent, so a duplicate costs calls, never a second verdict. Enqueues
    at once, outside any transaction, and lets a Redis error propagate so the
    command or cron job fails visibly.
    """
    if older_than is None:
        older_than = timedelta(seconds=settings.HITL_JUDGE_SWEEP_GRACE_SECONDS)
    cutoff = timezone.now() - older_than
    result = RequeueResult()
    configs = {c.project_id: c for c in JudgeConfig.objects.filter(enabled=True)}
    queue = get_queue(JUDGE_QUEUE)
    held = judge_items_held(queue=queue)
    # Per project, so the (project, status, id) index serves the lookup.
    for project_id in Project.objects.order_by("pk").values_list("pk", flat=True):
        ids = [
            pk
            for pk in ReviewItem.objects.filter(
                project_id=project_id, status=ItemStatus.PENDING_JUDGE, updated_at__lt=cutoff
            )
            .order_by("pk")
            .values_list("pk", flat=True)
            if pk not in held
        ]
        for chunk in judge_chunks(ids):
            options = judge_job_options(config=configs.get(project_id), chunk_size=len(chunk))
            queue.enqueue(JUDGE_JOB, chunk, **options)
            result.jobs += 1
        result.items += len(ids)
    if result.items:
        logger.info("Re-enqueued %d stuck item(s) in %d judge job(s)", result.items, result.jobs)
    return result


def judge_items_held(*, queue) -> set[int]:
    """Ids of the items listed by a live judge job: queued, being dequeued,
    scheduled, or started with an unexpired heartbeat.

    The four lists are read in one MULTI, so a job that moves from one to
    another (a retry scheduled, then its first attempt finishing) is seen in
    one of them.
    """
    connection = queue.connection
    started = StartedJobRegistry(queue=queue)
    scheduled = ScheduledJobRegistry(queue=queue)
    with connection.pipeline(transaction=True) as pipeline:
        pipeline.lrange(queue.key, 0, -1)
        pipeline.lrange(queue.intermediate_queue_key, 0, -1)
        pipeline.zrange(scheduled.key, 0, -1)
        pipeline.zrangebyscore(started.key, time.time(), "+inf")
        queued, moving, waiting, running = pipeline.execute()
    job_ids = {raw.decode() for raw in [*queued, *moving, *waiting]}
    job_ids |= {started.parse_job_id(raw.decode()) for raw in running}
    held: set[int] = set()
    ordered = sorted(job_ids)
    for start in range(0, len(ordered), 500):
        for job in Job.fetch_many(ordered[start : start + 500], connection=connection):
            if job is not None and job.func_name == JUDGE_JOB and job.args:
                held.update(job.args[0])
    return held
