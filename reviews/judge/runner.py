"""Run many judge calls at once: asyncio with at most ``max_concurrency`` in flight.

The calls run on an event loop in a helper thread and their outcomes come back
in batches as they complete (:func:`judge_calls_stream`), so the job's own
thread stores the first verdicts while later calls are still in flight: the
worker waits on the model, not on its own bookkeeping. Only the calling
thread touches the database.
"""

import asyncio
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from reviews.judge.backends import JudgeCallError, JudgeClient, JudgeSettings, make_client
from reviews.judge.parsing import (
    JudgeReplyError,
    ParsedVerdict,
    parse_verdict_object,
    parse_verdict_text,
)
from reviews.judge.prompt import JudgeRequest

MAX_RAW_CHARS = 2000


@dataclass(frozen=True)
class CallOutcome:
    item_id: int
    verdict: ParsedVerdict | None
    error: str = ""
    error_kind: str = ""
    """For metrics: the JudgeCallError kind, ``unparseable`` or ``config``."""
    retryable: bool = False
    raw_reply: str = ""
    latency_ms: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


async def _judge_one(
    client: JudgeClient, request: JudgeRequest, limit: asyncio.Semaphore
) -> CallOutcome:
    async with limit:
        started = time.perf_counter()
        try:
            reply = await client.complete(request)
        except JudgeCallError as exc:
            return CallOutcome(
                item_id=request.item_id,
                verdict=None,
                error=exc.message,
                error_kind=exc.kind,
                retryable=exc.retryable,
                raw_reply=exc.raw[:MAX_RAW_CHARS],
                latency_ms=round((time.perf_counter() - started) * 1000),
            )
        latency_ms = round((time.perf_counter() - started) * 1000)
    usage = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens}
    try:
        if isinstance(reply.content, dict):
            verdict = parse_verdict_object(reply.content)
        else:
            verdict = parse_verdict_text(reply.content)
    except JudgeReplyError as exc:
        raw = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        return CallOutcome(
            item_id=request.item_id,
            verdict=None,
            error=f"Unparseable judge reply: {exc}",
            error_kind="unparseable",
            raw_reply=raw[:MAX_RAW_CHARS],
            latency_ms=latency_ms,
            **usage,
        )
    return CallOutcome(item_id=request.item_id, verdict=verdict, latency_ms=latency_ms, **usage)


async def _judge_all(
    settings: JudgeSettings,
    requests: list[JudgeRequest],
    report: Callable[[CallOutcome], None],
) -> None:
    client = make_client(settings)
    limit = asyncio.Semaphore(max(1, settings.max_concurrency))

    async def judge(request: JudgeRequest) -> None:
        report(await _judge_one(client, request, limit))

    try:
        await asyncio.gather(*(judge(r) for r in requests))
    finally:
        await client.close()


def _call_in_thread(
    settings: JudgeSettings, requests: list[JudgeRequest], done: queue.SimpleQueue
) -> None:
    try:
        asyncio.run(_judge_all(settings, requests, done.put))
    except BaseException as exc:  # handed to the consuming thread, which raises it
        done.put(exc)


def judge_calls_stream(
    settings: JudgeSettings,
    requests: list[JudgeRequest],
    *,
    batch_size: int = 50,
    linger: float = 0.05,
) -> Iterator[list[CallOutcome]]:
    """Judge every request concurrently; yield the outcomes in batches as they complete.

    A batch closes at ``batch_size`` outcomes, or ``linger`` seconds after its
    first one arrived. Every request gets exactly one outcome; a failed call is
    an outcome, never an exception (an exception here is a bug, re-raised).
    """
    if not requests:
        return
    done: queue.SimpleQueue = queue.SimpleQueue()
    thread = threading.Thread(
        target=_call_in_thread, args=(settings, requests, done), name="judge-calls", daemon=True
    )
    thread.start()
    remaining = len(requests)
    try:
        while remaining:
            batch = [done.get()]
            closes = time.monotonic() + linger
            while len(batch) < min(batch_size, remaining):
                wait = closes - time.monotonic()
                if wait <= 0:
                    break
                try:
                    batch.append(done.get(timeout=wait))
                except queue.Empty:
                    break
            for outcome in batch:
                if isinstance(outcome, BaseException):
                    raise outcome
            remaining -= len(batch)
            yield batch
    finally:
        thread.join()
