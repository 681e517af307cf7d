"""Reviewer workspace latency with a large queue in PostgreSQL.

    python bench/workspace.py [--items 1000000] [--comparisons 100000] [--rounds 200]
                              [--holders 50] [--database hitl_bench_workspace] [--keep]

Creates a throwaway PostgreSQL database (``--database`` on the server of
``BENCH_ADMIN_DATABASE_URL``), migrates it and seeds, server-side (one
INSERT ... SELECT per table, the secondary indexes built afterwards):

- a gate project with ``--items`` queued single items (realistic prompt,
  output, chat history and context documents);
- a second gate project with ``--comparisons`` queued comparison items of
  2-4 candidates each;
- ``--holders`` other reviewers holding claims at the head of each queue.

Then one logged-in reviewer works through the admin (Django's test client, in
process, with sessions, CSRF middleware and the full template render), first
on the single items, then on the comparisons:

- claim+render: POST "Start reviewing" (claim with SKIP LOCKED) and GET the
  review page it redirects to;
- submit-and-next: POST an approval (a comparison: the first candidate shown
  wins) from the review page (submit, then claim the next item) and GET the
  next review page.

Prints p50 / p95 / max of each with the app's CPU (this process) and the
PostgreSQL backend's CPU per round trip, the SQL statements of each kind of
round trip at two queue sizes (they must be equal), the load average, and a
block of ``key = value`` lines. ``--keep`` leaves the database in place and
reuses it on the next run when it holds the asked queue sizes (each run
decides a few hundred items of each queue).
"""

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402 (needs the sys.path entry above)
    ADMIN_URL,
    bench_database,
    create_database,
    items_cloned,
    manage,
    percentile,
    with_path,
)

# Issue 17 (single items at 1,000,000 queued) and issue 15 (comparisons at 100,000).
TARGETS_MS = {
    "single": {"claim+render": 30, "submit-and-next": 30},
    "comparison": {"claim+render": 150, "submit-and-next": 60},
}
# A throwaway account in a throwaway database.
BENCH_PASSWORD = "bench-" + "pass-1"
WINNER = re.compile(r'name="choice" value="(winner:\d+)"')
# Built after the bulk insert: maintaining them row by row is most of a seed's time.
DEFERRED_INDEX_TABLES = ("reviews_reviewitem", "reviews_candidate")


def _indexes_dropped(cursor) -> list[str]:
    """Drop the secondary indexes of the seeded tables; return their definitions."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef, c.conname
        FROM pg_indexes i
        LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.contype IN ('u', 'p')
        WHERE i.tablename = ANY(%s) AND (c.contype IS NULL OR c.contype = 'u')
        """,
        [list(DEFERRED_INDEX_TABLES)],
    )
    definitions = []
    for name, definition, constraint in cursor.fetchall():
        if constraint:
            cursor.execute(
                "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE conname = %s",
                [name],
            )
            table, condef = cursor.fetchone()
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            definitions.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {condef}')
        else:
            cursor.execute(f'DROP INDEX "{name}"')
            definitions.append(definition)
    return definitions


def _template_item(project, *, kind: str, output: str):
    from django.utils import timezone

    from reviews.models import ReviewItem

    return ReviewItem.objects.create(
        project=project,
        kind=kind,
        external_id="template",
        prompt="template",
        messages=[
            {"role": "system", "content": "You are a careful clinical assistant."},
            {"role": "user", "content": "I weigh 60 kg and drink alcohol sometimes."},
        ],
        output=output,
        model_name="acme-med",
        model_version="2026-11-01",
        confidence=0.5,
        context=[
            {
                "title": f"Formulary section {k}",
                "source": "formulary.pdf",
                "text": "Adults: 0.5-1 g every 4-6 hours; max 4 g in 24 hours. " * 6,
            }
            for k in range(3)
        ],
        metadata={"ticket": "T-0", "channel": "chat"},
        payload_hash="0" * 64,
        status="pending_review",
        in_queue=True,
        priority=100,
        review_reasons=["comparison"] if kind == "comparison" else ["gate"],
        created_at=timezone.now(),
    )


