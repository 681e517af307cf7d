"""The sans-IO core shared by ``Client`` and ``AsyncClient``.

Every operation is a generator: it yields steps (``Call``: one API request,
``Sleep``, ``Download``) and is sent back their results, or has the step's
error thrown into it. The two clients only carry the steps out, with httpx's
blocking or async API, so request building, answer parsing, chunking, polling
and checksum rules exist once. Retries sit in the clients' step runner, driven
by ``RetryPolicy`` (also pure).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hitl import errors
from hitl.models import Agreement, BatchResult, Comparison, Export, Item, ItemResult, item_body

API = "/api/v1"
DEFAULT_BATCH = 1000
"""The documented batch limit (HITL_MAX_BATCH); the server's answers say its own."""
MAX_BATCH_HEADER = "x-hitl-max-batch"
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "hitl-client/0.1"


@dataclass(frozen=True)
class Call:
    """One API request. ``idempotent``: safe to send again after a 5xx or a lost answer."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotent: bool = True


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Download:
    """Stream ``call``'s answer into ``path``; the result is ``(bytes written, sha256 hex)``."""

    call: Call
    path: Path
    progress: Callable[[int, int | None], None] | None = None


Step = Call | Sleep | Download
Operation = Generator[Step, Any, Any]


@dataclass
class State:
    """What a client learns from the server as it goes."""

    max_batch: int | None = None


# --- retries -------------------------------------------------------------------


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After is a floor.

    ``attempts`` counts every try (the first included). A Retry-After longer
    than ``max_retry_after`` is not waited for: ``RateLimited`` is raised with it.
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))

    def delay(self, attempt: int, call: Call, answer: Answer | None, *, sent: bool) -> float | None:
        """Seconds to wait before the next try after try ``attempt`` (1-based), or None.

        ``answer`` None is a transport error; ``sent`` False means the request
        never left (connect failure), so even a non-idempotent call may go again.
        """
        if attempt >= self.attempts:
            return None
        if answer is None:
            return self.backoff(attempt) if (call.idempotent or not sent) else None
        if answer.status not in RETRYABLE_STATUSES:
            return None
        if answer.status != 429 and not call.idempotent:
            return None
        wait = self.backoff(attempt)
        floor = retry_after_seconds(answer.headers)
        if floor is not None:
            if floor > self.max_retry_after:
                return None
            wait = floor + self.rng.uniform(0, self.base)
        return wait


# --- answers ---------------------------------------------------------------------


def _message(status: int, body: Any) -> str:
    if isinstance(body, dict):
        detail = body.get("detail")
        fields = {k: v for k, v in body.items() if k not in ("detail", "code")}
        parts = [str(detail)] if detail else []
        flat = errors.flatten_errors(fields) if fields else {}
        parts += [f"{name}: {' '.join(map(str, msgs))}" for name, msgs in list(flat.items())[:10]]
        if parts:
            return f"HTTP {status}: " + "; ".join(parts)
    return f"HTTP {status}"


def check(answer: Answer) -> Any:
    """The JSON of a 2xx answer; a typed error for anything else."""
    if 200 <= answer.status < 300:
        return answer.json()
    try:
        body = answer.json()
    except ValueError:
        body = None
    kwargs = {"status": answer.status, "body": body, "headers": answer.headers}
    message = _message(answer.status, body)
    status = answer.status
    if status == 401:
        raise errors.AuthError(message, **kwargs)
    if status == 403:
        raise errors.PermissionDenied(message, **kwargs)
    if status == 404:
        raise errors.NotFound(message, **kwargs)
    if status == 409:
        raise errors.ConflictError(message, **kwargs)
    if status == 429:
        raise errors.RateLimited(message, retry_after=retry_after_seconds(answer.headers), **kwargs)
    if status >= 500:
        raise errors.ServerError(message, **kwargs)
    if status in (400, 413, 415, 422):
        raise errors.ValidationError(message, **kwargs)
    raise errors.APIError(message, **kwargs)


def learn(state: State, answer: Answer) -> None:
    value = answer.headers.get(MAX_BATCH_HEADER)
    if value and value.isdigit() and int(value) > 0:
        state.max_batch = int(value)


def relative(url: str) -> tuple[str, dict[str, str]]:
    """A server link (absolute or not) as path and query, to send to our own base URL."""
    parts = urlsplit(url)
    return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))


# --- operations ------------------------------------------------------------------


def submit(item: Item | Comparison | dict[str, Any]) -> Operation:
    answer = yield Call("POST", f"{API}/items/", json=item_body(item))
    return ItemResult.from_api(check(answer), created=answer.status == 201)


