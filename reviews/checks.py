"""Tier 1: cheap automated checks on a model output, compiled once per batch."""

import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema

from reviews.models import CheckKind, CheckRule, CheckSeverity

_UNSET = object()


def keyword_regex(words: list[str]) -> re.Pattern[str]:
    """One case-insensitive regex matching any of the words as whole words."""
    alternatives = "|".join(
        re.escape(word.strip()) for word in sorted(words, key=len, reverse=True)
    )
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class ParsedOutput:
    """The output text with its JSON parse done at most once."""

    __slots__ = ("_json", "_json_error", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._json: Any = _UNSET
        self._json_error = ""

    def json(self) -> tuple[Any, str]:
        """(parsed value, "") or (None, error message)."""
        if self._json is _UNSET:
            try:
                self._json = json.loads(self.text)
            except ValueError as exc:
                self._json, self._json_error = None, f"Output is not valid JSON: {exc}"
        return self._json, self._json_error


@dataclass(frozen=True)
class Outcome:
    rule: CheckRule
    passed: bool
    message: str

    @property
    def blocking_failure(self) -> bool:
        return not self.passed and self.rule.severity == CheckSeverity.BLOCKING

    @property
    def warning(self) -> bool:
        return not self.passed and self.rule.severity == CheckSeverity.WARNING


class CompiledCheck:
    """A CheckRule with its regex, keywords or schema validator prepared."""

    def __init__(self, rule: CheckRule) -> None:
        self.rule = rule
        kind = rule.kind
        self._regex = re.compile(rule.pattern) if rule.pattern and "match" in kind else None
        self._words = [w.strip() for w in rule.keywords or [] if isinstance(w, str) and w.strip()]
        self._keywords = keyword_regex(self._words) if self._words else None
        self._validator = None
        if kind == CheckKind.JSON_SCHEMA:
            schema = rule.json_schema or {}
            self._validator = jsonschema.validators.validator_for(schema)(schema)

    def run(self, output: ParsedOutput) -> Outcome:
        passed, message = self._evaluate(output)
        return Outcome(rule=self.rule, passed=passed, message=message)

    def _evaluate(self, output: ParsedOutput) -> tuple[bool, str]:
        kind, text, limit = self.rule.kind, output.text, self.rule.limit
        if kind == CheckKind.JSON_VALID:
            _, error = output.json()
            return (not error, error)
        if kind == CheckKind.JSON_SCHEMA:
            value, error = output.json()
            if error:
                return False, error
            best = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
            if best is None:
                return True, ""
            where = "/" + "/".join(str(part) for part in best.absolute_path)
            return False, f"Schema violation at {where}: {best.message}"
        if kind == CheckKind.MUST_MATCH:
            found = self._regex.search(text) is not None
            return found, "" if found else f"Output does not match /{self.rule.pattern}/."
        if kind == CheckKind.MUST_NOT_MATCH:
            match = self._regex.search(text)
            if match is None:
                return True, ""
            return False, f"Output matches /{self.rule.pattern}/ at {match.start()}."
        if kind == CheckKind.MIN_LENGTH:
            ok = len(text) >= limit
            return ok, "" if ok else f"Output has {len(text)} characters, minimum is {limit}."
        if kind == CheckKind.MAX_LENGTH:
            ok = len(text) <= limit
            return ok, "" if ok else f"Output has {len(text)} characters, maximum is {limit}."
        if kind == CheckKind.REQUIRED_KEYWORDS:
            present = {m.group(0).lower() for m in self._keywords.finditer(text)}
            missing = [w for w in self._words if w.lower() not in present]
            return not missing, "" if not missing else f"Missing keywords: {', '.join(missing)}."
        if kind == CheckKind.BANNED_KEYWORDS:
            found = sorted({m.group(0).lower() for m in self._keywords.finditer(text)})
            return not found, "" if not found else f"Banned keywords present: {', '.join(found)}."
        raise ValueError(f"Unknown check kind {kind!r}")


def compile_checks(rules: list[CheckRule]) -> list[CompiledCheck]:
    return [CompiledCheck(rule) for rule in rules if rule.enabled]


def run_checks(checks: list[CompiledCheck], output_text: str) -> list[Outcome]:
    parsed = ParsedOutput(output_text)
    return [check.run(parsed) for check in checks]