VARIED = {
    "external_id": "'bench-' || g",
    "prompt": "'Patient ' || g || ' asks: what is the maximum daily dose of paracetamol?'",
    "output": "'For a healthy adult the usual maximum is 4 g per day, taken as 500 mg to "
    "1 g every 4 to 6 hours. With regular alcohol use, stay below 2 g. (' || g || ')'",
    "confidence": "random()",
    "metadata": "jsonb_build_object('ticket', 'T-' || g, 'channel', 'chat')",
    "payload_hash": "lpad(g::text, 64, '0')",
    "priority": "CASE WHEN random() < 0.05 THEN 200 ELSE 100 END",
}

CANDIDATES_SQL = """
INSERT INTO reviews_candidate
    (item_id, position, output, model_name, model_version, confidence, checks, check_failed)
SELECT i.id, p,
       'Candidate ' || p || ' of ' || i.external_id || ': the usual adult maximum is '
           || (3 + p) || ' g per day, split into doses of 500 mg to 1 g.',
       'acme-med-' || p, '2026-11-0' || (p + 1), i.confidence + p * 0.01 * (1 - i.confidence),
       '[]'::jsonb, false
FROM reviews_reviewitem i, generate_series(0, 1 + i.id %% 3) AS p
WHERE i.project_id = %s
"""


def seed(*, items: int, comparisons: int, holders: int, rng: random.Random):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from reviews.models import Project, ProjectMembership
    from reviews.services.accounts import user_roles_sync
    from reviews.workspace.services import assignment_claim_next

    user_model = get_user_model()
    single = Project.objects.create(name="Bench clinical", slug="bench", audit_sample_rate=0.0)
    compare = Project.objects.create(
        name="Bench comparisons", slug="bench-compare", audit_sample_rate=0.0
    )
    reviewer = user_model.objects.create_user("bench-reviewer", password=BENCH_PASSWORD)
    others = [user_model.objects.create_user(f"holder{n}") for n in range(holders)]
    ProjectMembership.objects.bulk_create(
        [
            ProjectMembership(project=project, user=u, role="reviewer")
            for project in (single, compare)
            for u in [reviewer, *others]
        ]
    )
    user_roles_sync(user=reviewer)
    # One template item per project through the ORM (every column gets a valid
    # value), then copies of it with varying text made server-side.
    templates = [
        (_template_item(single, kind="single", output="template"), items),
        (_template_item(compare, kind="comparison", output=""), comparisons),
    ]
    # Autocommit: each statement commits (and runs its deferred foreign-key checks)
    # before the next one, so the indexes can be built on the committed rows.
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [rng.random()])
        deferred = _indexes_dropped(cursor)
        for template, rows in templates:
            items_cloned(cursor, template=template, rows=rows, varied=VARIED)
        cursor.execute(CANDIDATES_SQL, [compare.pk])
        for definition in deferred:
            cursor.execute(definition)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE reviews_reviewitem")
        cursor.execute("VACUUM ANALYZE reviews_candidate")
    for project in (single, compare):
        for other in others:
            assignment_claim_next(reviewer=other, project=project)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the planner sees the claims and sessions tables too


def queued(project_slug: str) -> int:
    from reviews.models import ReviewItem

    return ReviewItem.objects.filter(project__slug=project_slug, in_queue=True).count()


def backend_cpu() -> float:
    """CPU seconds used so far by this process's PostgreSQL backend."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timings:
    """Wall, app CPU and PostgreSQL CPU (ms) of each round trip of one kind."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.app_cpu: list[float] = []
        self.db_cpu = 0.0

    def measure(self, fn) -> None:
        db_before = backend_cpu()
        cpu, start = time.process_time(), time.perf_counter()
        fn()
        self.wall.append((time.perf_counter() - start) * 1000)
        self.app_cpu.append((time.process_time() - cpu) * 1000)
        # The probe's own statement is counted too: a few microseconds.
        self.db_cpu += (backend_cpu() - db_before) * 1000


