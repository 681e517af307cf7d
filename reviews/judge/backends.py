"""Judge backends: OpenAI-compatible chat completions and Anthropic messages.

Both speak their vendor's documented HTTP protocol directly over one aiohttp
session per judge job (``max_concurrency`` connections, kept alive). The
official SDKs cost ~3 ms of worker CPU per request (request transformation,
response models, an httpx connection pool) and ~3 s to import in every
process; the two endpoints are one JSON POST each, so the judge sends that
POST itself and waits instead of computing. No retries here: they belong to
the judge job, so a flaky judge frees the worker between attempts. Every
failure is raised as :class:`JudgeCallError`, marked retryable for timeouts,
connection errors, 408/409/425/429 and 5xx.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson

from reviews.judge.parsing import WIRE_SCHEMA
from reviews.judge.prompt import JudgeRequest

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
TOOL_NAME = "record_verdict"
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
MAX_ERROR_BODY = 500


@dataclass(frozen=True)
class JudgeSettings:
    """A snapshot of a project's judge configuration, safe to use off the database."""

    backend: str
    base_url: str
    model: str
    api_key: str | None = field(repr=False)  # never in logs or tracebacks
    rubric: str
    rubric_version: int
    threshold: float
    timeout_seconds: float
    max_concurrency: int
    response_format: str
    max_tokens: int


@dataclass(frozen=True)
class JudgeReply:
    content: str | dict[str, Any]
    """The reply text, or the decoded tool input for Anthropic."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class JudgeCallError(Exception):
    """``kind`` names the failure for metrics: timeout, connection, rate_limited,
    server_error, http_error, refused, no_choice or api."""

    def __init__(self, message: str, *, retryable: bool, raw: str = "", kind: str = "api") -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.raw = raw
        self.kind = kind


class JudgeClient(Protocol):
    async def complete(self, request: JudgeRequest) -> JudgeReply: ...

    async def close(self) -> None: ...


def _status_error(status: int, body: str) -> JudgeCallError:
    retryable = status in RETRYABLE_STATUS or status >= 500
    kind = "rate_limited" if status == 429 else "server_error" if status >= 500 else "http_error"
    return JudgeCallError(
        f"Judge API answered HTTP {status}: {body[:MAX_ERROR_BODY]}",
        retryable=retryable,
        kind=kind,
    )


def _usage(envelope: dict, prompt_key: str, completion_key: str) -> dict[str, int | None]:
    usage = envelope.get("usage")
    usage = usage if isinstance(usage, dict) else {}

    def count(key: str) -> int | None:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return {"prompt_tokens": count(prompt_key), "completion_tokens": count(completion_key)}


class HttpJudge:
    """One JSON POST per verdict on a session shared by the job's concurrent calls."""

    default_url = ""
    path = ""

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        self.url = (settings.base_url or self.default_url).rstrip("/") + self.path
        # Built inside the job's event loop (aiohttp binds a session to its loop).
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(1, settings.max_concurrency)),
            timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
            headers={"Content-Type": "application/json", **self.headers()},
        )

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def body(self, request: JudgeRequest) -> dict[str, Any]:
        raise NotImplementedError

    def reply(self, envelope: dict) -> JudgeReply:
        raise NotImplementedError

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        try:
            async with self.session.post(
                self.url, data=orjson.dumps(self.body(request))
            ) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise JudgeCallError(
                f"Judge timed out after {self.settings.timeout_seconds:g} s.",
                retryable=True,
                kind="timeout",
            ) from exc
        except aiohttp.ClientConnectionError as exc:
            raise JudgeCallError(
                f"Cannot reach the judge: {exc}", retryable=True, kind="connection"
            ) from exc
        except aiohttp.ClientError as exc:
            raise JudgeCallError(f"Judge API error: {exc}", retryable=False) from exc
        text = raw.decode("utf-8", errors="replace")
        if status >= 400:
            raise _status_error(status, text)
        try:
            envelope = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise JudgeCallError(
                "Judge API answered with a body that is not JSON.", retryable=False, raw=text
            ) from exc
        if not isinstance(envelope, dict):
            raise JudgeCallError(
                "Judge API answered with JSON that is not an object.", retryable=False, raw=text
            )
        return self.reply(envelope)

    async def close(self) -> None:
        await self.session.close()


class OpenAIJudge(HttpJudge):
    """Any OpenAI-compatible ``/chat/completions`` endpoint (``base_url`` ends in ``/v1``)."""

    default_url = OPENAI_URL
    path = "/chat/completions"

    def headers(self) -> dict[str, str]:
        # Self-hosted servers (vLLM, Ollama, llama.cpp) need no key.
        key = self.settings.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _response_format(self) -> dict[str, Any] | None:
        kind = self.settings.response_format
        if kind == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": "judge_verdict", "strict": True, "schema": WIRE_SCHEMA},
            }
        if kind == "json_object":
            return {"type": "json_object"}
        return None

    def body(self, request: JudgeRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "temperature": 0,
            "max_tokens": self.settings.max_tokens,
        }
        response_format = self._response_format()
        if response_format is not None:
            body["response_format"] = response_format
        return body

    def reply(self, envelope: dict) -> JudgeReply:
        choices = envelope.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        if not isinstance(message, dict):
            raise JudgeCallError(
                "The judge answered without a choice.", retryable=False, kind="no_choice"
            )
        if message.get("refusal"):
            raise JudgeCallError(
                "The judge refused to grade.",
                retryable=False,
                raw=str(message["refusal"]),
                kind="refused",
            )
        content = message.get("content")
        return JudgeReply(
            content=content if isinstance(content, str) else "",
            **_usage(envelope, "prompt_tokens", "completion_tokens"),
        )


class AnthropicJudge(HttpJudge):
    """Anthropic's messages API; the verdict comes back as a forced tool call."""

    default_url = ANTHROPIC_URL
    path = "/v1/messages"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.settings.api_key:
            headers["x-api-key"] = self.settings.api_key
        return headers

    def body(self, request: JudgeRequest) -> dict[str, Any]:
        return {
            "model": self.settings.model,
            "max_tokens": self.settings.max_tokens,
            "system": request.system,
            "messages": [{"role": "user", "content": request.user}],
            "tools": [
                {
                    "name": TOOL_NAME,
                    "description": "Record the verdict on the graded output.",
                    "input_schema": WIRE_SCHEMA,
                }
            ],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }

    def reply(self, envelope: dict) -> JudgeReply:
        tokens = _usage(envelope, "input_tokens", "output_tokens")
        blocks = envelope.get("content")
        blocks = [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []
        for block in blocks:
            if block.get("type") == "tool_use" and block.get("name") == TOOL_NAME:
                return JudgeReply(content=block.get("input"), **tokens)
        text = "".join(
            block["text"]
            for block in blocks
            if block.get("type") == "text" and isinstance(block.get("text"), str)
        )
        return JudgeReply(content=text, **tokens)


# The backends by ``JudgeConfig.backend``: a new one is a client class and a line here
# (plus its ``JudgeBackend`` choice).
BACKENDS: dict[str, type[HttpJudge]] = {"openai": OpenAIJudge, "anthropic": AnthropicJudge}


def make_client(settings: JudgeSettings) -> JudgeClient:
    """The backend's client; call inside the event loop that will use it."""
    return BACKENDS[settings.backend](settings)
