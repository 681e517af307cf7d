"""The ``hitl`` command: submit JSONL, wait for a decision, download an export.

Exit codes: 0 done; 1 the server refused or the work failed (invalid items,
conflict, failed export, checksum mismatch); 2 bad usage or input file;
3 no URL / key, or the key was refused; 4 timed out; 5 server unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from hitl import errors
from hitl.client import Client
from hitl.models import Export

OK, FAILED, USAGE, AUTH, TIMEOUT, UNREACHABLE = 0, 1, 2, 3, 4, 5


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, one final line otherwise."""

    def __init__(self, label: str, *, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self._drawn = 0.0
        self._last = ""

    def _text(self, done: float, total: float | None, unit: str) -> str:
        if total:
            share = min(1.0, done / total)
            bar = "#" * int(share * 30)
            amounts = f"{_amount(done, unit)}/{_amount(total, unit)}"
            return f"{self.label} [{bar:<30}] {share:4.0%} {amounts}"
        return f"{self.label} {_amount(done, unit)}"

    def update(self, done: float, total: float | None, unit: str = "") -> None:
        self._last = self._text(done, total, unit)
        if self.quiet or not self.tty:
            return
        now = time.monotonic()
        if now - self._drawn >= 0.1 or (total and done >= total):
            self._drawn = now
            self.stream.write("\r" + self._last)
            self.stream.flush()

    def finish(self) -> None:
        if self.quiet or not self._last:
            return
        self.stream.write(("\r" if self.tty else "") + self._last + "\n")
        self.stream.flush()


def _amount(value: float, unit: str) -> str:
    if unit != "B":
        return f"{int(value)}"
    for suffix in ("B", "KB", "MB", "GB"):
        if value < 1024 or suffix == "GB":
            return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
        value /= 1024
    return str(value)


class UsageError(Exception):
    pass


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    stream = sys.stdin if path == "-" else None
    try:
        text = stream.read() if stream else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 ({exc.reason}).") from exc
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: not JSON ({exc}).") from exc
        if not isinstance(item, dict):
            raise UsageError(f"{path}:{number}: each line must be a JSON object.")
        items.append(item)
    if not items:
        raise UsageError(f"{path}: no items.")
    return items


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=_jsonable, ensure_ascii=False, indent=2))


def cmd_submit(client: Client, args: argparse.Namespace) -> int:
    items = _read_jsonl(args.file)
    if args.project:
        items = [{**item, "project": item.get("project") or args.project} for item in items]
    bar = Progress(f"submit {Path(args.file).name}", quiet=args.quiet)
    try:
        result = client.submit_many(items, progress=lambda done, total: bar.update(done, total))
    finally:
        bar.finish()
    _print_json({"created": result.created, "existing": result.existing, "items": len(items)})
    return OK


def cmd_wait(client: Client, args: argparse.Namespace) -> int:
    item = client.wait_for_decision(args.id, timeout=args.timeout)
    _print_json(
        {
            "id": item.id,
            "external_id": item.external_id,
            "status": item.status,
            "final_output": item.final_output,
            "decision": asdict(item.decision) if item.decision else None,
            "audit": asdict(item.audit) if item.audit else None,
        }
    )
    return OK


def cmd_get(client: Client, args: argparse.Namespace) -> int:
    _print_json(client.get(args.id).raw)
    return OK


def cmd_export(client: Client, args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"name": args.name or None}
    if args.model_version:
        options["model_versions"] = args.model_version
    if args.validation_ratio is not None:
        options["validation_ratio"] = args.validation_ratio
    export = client.exports.create(args.format, projects=args.project or None, **options)
    bar = Progress(f"export {export.id} build", quiet=args.quiet)

    def building(current: Export) -> None:
        bar.update(current.progress * 100, 100)

    try:
        export = client.exports.wait(export, timeout=args.timeout, progress=building)
    finally:
        bar.finish()
    size = export.files[args.split].bytes if args.split in export.files else None
    bar = Progress(f"download {args.output}", quiet=args.quiet)
    try:
        path = client.exports.download(
            export,
            args.output,
            split=args.split,
            progress=lambda done, total: bar.update(done, total or size, "B"),
        )
    finally:
        bar.finish()
    meta = export.files[args.split]
    _print_json({"export": export.id, "path": str(path), "rows": meta.rows, "sha256": meta.sha256})
    return OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hitl",
        description="HITL Review Platform client. Reads HITL_URL and HITL_API_KEY.",
    )
    top.add_argument("--url", help="server URL (default: $HITL_URL)")
    top.add_argument("--api-key", help="API key (default: $HITL_API_KEY)")
    top.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = top.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="submit the items of a JSONL file (- for stdin)")
    submit.add_argument("file")
    submit.add_argument("--project", help="project slug for items that name none")
    submit.set_defaults(run=cmd_submit)

    wait = commands.add_parser("wait", help="wait until an item is final, print its decision")
    wait.add_argument("id", type=int)
    wait.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    wait.set_defaults(run=cmd_wait)

    get = commands.add_parser("get", help="print an item as the API returns it")
    get.add_argument("id", type=int)
    get.set_defaults(run=cmd_get)

    export = commands.add_parser("export", help="build a dataset export and download it")
    export.add_argument(
        "format",
        help="sft_chat, dpo_pairs, trl_preference, openai_preference, trl_unpaired, review_log…",
    )
    export.add_argument("--project", action="append", help="project slug (repeatable)")
    export.add_argument("-o", "--output", required=True, help="file to write")
    export.add_argument("--split", default="train", choices=["train", "validation"])
    export.add_argument("--name", default="")
    export.add_argument("--model-version", action="append")
    export.add_argument("--validation-ratio", type=float)
    export.add_argument("--timeout", type=float, default=3600.0, help="build timeout, seconds")
    export.set_defaults(run=cmd_export)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with Client(args.url, args.api_key) as client:
            return args.run(client, args)
    except UsageError as exc:
        return _fail(USAGE, str(exc))
    except (errors.AuthError, errors.PermissionDenied) as exc:
        return _fail(AUTH, exc.message)
    except errors.ConflictError as exc:
        ids = ", ".join(exc.external_ids[:20])
        return _fail(FAILED, f"{exc.message}" + (f" (external ids: {ids})" if ids else ""))
    except errors.ValidationError as exc:
        return _fail(FAILED, exc.message)
    except errors.WaitTimeout as exc:
        return _fail(TIMEOUT, str(exc))
    except errors.ConnectionFailed as exc:
        return _fail(UNREACHABLE, str(exc))
    except errors.HITLError as exc:
        if str(exc).startswith("No server") or str(exc).startswith("No API key"):
            return _fail(AUTH, str(exc))
        return _fail(FAILED, str(exc))
    except KeyboardInterrupt:
        return _fail(130, "interrupted")


def _fail(code: int, message: str) -> int:
    print(f"hitl: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