def run(*, rounds: int, project, reviewer, comparison: bool, counts: dict | None = None):
    """Time ``rounds`` claim+render and submit-and-next round trips.

    With ``counts``, record the SQL statements of each kind of round trip instead.
    """
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(reviewer)  # the login form and its lockout are not measured here
    claim_url = reverse("admin:reviews_workspace_claim", args=[project.pk])
    timings = {"claim+render": Timings(), "submit-and-next": Timings()}
    state: dict[str, str] = {}

    def decision(page) -> dict:
        if not comparison:
            return {"action": "approve", "active_seconds": "9"}
        return {"choice": WINNER.search(page.content.decode()).group(1), "active_seconds": "9"}

    def claim_and_render():
        response = client.post(claim_url)
        assert response.status_code == 302, response.status_code
        page = client.get(response.url)
        assert page.status_code == 200, page.status_code
        state["url"], state["page"] = response.url, page

    def submit_and_next():
        response = client.post(state["url"], decision(state["page"]))
        assert response.status_code == 302, response.status_code
        assert "/workspace/review/" in response.url, response.url
        page = client.get(response.url)
        assert page.status_code == 200, page.status_code
        state["next"] = response.url

    for _ in range(rounds):
        for name, fn in (("claim+render", claim_and_render), ("submit-and-next", submit_and_next)):
            if counts is None:
                timings[name].measure(fn)
            else:
                # Counted at the cursor: the test client resets Django's query log per request.
                statements: list[str] = []

                def counted(execute, sql, params, many, context, statements=statements):
                    statements.append(sql)
                    return execute(sql, params, many, context)

                with connection.execute_wrapper(counted):
                    fn()
                counts[name] = len(statements)
        # Release the next item so the following round measures a fresh claim again.
        client.post(state["next"], {"choice" if comparison else "action": "release"})
    return timings


def claim_sql_ms(*, project, reviewer, runs: int = 20) -> float:
    """Reference: median execution time of the claim's candidate statement alone, as
    PostgreSQL reports it (EXPLAIN ANALYZE, rolled back), at the same queue."""
    from django.db import connection, transaction
    from django.utils import timezone

    from reviews.models.items import SUBMITTED_CONTENT_FIELDS
    from reviews.workspace.services import claimable_items

    times = []
    with transaction.atomic():
        queryset = (
            claimable_items(reviewer=reviewer, project=project, now=timezone.now())
            .defer(*SUBMITTED_CONTENT_FIELDS, "review_notes")
            .select_for_update(skip_locked=True, of=("self",))[:1]
        )
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            for _ in range(runs):
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
                (plan,) = cursor.fetchone()
                plan = plan[0] if isinstance(plan, list) else plan
                times.append(plan["Execution Time"] + plan["Planning Time"])
        transaction.set_rollback(True)
    return statistics.median(times)


def report(name: str, timings: Timings, target: float) -> float:
    p95 = percentile(timings.wall, 95)
    verdict = "meets" if p95 < target else "MISSES"
    print(
        f"  {name:16s} p50 {statistics.median(timings.wall):6.1f} ms  p95 {p95:6.1f} ms  "
        f"max {max(timings.wall):6.1f} ms  ({verdict} target p95 < {target} ms); "
        f"app CPU p50 {statistics.median(timings.app_cpu):.1f} ms, "
        f"PostgreSQL CPU {timings.db_cpu / len(timings.wall):.1f} ms a round trip"
    )
    return p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--comparisons", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--holders", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", default="hitl_bench_workspace")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database; reuse a kept one when it fits"
    )
    args = parser.parse_args()

    if args.keep:
        kept = create_database(ADMIN_URL, args.database, keep=True)
        run_bench(args, with_path(ADMIN_URL, f"/{args.database}"), kept=kept)
    else:
        with bench_database(args.database) as url:
            run_bench(args, url, kept=False)


