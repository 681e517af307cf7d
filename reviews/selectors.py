"""Read paths: who may see what, and the item pages' queries."""

import functools
import time

from django.db import connection
from django.db.models import Prefetch, QuerySet

from reviews.access import Capability, projects_where
from reviews.models import (
    ApiKey,
    CheckResult,
    CheckRule,
    JudgeConfig,
    JudgeVerdict,
    Project,
    ReviewItem,
)
from reviews.outcomes import audit_reviews_of, decision_steps_of, rubric_reviews_of
from reviews.precompiled import ModelColumns

_KEY = ModelColumns(ApiKey, "k")
_PROJECT = ModelColumns(Project, "p")
_JUDGE = ModelColumns(JudgeConfig, "j")
_RULE = ModelColumns(CheckRule, "r")
_KEY_PROJECT = ApiKey._meta.get_field("project")
_JUDGE_PROJECT = JudgeConfig._meta.get_field("project")
_RULE_PROJECT = CheckRule._meta.get_field("project")


@functools.cache
def _api_key_sql(with_check_rules: bool) -> str:
    """The one query of ``api_key_with_project``: identifiers from the models' metadata,
    the hash its one parameter."""
    quote = connection.ops.quote_name

    def table(model) -> str:
        return quote(model._meta.db_table)

    def column(model, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    parts = [_KEY, _PROJECT, _JUDGE, *([_RULE] if with_check_rules else [])]
    sql = (
        f"SELECT {', '.join(part.select() for part in parts)} "  # noqa: S608
        f"FROM {table(ApiKey)} k "
        f"INNER JOIN {table(Project)} p "
        f"ON p.{column(Project, 'id')} = k.{column(ApiKey, 'project')} "
        f"LEFT OUTER JOIN {table(JudgeConfig)} j "
        f"ON j.{column(JudgeConfig, 'project')} = p.{column(Project, 'id')} "
    )
    if with_check_rules:
        sql += (
            f"LEFT OUTER JOIN {table(CheckRule)} r "
            f"ON r.{column(CheckRule, 'project')} = p.{column(Project, 'id')} "
        )
    sql += (
        f"WHERE k.{column(ApiKey, 'hashed_key')} = %s AND k.{column(ApiKey, 'revoked_at')} IS NULL"
    )
    if with_check_rules:
        sql += f" ORDER BY r.{column(CheckRule, 'id')}"  # CheckRule's ordering, in one project
    return sql


def api_key_with_project(hashed_key: str, *, with_check_rules: bool = False) -> ApiKey | None:
    """The unrevoked API key with this hash, or None, in one query: with its project
    and the project's judge configuration (None without one) cached on it, as
    ``select_related("project", "project__judge_config")`` would, and with
    ``with_check_rules`` the project's check rules prefetched
    (``project.check_rules.all()`` reads no more). Every request with a key runs
    this, and ingest needs all of it."""
    with connection.cursor() as cursor:
        cursor.execute(_api_key_sql(with_check_rules), [hashed_key])
        rows = cursor.fetchall()
    if not rows:
        return None
    first = rows[0]
    key = _KEY.instance(first, 0)
    project = _PROJECT.instance(first, _KEY.width)
    judge = _JUDGE.instance(first, _KEY.width + _PROJECT.width)
    _KEY_PROJECT.set_cached_value(key, project)
    Project.judge_config.related.set_cached_value(project, judge)
    if judge is not None:
        _JUDGE_PROJECT.set_cached_value(judge, project)
    if with_check_rules:
        start = _KEY.width + _PROJECT.width + _JUDGE.width
        rules = [rule for row in rows if (rule := _RULE.instance(row, start)) is not None]
        for rule in rules:
            _RULE_PROJECT.set_cached_value(rule, project)
        _prefetched(project, "check_rules", rules)
    return key


def items_visible_to(principal) -> QuerySet[ReviewItem]:
    return (
        ReviewItem.objects.for_clients()
        .filter(project__in=projects_where(principal, Capability.VIEW))
        .select_related("project")
        .prefetch_related(
            Prefetch("check_results", queryset=CheckResult.objects.order_by("id")),
            Prefetch(
                "judge_verdicts", queryset=JudgeVerdict.objects.order_by("-created_at", "-id")
            ),
        )
    )


def _prefetched(instance, name: str, objects: list) -> None:
    """Fill ``instance``'s reverse relation ``name`` with ``objects``, as a prefetch would."""
    queryset = getattr(instance, name).all()
    queryset._result_cache = objects
    queryset._prefetch_done = True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[name] = queryset


# hashed key -> (monotonic time loaded, ApiKey): one dict per process, so revoking
# a key here (``api_key_forget``) evicts it for every thread of the process.
_KEYS_LOADED: dict[str, tuple[float, ApiKey]] = {}
KEYS_LOADED_MAX = 1000
_clock = time.monotonic


def api_key_recent(hashed_key: str, *, max_age: float) -> ApiKey | None:
    """``api_key_with_project(hashed_key, with_check_rules=True)``, reused for up to
    ``max_age`` seconds by every request of this process.

    So a key revoked, or its project, judge configuration or check rules
    changed, in another process takes effect here within ``max_age`` seconds;
    in this process at once (``api_key_forget``). Only keys found are kept: a
    new key works at once, a wrong one queries every time. The cached rows
    are shared by the requests that reuse them: read them, never change them.
    """
    if max_age <= 0:
        return api_key_with_project(hashed_key, with_check_rules=True)
    now = _clock()
    loaded = _KEYS_LOADED.get(hashed_key)
    if loaded is not None and now - loaded[0] < max_age:
        return loaded[1]
    key = api_key_with_project(hashed_key, with_check_rules=True)
    if key is None:
        _KEYS_LOADED.pop(hashed_key, None)
        return None
    if len(_KEYS_LOADED) >= KEYS_LOADED_MAX:
        _KEYS_LOADED.clear()
    _KEYS_LOADED[hashed_key] = (now, key)
    return key


def api_key_forget(hashed_key: str | None = None) -> None:
    """Drop one key (every key without ``hashed_key``) from ``api_key_recent``'s rows."""
    if hashed_key is None:
        _KEYS_LOADED.clear()
    else:
        _KEYS_LOADED.pop(hashed_key, None)


def item_as_inserted(item: ReviewItem, *, check_results: list[CheckResult]) -> ReviewItem:
    """A just-inserted ``item`` holding what ``items_visible_to`` prefetches, without a query.

    Its ``check_results`` are the rows written with it; a new item has no judge
    verdict yet (the judge runs after commit) and, if an audit sample, no audit review.
    """
    _prefetched(item, "check_results", check_results)
    _prefetched(item, "judge_verdicts", [])
    if item.is_audit:
        item.audit_reviews = []
    return item


def items_with_audits(items: list[ReviewItem]) -> list[ReviewItem]:
    """Give each audit sample of ``items`` its ``audit_reviews`` (one query; none without
    audit samples, unlike a prefetch, which queries for every page), and each item decided
    by people its ``decision_steps`` and ``rubric_reviews`` (one query each; none without
    such items)."""
    audits = audit_reviews_of(items)
    steps = decision_steps_of(items)
    scored = rubric_reviews_of(items)
    for item in items:
        if item.is_audit:
            item.audit_reviews = [audits[item.pk]] if item.pk in audits else []
        if item.pk in steps:
            item.decision_steps = steps[item.pk]
        if item.final_verdict:
            item.rubric_reviews = scored.get(item.pk, [])
    return items
