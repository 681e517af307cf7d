"""``Client`` and ``AsyncClient``: the same methods, blocking or async.

Both run the operations of ``hitl._core`` (request building, answer parsing,
chunking, polling, checksums); only sending, sleeping and streaming differ.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from hitl import _core, errors
from hitl._core import Answer, Call, Download, Operation, RetryPolicy, Sleep, State
from hitl.models import Agreement, BatchResult, Comparison, Export, Item, ItemResult

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    base_url = base_url or os.environ.get("HITL_URL")
    api_key = api_key or os.environ.get("HITL_API_KEY")
    if not base_url:
        raise errors.HITLError("No server: pass base_url= or set HITL_URL.")
    if not api_key:
        raise errors.HITLError("No API key: pass api_key= or set HITL_API_KEY.")
    base_url = base_url.rstrip("/")
    if base_url.endswith(_core.API):
        base_url = base_url[: -len(_core.API)]
    return base_url, api_key


def _headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Api-Key {api_key}",
        "Accept": "application/json",
        "User-Agent": _core.USER_AGENT,
    }


def _answer(response: httpx.Response, body: bytes) -> Answer:
    return Answer(response.status_code, response.headers, body)


def _final_error(call: Call, answer: Answer | None, exc: Exception | None) -> Exception:
    if answer is not None:
        try:
            _core.check(answer)
        except errors.HITLError as error:
            return error
    return errors.ConnectionFailed(f"{call.method} {call.path}: {exc}")


class _Base:
    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        event_hooks: dict[str, list[Callable]] | None = None,
        transport: Any = None,
    ) -> None:
        self.base_url, self._api_key = _settings(base_url, api_key)
        self.retry = retry or RetryPolicy()
        self.batch_size = batch_size
        self.state = State()
        self._options = {
            "base_url": self.base_url,
            "headers": _headers(self._api_key),
            "timeout": timeout,
            "event_hooks": event_hooks or {},
        }
        if transport is not None:
            self._options["transport"] = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Client(_Base):
    """A blocking client. ``Client()`` reads ``HITL_URL`` and ``HITL_API_KEY``.

    Use it as a context manager, or call ``close()``.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **kwargs: Any):
        super().__init__(base_url, api_key, **kwargs)
        self._http = httpx.Client(**self._options)
        self.exports = Exports(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- running operations ---

    def _run(self, operation: Operation) -> Any:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = operation.throw(error) if error is not None else operation.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(step, Call):
                    value = self._perform(step)
                elif isinstance(step, Sleep):
                    time.sleep(step.seconds)
                elif isinstance(step, Download):
                    value = self._download(step)
            except errors.HITLError as exc:
                error = exc

    def _perform(self, call: Call) -> Answer:
        attempt = 0
        while True:
            attempt += 1
            answer, exc, sent = None, None, True
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params, json=call.json
                )
                answer = _answer(response, response.content)
                _core.learn(self.state, answer)
                if answer.status < 400:
                    return answer
            except httpx.TransportError as transport_error:
                exc, sent = transport_error, not isinstance(transport_error, httpx.ConnectError)
            delay = self.retry.delay(attempt, call, answer, sent=sent)
            if delay is None:
                raise _final_error(call, answer, exc)
            time.sleep(delay)

    def _download(self, step: Download) -> tuple[int, str]:
        call, attempt = step.call, 0
        while True:
            attempt += 1
            try:
                # A presigned download answers 302 to object storage; httpx drops
                # the Authorization header on a cross-origin redirect.
                with self._http.stream(
                    "GET", call.path, params=call.params, follow_redirects=True
                ) as response:
                    if not 200 <= response.status_code < 300:
                        answer = _answer(response, response.read())
                    else:
                        return _write(step, response.headers, response.iter_bytes())
            except httpx.TransportError as exc:
                answer = None
                delay = self.retry.delay(attempt, call, None, sent=True)
                if delay is None:
                    raise errors.ConnectionFailed(f"GET {call.path}: {exc}") from exc
                time.sleep(delay)
                continue
            delay = self.retry.delay(attempt, call, answer, sent=True)
            if delay is None:
                raise _final_error(call, answer, None)
            time.sleep(delay)

    # --- items ---

    def submit(self, item: Item | Comparison | dict[str, Any]) -> ItemResult:
        """Submit one item; an identical resubmit returns the stored item (``created`` False)."""
        return self._run(_core.submit(item))

    def submit_many(
        self,
        items: Iterable[Item | Comparison | dict[str, Any]],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> BatchResult:
        """Submit items in batches of the server's limit (each stored all or nothing)."""
        return self._run(
            _core.submit_many(
                items, state=self.state, batch_size=self.batch_size, progress=progress
            )
        )

    def get(self, item_id: int) -> ItemResult:
        return self._run(_core.get(item_id))

    def find(self, external_id: str) -> ItemResult | None:
        """The item with this external id (exactly), or None."""
        return self._run(_core.find(external_id))

    def iter_items(
        self,
        *,
        status: str | None = None,
        since: datetime | str | None = None,
        model_version: str | None = None,
        external_id: str | Iterable[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[ItemResult]:
        """Every matching item, newest first, following the cursor pages."""
        params = _core.list_params(
            status=status,
            since=since,
            model_version=model_version,
            external_id=external_id,
            page_size=page_size,
        )
        following: tuple[str, dict] | None = (f"{_core.API}/items/", params)
        while following is not None:
            results, following = self._run(_core.page(*following))
            for row in results:
                yield ItemResult.from_api(row)

    def wait_for_decision(
        self, item_id: int, *, timeout: float = 300.0, interval: float = 0.5
    ) -> ItemResult:
        """Poll until the item is final (``WaitTimeout`` after ``timeout`` seconds)."""
        return self._run(_core.wait_for_decision(item_id, timeout=timeout, interval=interval))

    def agreement(self, project: str, *, start: Any = None, end: Any = None) -> Agreement:
        """Reviewer agreement figures of ``project`` over ``[start, end)`` (default 30 days)."""
        return self._run(_core.agreement(project, start=start, end=end))


class Exports:
    """``client.exports``: build, follow and download training datasets."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, format: str, *, projects: list[str] | None = None, **options: Any) -> Export:
        """Queue an export (``options``: name, filters, seed, validation_ratio…)."""
        return self._client._run(_core.export_create(format, projects=projects, **options))

    def get(self, export_id: int) -> Export:
        return self._client._run(_core.export_get(export_id))

    def manifest(self, export: Export | int) -> dict[str, Any]:
        """The built export's manifest (files with sha256, counts, every exported item)."""
        export_id = export.id if isinstance(export, Export) else export
        return self._client._run(_core.export_manifest(export_id))

    def wait(
        self,
        export: Export | int,
        *,
        timeout: float = 3600.0,
        progress: Callable[[Export], None] | None = None,
    ) -> Export:
        export_id = export.id if isinstance(export, Export) else export
        return self._client._run(_core.export_wait(export_id, timeout=timeout, progress=progress))

    def download(
        self,
        export: Export | int,
        path: str | Path,
        *,
        split: str = "train",
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        """Download a split to ``path``, its sha256 checked against the export's files."""
        return self._client._run(
            _core.export_download(export, path, split=split, progress=progress)
        )


class AsyncClient(_Base):
    """The async twin of ``Client``: the same methods, awaited (``iter_items`` is async)."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **kwargs: Any):
        super().__init__(base_url, api_key, **kwargs)
        self._http = httpx.AsyncClient(**self._options)
        self.exports = AsyncExports(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _run(self, operation: Operation) -> Any:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = operation.throw(error) if error is not None else operation.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(step, Call):
                    value = await self._perform(step)
                elif isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Download):
                    value = await self._download(step)
            except errors.HITLError as exc:
                error = exc

    async def _perform(self, call: Call) -> Answer:
        attempt = 0
        while True:
            attempt += 1
            answer, exc, sent = None, None, True
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.json
                )
                answer = _answer(response, response.content)
                _core.learn(self.state, answer)
                if answer.status < 400:
                    return answer
            except httpx.TransportError as transport_error:
                exc, sent = transport_error, not isinstance(transport_error, httpx.ConnectError)
            delay = self.retry.delay(attempt, call, answer, sent=sent)
            if delay is None:
                raise _final_error(call, answer, exc)
            await asyncio.sleep(delay)

    async def _download(self, step: Download) -> tuple[int, str]:
        call, attempt = step.call, 0
        while True:
            attempt += 1
            try:
                async with self._http.stream(
                    "GET", call.path, params=call.params, follow_redirects=True
                ) as response:
                    if not 200 <= response.status_code < 300:
                        answer = _answer(response, await response.aread())
                    else:
                        return await _awrite(step, response.headers, response.aiter_bytes())
            except httpx.TransportError as exc:
                delay = self.retry.delay(attempt, call, None, sent=True)
                if delay is None:
                    raise errors.ConnectionFailed(f"GET {call.path}: {exc}") from exc
                await asyncio.sleep(delay)
                continue
            delay = self.retry.delay(attempt, call, answer, sent=True)
            if delay is None:
                raise _final_error(call, answer, None)
            await asyncio.sleep(delay)

    async def submit(self, item: Item | Comparison | dict[str, Any]) -> ItemResult:
        return await self._run(_core.submit(item))

    async def submit_many(
        self,
        items: Iterable[Item | Comparison | dict[str, Any]],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> BatchResult:
        return await self._run(
            _core.submit_many(
                items, state=self.state, batch_size=self.batch_size, progress=progress
            )
        )

    async def get(self, item_id: int) -> ItemResult:
        return await self._run(_core.get(item_id))

    async def find(self, external_id: str) -> ItemResult | None:
        return await self._run(_core.find(external_id))

    async def iter_items(
        self,
        *,
        status: str | None = None,
        since: datetime | str | None = None,
        model_version: str | None = None,
        external_id: str | Iterable[str] | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[ItemResult]:
        params = _core.list_params(
            status=status,
            since=since,
            model_version=model_version,
            external_id=external_id,
            page_size=page_size,
        )
        following: tuple[str, dict] | None = (f"{_core.API}/items/", params)
        while following is not None:
            results, following = await self._run(_core.page(*following))
            for row in results:
                yield ItemResult.from_api(row)

    async def wait_for_decision(
        self, item_id: int, *, timeout: float = 300.0, interval: float = 0.5
    ) -> ItemResult:
        return await self._run(_core.wait_for_decision(item_id, timeout=timeout, interval=interval))

    async def agreement(self, project: str, *, start: Any = None, end: Any = None) -> Agreement:
        return await self._run(_core.agreement(project, start=start, end=end))


class AsyncExports:
    """``async_client.exports``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self, format: str, *, projects: list[str] | None = None, **options: Any
    ) -> Export:
        return await self._client._run(_core.export_create(format, projects=projects, **options))

    async def get(self, export_id: int) -> Export:
        return await self._client._run(_core.export_get(export_id))

    async def manifest(self, export: Export | int) -> dict[str, Any]:
        export_id = export.id if isinstance(export, Export) else export
        return await self._client._run(_core.export_manifest(export_id))

    async def wait(
        self,
        export: Export | int,
        *,
        timeout: float = 3600.0,
        progress: Callable[[Export], None] | None = None,
    ) -> Export:
        export_id = export.id if isinstance(export, Export) else export
        return await self._client._run(
            _core.export_wait(export_id, timeout=timeout, progress=progress)
        )

    async def download(
        self,
        export: Export | int,
        path: str | Path,
        *,
        split: str = "train",
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        return await self._client._run(
            _core.export_download(export, path, split=split, progress=progress)
        )


# --- streaming a download to a file ----------------------------------------------


def _total(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length")
    return int(value) if value and value.isdigit() else None


def _write(step: Download, headers: httpx.Headers, chunks: Iterable[bytes]) -> tuple[int, str]:
    digest, written, total = hashlib.sha256(), 0, _total(headers)
    step.path.parent.mkdir(parents=True, exist_ok=True)
    with step.path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            if step.progress is not None:
                step.progress(written, total)
    return written, digest.hexdigest()


async def _awrite(
    step: Download, headers: httpx.Headers, chunks: AsyncIterator[bytes]
) -> tuple[int, str]:
    digest, written, total = hashlib.sha256(), 0, _total(headers)
    step.path.parent.mkdir(parents=True, exist_ok=True)
    with step.path.open("wb") as out:
        async for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            if step.progress is not None:
                step.progress(written, total)
    return written, digest.hexdigest()
