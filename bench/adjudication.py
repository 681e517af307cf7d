"""Agreement metrics and the senior queue on a large double-review project.

    python bench/adjudication.py [--items 20000] [--reviewers 8] [--disagree 0.2] [--claims 200]

Creates a throwaway PostgreSQL database (``hitl_bench_adjudication`` on the
server of ``BENCH_ADMIN_DATABASE_URL``), migrates it, and seeds one project with
N items reviewed twice by random pairs of reviewers (a share of them disagreeing,
each of those an open adjudication case). Then prints: the time and query count
of ``project_agreement`` over the whole period (the API and the report page),
the time of the first queue page for a senior, and claims plus decisions per
second through ``case_claim_next`` / ``case_decide``.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import bench_database, manage  # noqa: E402

VERDICTS = ("approve", "reject", "correct")
SEVERITIES = ("none", "minor", "major", "critical")


def seed(*, items: int, reviewers: int, disagree: float, rng: random.Random):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from adjudication.models import AdjudicationCase
    from reviews.models import Project, ProjectMembership, Review, ReviewItem
    from reviews.models.work import SEVERITY_RANK

    user_model = get_user_model()
    reviews_by_id = {}
    project = Project.objects.create(
        name="Bench", slug="bench", reviews_required=2, audit_sample_rate=0.0
    )
    people = [
        user_model.objects.create_user(f"reviewer{n}", is_staff=True) for n in range(reviewers)
    ]
    senior = user_model.objects.create_user("senior", is_staff=True)
    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=project, user=u, role="reviewer") for u in people]
        + [ProjectMembership(project=project, user=senior, role="senior")]
    )
    now = timezone.now()
    start = now - timedelta(days=25)
    rows, plans = [], []
    for n in range(items):
        disagreeing = rng.random() < disagree
        verdict_a = rng.choice(VERDICTS)
        verdict_b = (
            rng.choice([v for v in VERDICTS if v != verdict_a]) if disagreeing else verdict_a
        )
        rows.append(
            ReviewItem(
                project=project,
                external_id=f"bench-{n}",
                prompt=f"Patient {n} asks about the maximum daily dose of paracetamol.",
                output=f"For a healthy adult the usual maximum is 4 g per day (case {n}).",
                model_name="acme-med",
                model_version="2026-11-01",
                confidence=rng.random(),
                payload_hash=f"{n:064d}",
                status="in_adjudication" if disagreeing else "approved",
            )
        )
        plans.append((disagreeing, verdict_a, verdict_b, rng.sample(people, 2)))
    ReviewItem.objects.bulk_create(rows, batch_size=2000)
    reviews = []
    for item, (_disagreeing, va, vb, (ra, rb)) in zip(rows, plans, strict=True):
        for reviewer, verdict in ((ra, va), (rb, vb)):
            reviews.append(
                Review(
                    item=item,
                    reviewer=reviewer,
                    verdict=verdict,
                    corrected_output="Adults: at most 3 g a day." if verdict == "correct" else None,
                    reason_code="" if verdict == "approve" else "factual_error",
                    severity="none" if verdict == "approve" else rng.choice(SEVERITIES[1:]),
                    seconds_spent=rng.uniform(20, 180),
                )
            )
    Review.objects.bulk_create(reviews, batch_size=4000)
    # created_at is auto_now_add, so bulk_create stamped "now": spread items over
    # the period and put each item's two reviews 1 and 2 minutes after it.
    step = 25 * 86400 / items
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE reviews_reviewitem SET created_at = %s + (id - %s) * %s * interval '1 second'"
            " WHERE project_id = %s",
            [start, rows[0].pk, step, project.pk],
        )
        cursor.execute(
            "UPDATE reviews_review r SET created_at = i.created_at + o.n * interval '60 seconds'"
            " FROM (SELECT id, row_number() OVER (PARTITION BY item_id ORDER BY id) AS n"
            " FROM reviews_review) o, reviews_reviewitem i"
            " WHERE o.id = r.id AND i.id = r.item_id AND i.project_id = %s",
            [project.pk],
        )
    for review in Review.objects.filter(item__project=project).only("id", "created_at"):
        reviews_by_id[review.pk] = review.created_at
    cases = []
    for index, (disagreeing, *_rest) in enumerate(plans):
        if not disagreeing:
            continue
        a, b = reviews[2 * index], reviews[2 * index + 1]
        cases.append(
            AdjudicationCase(
                item=rows[index],
                project=project,
                kind="disagreement",
                review_a=a,
                review_b=b,
                severity_rank=max(SEVERITY_RANK[a.severity], SEVERITY_RANK[b.severity]),
                opened_at=reviews_by_id[b.pk],
            )
        )
    AdjudicationCase.objects.bulk_create(cases, batch_size=2000)
    return project, senior, start, now + timedelta(hours=1), len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--reviewers", type=int, default=8)
    parser.add_argument("--disagree", type=float, default=0.2)
    parser.add_argument("--claims", type=int, default=200)
    args = parser.parse_args()

    with bench_database("hitl_bench_adjudication") as url:
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "hitlplatform.settings"}
        env.pop("REDIS_URL", None)
        manage(env, "migrate", "--noinput")
        os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "hitlplatform.settings"})
        os.environ.pop("REDIS_URL", None)
        import django

        django.setup()
        from django.db import connection, reset_queries
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from adjudication.metrics import project_agreement
        from adjudication.selectors import case_queue_for, cases_for_queue_page
        from adjudication.services import case_claim_next, case_decide

        rng = random.Random(7)
        began = time.perf_counter()
        project, senior, start, end, open_cases = seed(
            items=args.items, reviewers=args.reviewers, disagree=args.disagree, rng=rng
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does after a bulk load
        print(
            f"seeded {args.items} items, {2 * args.items} reviews, {open_cases} open cases "
            f"in {time.perf_counter() - began:.1f} s"
        )

        timings = []
        for _ in range(3):
            reset_queries()
            with CaptureQueriesContext(connection) as queries:
                began = time.perf_counter()
                figures = project_agreement(project=project, start=start, end=end)
                timings.append(time.perf_counter() - began)
        summary = figures["summary"]
        print(
            f"project_agreement: {statistics.median(timings) * 1000:.0f} ms median of 3 "
            f"({len(queries)} queries) for {summary['items']} pairs; "
            f"agreement {summary['percent_agreement']} %, kappa {summary['kappa']}, "
            f"{len(figures['pairs'])} reviewer pairs"
        )

        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            ids = list(case_queue_for(senior).values_list("pk", flat=True)[:50])
            page = cases_for_queue_page(ids=ids, now=timezone.now())
            elapsed = time.perf_counter() - began
        print(
            f"senior queue, first page of {len(page)}: {elapsed * 1000:.1f} ms "
            f"({len(queries)} queries)"
        )

        claims = min(args.claims, open_cases)
        began = time.perf_counter()
        for n in range(claims):
            claim = case_claim_next(user=senior)
            case_decide(
                case=claim.case,
                claim_id=claim.pk,
                user=senior,
                upheld="a" if n % 2 else "b",
                rationale="Bench decision.",
            )
        elapsed = time.perf_counter() - began
        print(
            f"claim + decide: {claims} cases in {elapsed:.2f} s = {claims / elapsed:.0f} cases/s "
            f"({elapsed / claims * 1000:.1f} ms per case)"
        )


if __name__ == "__main__":
    main()
