"""Judge backends: OpenAI-compatible chat completions and Anthropic messages.

Both use the official async SDKs with their own retries switched off: retries
belong to the RQ job (``Retry`` with exponential backoff), so a flaky judge
frees the worker between attempts. Every failure is raised as
:class:`JudgeCallError`, marked retryable for timeouts, connection errors,
408/409/429 and 5xx.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

import anthropic
import openai

from reviews.judge.parsing import WIRE_SCHEMA
from reviews.judge.prompt import JudgeRequest

# The OpenAI SDK insists on a key; self-hosted servers (vLLM, Ollama, llama.cpp)
# ignore it, so a config without one sends this placeholder.
NO_API_KEY = "none"
TOOL_NAME = "record_verdict"
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


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


def _status_error(exc: openai.APIStatusError | anthropic.APIStatusError) -> JudgeCallError:
    status = exc.status_code
    retryable = status in RETRYABLE_STATUS or status >= 500
    body = exc.response.text[:500] if exc.response is not None else ""
    kind = "rate_limited" if status == 429 else "server_error" if status >= 500 else "http_error"
    return JudgeCallError(
        f"Judge API answered HTTP {status}: {body}", retryable=retryable, kind=kind
    )


class OpenAIJudge:
    """Any OpenAI-compatible ``/chat/completions`` endpoint (``base_url`` ends in ``/v1``)."""

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        self.client = openai.AsyncOpenAI(
            api_key=settings.api_key or NO_API_KEY,
            base_url=settings.base_url or None,
            timeout=settings.timeout_seconds,
            max_retries=0,
        )

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

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        extra: dict[str, Any] = {}
        response_format = self._response_format()
        if response_format is not None:
            extra["response_format"] = response_format
        try:
            completion = await self.client.chat.completions.create(
                model=self.settings.model,
                messages=[
                    {"role": "system", "content": request.system},
                    {"role": "user", "content": request.user},
                ],
                temperature=0,
                max_tokens=self.settings.max_tokens,
                **extra,
            )
        except openai.APITimeoutError as exc:
            raise JudgeCallError(
                f"Judge timed out after {self.settings.timeout_seconds:g} s.",
                retryable=True,
                kind="timeout",
            ) from exc
        except openai.APIConnectionError as exc:
            raise JudgeCallError(
                f"Cannot reach the judge: {exc}", retryable=True, kind="connection"
            ) from exc
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.OpenAIError as exc:
            raise JudgeCallError(f"Judge API error: {exc}", retryable=False) from exc
        if not completion.choices:
            raise JudgeCallError(
                "The judge answered without a choice.", retryable=False, kind="no_choice"
            )
        message = completion.choices[0].message
        if getattr(message, "refusal", None):
            raise JudgeCallError(
                "The judge refused to grade.",
                retryable=False,
                raw=str(message.refusal),
                kind="refused",
            )
        usage = completion.usage
        return JudgeReply(
            content=message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )

    async def close(self) -> None:
        await self.client.close()


class AnthropicJudge:
    """Anthropic's messages API; the verdict comes back as a forced tool call."""

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        kwargs: dict[str, Any] = {
            "api_key": settings.api_key or NO_API_KEY,
            "timeout": settings.timeout_seconds,
            "max_retries": 0,
        }
        if settings.base_url:
            kwargs["base_url"] = settings.base_url
        self.client = anthropic.AsyncAnthropic(**kwargs)

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        try:
            message = await self.client.messages.create(
                model=self.settings.model,
                max_tokens=self.settings.max_tokens,
                system=request.system,
                messages=[{"role": "user", "content": request.user}],
                tools=[
                    {
                        "name": TOOL_NAME,
                        "description": "Record the verdict on the graded output.",
                        "input_schema": WIRE_SCHEMA,
                    }
                ],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
        except anthropic.APITimeoutError as exc:
            raise JudgeCallError(
                f"Judge timed out after {self.settings.timeout_seconds:g} s.",
                retryable=True,
                kind="timeout",
            ) from exc
        except anthropic.APIConnectionError as exc:
            raise JudgeCallError(
                f"Cannot reach the judge: {exc}", retryable=True, kind="connection"
            ) from exc
        except anthropic.APIStatusError as exc:
            raise _status_error(exc) from exc
        except anthropic.AnthropicError as exc:
            raise JudgeCallError(f"Judge API error: {exc}", retryable=False) from exc
        usage = message.usage
        tokens = {
            "prompt_tokens": usage.input_tokens if usage else None,
            "completion_tokens": usage.output_tokens if usage else None,
        }
        for block in message.content:
            if block.type == "tool_use" and block.name == TOOL_NAME:
                return JudgeReply(content=block.input, **tokens)
        text = "".join(block.text for block in message.content if block.type == "text")
        return JudgeReply(content=text, **tokens)

    async def close(self) -> None:
        await self.client.close()


# The backends by ``JudgeConfig.backend``: a new one is a client class and a line here
# (plus its ``JudgeBackend`` choice).
BACKENDS: dict[str, type] = {"openai": OpenAIJudge, "anthropic": AnthropicJudge}


def make_client(settings: JudgeSettings) -> JudgeClient:
    return BACKENDS[settings.backend](settings)
