"""Reviewer workspace latency with a large queue in PostgreSQL.

    python bench/workspace.py [--items 100000] [--rounds 300] [--holders 50]

Creates a throwaway PostgreSQL database (``hitl_bench_workspace`` on the server
of ``BENCH_ADMIN_DATABASE_URL``), migrates it, seeds one gate project with N
queued items (realistic prompt, output, chat history and context documents) and
``--holders`` other reviewers holding claims at the head of the queue. Then one
logged-in reviewer works through the admin (Django's test client, in process,
with sessions, CSRF middleware and the full template render):

- claim+render: POST "Start reviewing" (claim with SKIP LOCKED) and GET the
  review page it redirects to;
- submit-and-next: POST an approval from the review page (submit, then claim
  the next item) and GET the next review page.

Prints p50 / p95 / max of each, and the database is dropped afterwards.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import bench_database, items_cloned, manage, percentile  # noqa: E402

CLAIM_TARGET_MS = 150
SUBMIT_TARGET_MS = 60
# A throwaway account in a throwaway database.
BENCH_PASSWORD = "bench-" + "pass-1"


def seed(*, items: int, holders: int, rng: random.Random):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from reviews.models import Project, ProjectMembership, ReviewItem
    from reviews.services.accounts import user_roles_sync
    from reviews.workspace.services import assignment_claim_next

    user_model = get_user_model()
    project = Project.objects.create(name="Bench clinical", slug="bench", audit_sample_rate=0.0)
    reviewer = user_model.objects.create_user("bench-reviewer", password=BENCH_PASSWORD)
    others = [user_model.objects.create_user(f"holder{n}") for n in range(holders)]
    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=project, user=u, role="reviewer") for u in [reviewer, *others]]
    )
    user_roles_sync(user=reviewer)
    # One template item through the ORM (every column gets a valid value), then
    # copies of it with varying text made server-side by INSERT ... SELECT.
    template = ReviewItem.objects.create(
        project=project,
        external_id="template",
        prompt="template",
        messages=[
            {"role": "system", "content": "You are a careful clinical assistant."},
            {"role": "user", "content": "I weigh 60 kg and drink alcohol sometimes."},
        ],
        output="template",
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
        review_reasons=["gate"],
        created_at=timezone.now(),
    )
    varied = {
        "external_id": "'bench-' || g",
        "prompt": "'Patient ' || g || ' asks: what is the maximum daily dose of paracetamol?'",
        "output": "'For a healthy adult the usual maximum is 4 g per day, taken as 500 mg to "
        "1 g every 4 to 6 hours. With regular alcohol use, stay below 2 g. (' || g || ')'",
        "confidence": "random()",
        "metadata": "jsonb_build_object('ticket', 'T-' || g, 'channel', 'chat')",
        "payload_hash": "lpad(g::text, 64, '0')",
        "priority": "CASE WHEN random() < 0.05 THEN 200 ELSE 100 END",
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [rng.random()])
        items_cloned(cursor, template=template, rows=items, varied=varied)
    for other in others:
        assignment_claim_next(reviewer=other, project=project)
    return project, reviewer


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def run(*, rounds: int, project, reviewer, counts: dict | None = None):
    """Time ``rounds`` claim+render and submit-and-next round trips (ms each).

    With ``counts``, also record the SQL statements of each kind of round trip.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client = Client()
    client.force_login(reviewer)  # the login form and its lockout are not measured here
    claim_url = reverse("admin:reviews_workspace_claim", args=[project.pk])
    claim_ms, submit_ms = [], []
    state: dict[str, str] = {}
    for _ in range(rounds):
        # claim+render: Start reviewing, then the review page.
        def claim_and_render():
            response = client.post(claim_url)
            assert response.status_code == 302, response.status_code
            page = client.get(response.url)
            assert page.status_code == 200, page.status_code
            state["url"] = response.url

        if counts is not None:
            with CaptureQueriesContext(connection) as captured:
                claim_and_render()
            counts["claim+render"] = len(captured.captured_queries)
        else:
            claim_ms.append(timed(claim_and_render))

        # submit-and-next: approve, then the next review page; release it so the
        # next round measures a fresh claim again.
        def submit_and_next():
            response = client.post(state["url"], {"action": "approve", "active_seconds": "9"})
            assert response.status_code == 302, response.status_code
            page = client.get(response.url)
            assert page.status_code == 200, page.status_code
            state["next"] = response.url

        if counts is not None:
            with CaptureQueriesContext(connection) as captured:
                submit_and_next()
            counts["submit-and-next"] = len(captured.captured_queries)
        else:
            submit_ms.append(timed(submit_and_next))
        client.post(state["next"], {"action": "release"})
    return claim_ms, submit_ms


def report(name: str, values: list[float], target: float) -> None:
    p95 = percentile(values, 95)
    verdict = "meets" if p95 < target else "MISSES"
    print(
        f"{name:16s} p50 {statistics.median(values):.1f} ms  p95 {p95:.1f} ms  "
        f"max {max(values):.1f} ms  ({verdict} target p95 < {target} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--holders", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with bench_database("hitl_bench_workspace") as url:
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "hitlplatform.settings"}
        env.pop("REDIS_URL", None)
        manage(env, "migrate", "--noinput")
        os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "hitlplatform.settings"})
        os.environ.pop("REDIS_URL", None)
        import django

        django.setup()
        from django.db import connection

        started = time.perf_counter()
        project, reviewer = seed(
            items=args.items, holders=args.holders, rng=random.Random(args.seed)
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(
            f"seeded {args.items} queued items and {args.holders} held claims "
            f"in {time.perf_counter() - started:.1f} s"
        )
        run(rounds=10, project=project, reviewer=reviewer)  # warm-up
        claim_ms, submit_ms = run(rounds=args.rounds, project=project, reviewer=reviewer)
        print(f"{args.rounds} rounds by one logged-in reviewer, {args.items} items in the queue")
        report("claim+render", claim_ms, CLAIM_TARGET_MS)
        report("submit-and-next", submit_ms, SUBMIT_TARGET_MS)
        counts: dict[str, int] = {}
        run(rounds=1, project=project, reviewer=reviewer, counts=counts)
        print(
            "SQL statements per round trip: "
            + ", ".join(f"{name} {n}" for name, n in counts.items())
            + " (including session, user, BEGIN/COMMIT)"
        )
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"load average during the run: {load} on {os.cpu_count()} CPUs")
        connection.close()


if __name__ == "__main__":
    main()