def submit_many(
    items: Iterable[Item | Comparison | dict[str, Any]],
    *,
    state: State,
    batch_size: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> Operation:
    """Batches of the server's limit, in order; a batch the server finds too big is split.

    Each batch is stored all or nothing and ingest is idempotent on external_id,
    so a retried or re-split batch never stores an item twice.
    """
    bodies = [item_body(item) for item in items]
    result = BatchResult()
    done = 0
    start = 0
    while start < len(bodies):
        size = max(1, min(batch_size or state.max_batch or DEFAULT_BATCH, len(bodies) - start))
        chunk = bodies[start : start + size]
        try:
            answer = yield Call("POST", f"{API}/items/", json={"items": chunk})
        except errors.ValidationError as exc:
            limit = exc.headers.get(MAX_BATCH_HEADER) or exc.headers.get("X-HITL-Max-Batch")
            if batch_size is None and limit and limit.isdigit() and 0 < int(limit) < size:
                state.max_batch = int(limit)
                continue
            raise
        result.add(check(answer))
        start += size
        done += len(chunk)
        if progress is not None:
            progress(done, len(bodies))
    return result


def get(item_id: int) -> Operation:
    answer = yield Call("GET", f"{API}/items/{int(item_id)}/")
    return ItemResult.from_api(check(answer))


def list_params(
    *,
    status: str | None = None,
    since: datetime | str | None = None,
    model_version: str | None = None,
    external_id: str | Iterable[str] | None = None,
    page_size: int | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if status:
        params["status"] = status
    if since:
        params["since"] = since.isoformat() if isinstance(since, datetime) else since
    if model_version:
        params["model_version"] = model_version
    if external_id is not None:
        ids = [external_id] if isinstance(external_id, str) else list(external_id)
        if not ids or any(not isinstance(i, str) or not i for i in ids):
            raise ValueError("external_id: one or more non-empty ids.")
        params["external_id"] = ids
    if page_size:
        params["page_size"] = page_size
    return params


def page(path: str, params: Mapping[str, Any]) -> Operation:
    """One page of a list: ``(results, next call or None)``."""
    answer = yield Call("GET", path, params=params)
    body = check(answer)
    following = None
    if body.get("next"):
        next_path, next_params = relative(body["next"])
        following = (next_path, next_params)
    return body.get("results", []), following


def find(external_id: str) -> Operation:
    if not isinstance(external_id, str) or not external_id:
        raise ValueError("external_id must be a non-empty string.")
    results, _ = yield from page(f"{API}/items/", {"external_id": [external_id]})
    for row in results:
        if row.get("external_id") == external_id:
            return ItemResult.from_api(row)
    return None


def wait_for_decision(
    item_id: int, *, timeout: float, interval: float = 0.5, max_interval: float = 10.0
) -> Operation:
    """Poll the item until it is final, backing off (x1.5, jittered) up to ``max_interval``."""
    deadline = time.monotonic() + timeout
    wait = interval
    while True:
        item = yield from get(item_id)
        if item.is_final:
            return item
        left = deadline - time.monotonic()
        if left <= 0:
            raise errors.WaitTimeout(
                f"Item {item_id} is still {item.status} after {timeout:g} s.", last=item
            )
        yield Sleep(min(left, wait * random.uniform(0.8, 1.2)))
        wait = min(max_interval, wait * 1.5)


def agreement(project: str, *, start: Any = None, end: Any = None) -> Operation:
    params = {}
    for name, value in (("start", start), ("end", end)):
        if value is not None:
            params[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    answer = yield Call("GET", f"{API}/projects/{project}/agreement/", params=params)
    return Agreement.from_api(check(answer))


# --- exports ---------------------------------------------------------------------


def export_create(format: str, *, projects: list[str] | None = None, **options: Any) -> Operation:
    body = {"format": format, **{k: v for k, v in options.items() if v is not None}}
    if projects:
        body["projects"] = list(projects)
    # Not idempotent: a lost answer is not re-sent (it may have queued an export).
    answer = yield Call("POST", f"{API}/exports/", json=body, idempotent=False)
    return Export.from_api(check(answer))


def export_get(export_id: int) -> Operation:
    answer = yield Call("GET", f"{API}/exports/{int(export_id)}/")
    return Export.from_api(check(answer))


def export_manifest(export_id: int) -> Operation:
    """The full manifest: files with sha256, counts, filters and every exported item."""
    answer = yield Call("GET", f"{API}/exports/{int(export_id)}/manifest/")
    return check(answer)


def export_wait(
    export_id: int,
    *,
    timeout: float,
    interval: float = 0.5,
    max_interval: float = 5.0,
    progress: Callable[[Export], None] | None = None,
) -> Operation:
    """Poll until built (returned) or failed (``ExportFailed``)."""
    deadline = time.monotonic() + timeout
    wait = interval
    while True:
        export = yield from export_get(export_id)
        if progress is not None:
            progress(export)
        if export.is_built:
            return export
        if export.is_failed:
            raise errors.ExportFailed(
                f"Export {export_id} failed: {export.error or 'no error recorded'}", export=export
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise errors.WaitTimeout(
                f"Export {export_id} is still {export.status} after {timeout:g} s.", last=export
            )
        yield Sleep(min(left, wait))
        wait = min(max_interval, wait * 1.5)


def export_download(
    export: Export | int,
    path: str | Path,
    *,
    split: str = "train",
    progress: Callable[[int, int | None], None] | None = None,
) -> Operation:
    """Download one split to ``path`` and check its sha256 against the export's files listing.

    The file is written beside ``path`` and renamed into place only when its
    checksum matches; on a mismatch it is removed and ``ChecksumMismatch`` raised.
    """
    if not isinstance(export, Export) or split not in export.files:
        export = yield from export_get(export if isinstance(export, int) else export.id)
    if not export.is_built:
        raise errors.HITLError(f"Export {export.id} is {export.status}, not built.")
    meta = export.files.get(split)
    if meta is None:
        raise errors.HITLError(f"Export {export.id} has no {split} split.")
    target = Path(path)
    partial = target.with_name(target.name + ".part")
    call = Call("GET", f"{API}/exports/{export.id}/download/", params={"split": split})
    try:
        _written, digest = yield Download(call, partial, progress)
        if digest != meta.sha256:
            raise errors.ChecksumMismatch(
                f"{meta.name}: sha256 {digest} differs from the export's {meta.sha256}.",
                expected=meta.sha256,
                actual=digest,
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target