def run_bench(args, url: str, *, kept: bool) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "hitlplatform.settings"}
    env.pop("REDIS_URL", None)
    manage(env, "migrate", "--noinput")
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "hitlplatform.settings"})
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from reviews.models import Project

    seed_s = 0.0
    reuse = kept and Project.objects.filter(slug="bench").exists()
    if reuse:
        sizes = (queued("bench"), queued("bench-compare"))
        # Each run decides a few hundred items: reuse while the queues are near the asked sizes.
        wanted = (args.items, args.comparisons)
        reuse = all(0.99 * want <= have <= want for have, want in zip(sizes, wanted, strict=True))
        if not reuse:
            connection.close()
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{args.database}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{args.database}"')
            manage(env, "migrate", "--noinput")
    if reuse:
        print(f"reused {args.database}: {sizes[0]:,} single items, {sizes[1]:,} comparisons queued")
    else:
        started = time.perf_counter()
        seed(
            items=args.items,
            comparisons=args.comparisons,
            holders=args.holders,
            rng=random.Random(args.seed),
        )
        seed_s = time.perf_counter() - started
        print(
            f"seeded {args.items:,} queued items, {args.comparisons:,} queued comparisons and "
            f"{args.holders} held claims on each queue in {seed_s:.1f} s"
        )
    reviewer = get_user_model().objects.get(username="bench-reviewer")
    figures: dict[str, float] = {}
    counts: dict[str, dict[str, int]] = {}
    for kind, slug in (("single", "bench"), ("comparison", "bench-compare")):
        project = Project.objects.get(slug=slug)
        comparison = kind == "comparison"
        size = queued(slug)
        run(rounds=10, project=project, reviewer=reviewer, comparison=comparison)  # warm-up
        # Query counts before and after the timed rounds (each decides an item).
        first: dict[str, int] = {}
        run(rounds=1, project=project, reviewer=reviewer, comparison=comparison, counts=first)
        timings = run(rounds=args.rounds, project=project, reviewer=reviewer, comparison=comparison)
        last: dict[str, int] = {}
        run(rounds=1, project=project, reviewer=reviewer, comparison=comparison, counts=last)
        counts[kind] = last
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(
            f"{kind}: {args.rounds} rounds by one logged-in reviewer, {size:,} items queued "
            f"(load average {load} on {os.cpu_count()} CPUs)"
        )
        for name, target in TARGETS_MS[kind].items():
            figures[f"{kind} {name}"] = report(name, timings[name], target)
            figures[f"{kind} {name} p50"] = statistics.median(timings[name].wall)
            figures[f"{kind} {name} cpu"] = statistics.median(timings[name].app_cpu)
            figures[f"{kind} {name} db"] = timings[name].db_cpu / len(timings[name].wall)
        print(
            "  SQL statements per round trip (session and user included; BEGIN/COMMIT not): "
            + ", ".join(f"{name} {first[name]} then {n}" for name, n in last.items())
            + (" (constant)" if first == last else " (GREW)")
        )
        counts[f"{kind} constant"] = {"ok": int(first == last)}
        figures[f"{kind} claim sql"] = claim_sql_ms(project=project, reviewer=reviewer)
        print(
            "  reference: the claim's candidate statement alone (planning + execution, "
            f"EXPLAIN ANALYZE) {figures[f'{kind} claim sql']:.2f} ms"
        )
    load = os.getloadavg()
    connection.close()

    def suffix(kind: str) -> str:
        return "1m" if kind == "single" else "100k"

    print()
    print(f"items_queued = {args.items}")
    print(f"comparisons_queued = {args.comparisons}")
    print(f"rounds = {args.rounds}")
    print(f"seed_s = {seed_s:.1f}")
    for kind, prefix in (("single", "workspace"), ("comparison", "comparison")):
        for name, key in (("claim+render", "claim_render"), ("submit-and-next", "submit_next")):
            tail = suffix(kind)
            print(f"{prefix}_{key}_p95_ms_{tail} = {figures[f'{kind} {name}']:.1f}")
            print(f"{prefix}_{key}_p50_ms_{tail} = {figures[f'{kind} {name} p50']:.1f}")
            print(f"{prefix}_{key}_app_cpu_ms_{tail} = {figures[f'{kind} {name} cpu']:.1f}")
            print(f"{prefix}_{key}_db_cpu_ms_{tail} = {figures[f'{kind} {name} db']:.1f}")
            print(f"{prefix}_{key}_queries = {counts[kind][name]}")
        print(f"{prefix}_queries_constant = {counts[f'{kind} constant']['ok']}")
        print(f"{prefix}_claim_sql_ms_{suffix(kind)} = {figures[f'{kind} claim sql']:.2f}")
    print(f"load_average_1m = {load[0]:.1f}")


if __name__ == "__main__":
    main()
