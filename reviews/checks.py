"""Tier 1: cheap automated checks on a model output, compiled once per batch.

A project's own checks are its ``CheckRule`` rows. Built-in checks run for every
project and are not configured: each is one ``BuiltinCheck`` in
``BUILTIN_CHECKS``, with a warning severity (the item goes to a human).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from reviews.injection import judge_injection_find
from reviews.models import CheckKind, CheckRule, CheckSeverity

_UNSET = object()


class KeywordMatcher:
    """Finds whole-word keywords in text, ignoring case (both sides casefolded).

    Most outputs contain none of a project's keywords, so a plain substring
    test runs first and the word-boundary regex only where a keyword occurs.
    """

    def __init__(self, words: list[str]) -> None:
        self.words = [w.strip() for w in words or [] if isinstance(w, str) and w.strip()]
        self._folded = sorted({w.casefold() for w in self.words}, key=len, reverse=True)
        alternatives = "|".join(re.escape(word) for word in self._folded)
        self._regex = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if self._folded else None

    def find(self, *texts: str) -> set[str]:
        """The casefolded keywords present as whole words in any of ``texts``."""
        found: set[str] = set()
        if self._regex is None:
            return found
        for text in texts:
            folded = text.casefold()
            if any(word in folded for word in self._folded):
                found.update(m.group(0) for m in self._regex.finditer(folded))
        return found


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
            except RecursionError:
                # Thousands of nested brackets: refused like invalid JSON, not a 500.
                self._json = None
                self._json_error = "Output is not valid JSON: nested too deeply to parse."
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
        self._keywords = KeywordMatcher(rule.keywords)
        self._validator = None
        if kind == CheckKind.JSON_SCHEMA:
            schema = rule.json_schema or {}
            self._validator = jsonschema.validators.validator_for(schema)(schema)

    def run(self, output: ParsedOutput) -> Outcome:
        passed, message = self._evaluate(output)
        return Outcome(rule=self.rule, passed=passed, message=message)

    def _evaluate(self, output: ParsedOutput) -> tuple[bool, str]:
        evaluate = CHECK_KINDS.get(self.rule.kind)
        if evaluate is None:
            raise ValueError(f"Unknown check kind {self.rule.kind!r}")
        return evaluate(self, output)


Evaluator = Callable[[CompiledCheck, ParsedOutput], tuple[bool, str]]
# Check kinds by ``CheckRule.kind``: a new kind is one evaluator registered here
# (plus its ``CheckKind`` choice and the parameters ``CheckRule.clean`` validates).
CHECK_KINDS: dict[str, Evaluator] = {}


def check_kind(kind: str) -> Callable[[Evaluator], Evaluator]:
    def register(evaluate: Evaluator) -> Evaluator:
        CHECK_KINDS[kind] = evaluate
        return evaluate

    return register


@check_kind(CheckKind.JSON_VALID)
def _json_valid(check: CompiledCheck, output: ParsedOutput) -> tuple[bool, str]:
    _, error = output.json()
    return (not error, error)


@check_kind(CheckKind.JSON_SCHEMA)
def _json_schema(check: CompiledCheck, output: ParsedOutput) -> tuple[bool, str]:
    value, error = output.json()
    if error:
        return False, error
    best = jsonschema.exceptions.best_match(check._validator.iter_errors(value))
    if best is None:
        return True, ""
    where = "/" + "/".join(str(part) for part in best.absolute_path)
    return False, f"Schema violation at {where}: {best.message}"


@check_kind(CheckKind.MUST_MATCH)
def _must_match(check: CompiledCheck, output: ParsedOutput) -> tuple[bool, str]:
    found = check._regex.search(output.text) is not None
    return found, "" if found else f"Output does not match /{check.rule.pattern}/."


@check_kind(CheckKind.MUST_NOT_MATCH)
def _must_not_match(check: CompiledCheck, output: ParsedOutput) -> tuple[bool, str]:
    match = check._regex.search(output.text)
    if match is None:
        return True, ""
    return False, f"Output matches /{check.rule.pattern}/ at {match.start()}."


@check_kind(CheckKind.MIN_LENGTH)
def _min_length(check: CompiledCheck, output: ParsedOutput) -> tuple[bool, str]:
    text, limit = output.text, check.rule.limit
    ok = len(text) >= limit
    return ok, "" if ok else f"Output has {len(text)} characters, minimum is {limit}."


@check_kind(CheckKind.MAX_LENGTH)
def _max_length(check: CompiledCheck, output: ParsedOutput) -> tuple[bool, str]:
    text, limit = output.text, check.rule.limit
    ok = len(text) <= limit
    return ok, "" if ok else f"Output has {len(text)} characters, maximum is {limit}."


@check_kind(CheckKind.REQUIRED_KEYWORDS)
def _required_keywords(check: CompiledCheck, output: ParsedOutput) -> tuple[bool, str]:
    present = check._keywords.find(output.text)
    missing = [w for w in check._keywords.words if w.casefold() not in present]
    return not missing, "" if not missing else f"Missing keywords: {', '.join(missing)}."


@check_kind(CheckKind.BANNED_KEYWORDS)
def _banned_keywords(check: CompiledCheck, output: ParsedOutput) -> tuple[bool, str]:
    found = sorted(check._keywords.find(output.text))
    return not found, "" if not found else f"Banned keywords present: {', '.join(found)}."


class BuiltinCheck(CompiledCheck):
    """A check every project runs, always on; ``detect`` returns why it fired, or "".

    Its rule is an unsaved stand-in, so the result rows copy its name, kind and
    severity like any rule's and their ``rule`` stays NULL. Only a finding is
    recorded: a passing row on every item would tell the reviewer nothing and
    add a row per item to ingest.
    """

    def __init__(self, *, name: str, kind: str, detect: Callable[[str], str]) -> None:
        super().__init__(CheckRule(name=name, kind=kind, severity=CheckSeverity.WARNING))
        self._detect = detect

    def _evaluate(self, output: ParsedOutput) -> tuple[bool, str]:
        message = self._detect(output.text)
        return not message, message


BUILTIN_CHECKS: list[BuiltinCheck] = [
    # A verdict-shaped JSON object or words addressed to the grader: the judge
    # may comply and pass the item, so a human decides whatever the judge says.
    BuiltinCheck(
        name="Judge injection (built-in)", kind="judge_injection", detect=judge_injection_find
    ),
]


# Kinds a check result may have besides the rule kinds (CheckKind), e.g. for the API schema.
BUILTIN_CHECK_KINDS = [check.rule.kind for check in BUILTIN_CHECKS]


def compile_checks(rules: list[CheckRule]) -> list[CompiledCheck]:
    """The project's enabled rules, then the built-in checks."""
    return [CompiledCheck(rule) for rule in rules if rule.enabled] + BUILTIN_CHECKS


def run_checks(checks: list[CompiledCheck], output_text: str) -> list[Outcome]:
    """Every rule's outcome, and the built-in checks' findings (their passes are not kept)."""
    parsed = ParsedOutput(output_text)
    outcomes = []
    for check in checks:
        outcome = check.run(parsed)
        if outcome.passed and isinstance(check, BuiltinCheck):
            continue
        outcomes.append(outcome)
    return outcomes
