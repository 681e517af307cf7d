"""The export formats: one registry, one module per format.

Each format module builds an ``ExportFormatSpec`` and passes it to
``register``; the build, the API, the admin, the ``export_dataset`` command and
the model's choices read the registry and name no format themselves. To add a
format, write its module beside these and list it in ``FORMAT_MODULES``.

The registry is a leaf: it imports nothing from the app, so the model can take
its choices from here while the format modules, which read through the
selectors, are imported on first use (``DatasetsConfig.ready`` does it at startup).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

FORMAT_MODULES = (
    "datasets.formats.sft_chat",
    "datasets.formats.dpo_pairs",
    "datasets.formats.triplets_jsonl",
    "datasets.formats.triplets_csv",
    "datasets.formats.review_log",
    "datasets.formats.trl_preference",
    "datasets.formats.openai_preference",
    "datasets.formats.trl_unpaired",
)
KEY_MAX_LENGTH = 20  # DatasetExport.format's column
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# reviews.models.ItemKind's values, spelled here so the registry stays a leaf.
ITEM_KINDS = frozenset({"single", "comparison"})

Row = tuple
"""A source row as the build hands it to a format: the row source's columns, then the
item's latest history id."""


class SkipRow(Exception):
    """A source row the format cannot represent; counted in the manifest by reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownFormat(LookupError):
    """No export format is registered under this key."""


@dataclass(frozen=True)
class ExportFormatSpec:
    """What the build, the API and the admin need to know about one export format.

    ``rows(export)`` is the row source: a queryset of positional tuples whose
    first column is the item id, ordered by item id (then a stable tie-break).
    The build streams it from its snapshot and appends each row's latest
    history id, so a ``Row`` is ``(item id, ..., history id)``.

    ``encoder(chunk)`` is called once per chunk of rows (a format may read what
    it needs for the chunk in one query) and returns the function that turns
    one row into one line; that function raises ``SkipRow`` for a row the format
    cannot represent. ``join(lines)`` turns the lines of one chunk and split
    into the file's bytes, and every file starts with ``header``.

    ``dedupe_key(row)``, when the format has one, fingerprints what makes two
    rows repeats (e.g. prompt and gold output); with the export's
    ``deduplicate`` on, a row whose key was already written is dropped. A
    ``None`` key never counts as a repeat.

    An item is entered in the export's item list (and manifest) with its first
    written line.

    ``item_kinds`` are the kinds of item the selection reads: the one-output
    formats read single items only; the preference formats read comparisons
    (and, some of them, single items too). A format that writes several lines
    for one item gives one source row per line (ordered by item id, then a
    stable tie-break), as the triplet formats do.
    """

    key: str
    label: str
    statuses: frozenset[str]
    """The final item statuses the format may draw from."""
    default_statuses: tuple[str, ...]
    """The selection when the export names no statuses."""
    extension: str
    content_type: str
    rows: Callable[[Any], QuerySet]
    encoder: Callable[[list[Row]], Callable[[Row], Any]]
    join: Callable[[list[Any]], bytes] = b"".join
    header: bytes = b""
    dedupe_key: Callable[[Row], bytes | None] | None = None
    item_kinds: frozenset[str] = frozenset({"single"})

    def __post_init__(self) -> None:
        problems = []
        if not KEY_PATTERN.fullmatch(self.key) or len(self.key) > KEY_MAX_LENGTH:
            problems.append(f"key must match {KEY_PATTERN.pattern}, {KEY_MAX_LENGTH} chars at most")
        if not self.label:
            problems.append("label is empty")
        if not self.default_statuses or not set(self.default_statuses) <= self.statuses:
            problems.append("default_statuses must be a non-empty subset of statuses")
        if not self.extension or "." in self.extension:
            problems.append("extension must be a non-empty name without a dot")
        if not self.content_type:
            problems.append("content_type is empty")
        if not self.item_kinds or not self.item_kinds <= ITEM_KINDS:
            problems.append(f"item_kinds must be a non-empty subset of {sorted(ITEM_KINDS)}")
        if problems:
            raise ImproperlyConfigured(f"Export format {self.key!r}: {'; '.join(problems)}.")

    @property
    def media_type(self) -> str:
        """The content type without its parameters (``text/csv``), as OpenAPI names it."""
        return self.content_type.split(";", 1)[0].strip()


_registry: dict[str, ExportFormatSpec] = {}
_discovered = False


def register(spec: ExportFormatSpec) -> ExportFormatSpec:
    """Add a format; its key must be new. Returns the spec, so a module can keep it."""
    if spec.key in _registry:
        raise ImproperlyConfigured(f"Export format {spec.key!r} is registered twice.")
    _registry[spec.key] = spec
    return spec


def unregister(key: str) -> None:
    """Remove a format (tests that register a format of their own)."""
    _registry.pop(key, None)


def autodiscover() -> None:
    """Import every module in ``FORMAT_MODULES``, each registering its format. Idempotent."""
    global _discovered
    if _discovered:
        return
    _discovered = True  # first, so a format module that reads the registry does not recurse
    try:
        for module in FORMAT_MODULES:
            import_module(module)
    except BaseException:
        _discovered = False
        raise


def get(key: str) -> ExportFormatSpec:
    """The format registered under ``key``; raises ``UnknownFormat``."""
    autodiscover()
    spec = _registry.get(key) if isinstance(key, str) else None
    if spec is None:
        raise UnknownFormat(f"Unknown export format {key!r}.")
    return spec


def specs() -> tuple[ExportFormatSpec, ...]:
    """Every registered format: ``FORMAT_MODULES``' order (whichever module a caller
    imported first), then any registered from elsewhere, in registration order."""
    autodiscover()
    order = {module: index for index, module in enumerate(FORMAT_MODULES)}
    return tuple(
        sorted(
            _registry.values(),
            key=lambda spec: order.get(f"datasets.formats.{spec.key}", len(order)),
        )
    )


def choices() -> list[tuple[str, str]]:
    """``(key, label)`` of every format: the model field's and the forms' choices."""
    return [(spec.key, spec.label) for spec in specs()]
