"""Run many judge calls at once: asyncio with at most ``max_concurrency`` in flight."""

import asyncio
import json
import time
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


async def _judge_all(settings: JudgeSettings, requests: list[JudgeRequest]) -> list[CallOutcome]:
    client = make_client(settings)
    limit = asyncio.Semaphore(max(1, settings.max_concurrency))
    try:
        return await asyncio.gather(*(_judge_one(client, r, limit) for r in requests))
    finally:
        await client.close()


def run_judge_calls(settings: JudgeSettings, requests: list[JudgeRequest]) -> list[CallOutcome]:
    """Judge every request concurrently; one outcome per request, in order. Never raises
    for a failed call: the failure is in the outcome."""
    if not requests:
        return []
    return asyncio.run(_judge_all(settings, requests))
