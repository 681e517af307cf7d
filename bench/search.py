"""The item list at N items: a two-word full-text search with two filters, through the admin.

    python bench/search.py [--rows 1000000] [--requests 60] [--keep]

Seeds a dedicated database (``hitl_bench_search_bulk`` on the server of
``DATABASE_URL``) with N items whose prompts and outputs combine a drug, a
topic and a population from small vocabularies (so a two-word query matches a
few hundred items, as a real one would), written server-side with
``INSERT ... SELECT`` over ``generate_series`` and the GIN index built once
after the load. Then, as a reviewer of the project (so the list is scoped by
membership, as for everyone but superusers), it requests the admin's item list
with Django's test client: ``?q=<drug> <topic>&model_version=v3&confidence_max=0.5``,
cycling through word pairs, and prints the p50/p95 of the whole page
(middleware, filters, count, rows, template), the app's CPU time per page
(steadier than wall time on a shared machine) and the page's query count. The
reference, measured in the same run on the same connection: the page's own two
statements (the capped count and the first page of rows) run as raw SQL.
``--keep`` reuses a database seeded by an earlier run.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import create_database, items_cloned, manage, percentile, with_path  # noqa: E402 (needs the sys.path entry above)

BENCH_DB = "hitl_bench_search_bulk"
TARGET_MS = 200
DRUGS = [
    "paracetamol",
    "ibuprofen",
    "aspirin",
    "naproxen",
    "codeine",
    "tramadol",
    "morphine",
    "warfarin",
    "heparin",
    "metformin",
    "insulin",
    "atorvastatin",
    "simvastatin",
    "lisinopril",
    "amlodipine",
    "losartan",
    "omeprazole",
    "pantoprazole",
    "amoxicillin",
    "doxycycline",
    "azithromycin",
    "ciprofloxacin",
    "sertraline",
    "fluoxetine",
    "citalopram",
    "diazepam",
    "lorazepam",
    "gabapentin",
    "pregabalin",
    "levothyroxine",
    "prednisolone",
    "salbutamol",
    "montelukast",
    "cetirizine",
    "loratadine",
    "furosemide",
    "digoxin",
    "clopidogrel",
    "apixaban",
    "rivaroxaban",
    "allopurinol",
]
TOPICS = [
    "dose",
    "interaction",
    "pregnancy",
    "breastfeeding",
    "overdose",
    "allergy",
    "contraindication",
    "renal",
    "hepatic",
    "elderly",
    "paediatric",
    "storage",
    "timing",
    "alcohol",
    "driving",
    "withdrawal",
    "tapering",
    "monitoring",
    "rash",
    "nausea",
    "dizziness",
    "insomnia",
    "headache",
    "bleeding",
    "hypoglycaemia",
    "hypotension",
    "tachycardia",
    "constipation",
    "diarrhoea",
    "fatigue",
    "cough",
    "swelling",
    "bruising",
    "cramps",
    "tremor",
    "anxiety",
    "confusion",
    "seizures",
    "fever",
    "vomiting",
    "palpitations",
    "weight",
    "appetite",
    "vision",
    "hearing",
    "memory",
    "mood",
    "libido",
    "sweating",
    "thirst",
    "urination",
]
POPULATIONS = [
    "adults",
    "children",
    "teenagers",
    "seniors",
    "athletes",
    "nurses",
    "carers",
    "students",
]
MODEL_VERSIONS = 5
SEARCH_INDEX = "item_search_gin_idx"  # on reviews_itemsearch.document


def _sql_array(words: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{word}'" for word in words) + "]"


def seed(rows: int) -> None:
    """``rows`` items in one project, written server-side; the GIN index built after."""
    from django.db import connection

    from reviews.models import ItemSearch, Project, ReviewItem
    from reviews.models.items import SearchDocument

    project = Project.objects.create(name="Bench", slug="bench", audit_sample_rate=0.0)
    template = ReviewItem.objects.create(
        project=project,
        external_id="template",
        prompt="template",
        output="template",
        model_name="acme-med",
        model_version="v0",
        payload_hash="0" * 64,
        status="pending_review",
        in_queue=True,
    )
    drug = f"({_sql_array(DRUGS)})[1 + g %% {len(DRUGS)}]"
    topic = f"({_sql_array(TOPICS)})[1 + g %% {len(TOPICS)}]"
    people = f"({_sql_array(POPULATIONS)})[1 + (g / 7) %% {len(POPULATIONS)}]"
    varied = {
        "external_id": "'bench-' || g",
        "prompt": f"'Question ' || g || ': what should ' || {people} || ' know about the ' "
        f"|| {topic} || ' of ' || {drug} || '?'",
        "output": f"'For ' || {people} || ', ' || {drug} || ' needs care with ' || {topic} "
        "|| '; ask a pharmacist and read the leaflet (case ' || g || ').'",
        "model_version": f"'v' || (g %% {MODEL_VERSIONS})",
        "confidence": "((g * 37) %% 100) / 100.0",
        "created_at": "now() - make_interval(secs => g)",
        "updated_at": "now()",
    }
    table = ReviewItem._meta.db_table
    documents = ItemSearch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [SEARCH_INDEX])
        (index_sql,) = cursor.fetchone()
        # Loading first and indexing once is several times faster than a GIN insert a row.
        cursor.execute(f"DROP INDEX {SEARCH_INDEX}")
        items_cloned(cursor, template=template, rows=rows, varied=varied)
        # The documents the indexer job would build, in one statement.
        cursor.execute(
            f"INSERT INTO {documents} (item_id, document) "  # noqa: S608
            f"SELECT i.id, {SearchDocument.sql('i.')} FROM {table} i"
        )
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(index_sql)
        cursor.execute(f'VACUUM ANALYZE "{table}"')
        cursor.execute(f'VACUUM ANALYZE "{documents}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="reuse a seeded bench database")
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hitl")
    env = {
        **os.environ,
        "DATABASE_URL": with_path(server, f"/{BENCH_DB}"),
        "REDIS_URL": "",  # inline queues: the list enqueues nothing
        "LOG_LEVEL": "WARNING",
    }
    kept = create_database(server, BENCH_DB, keep=args.keep)
    if not kept:
        manage(env, "migrate", "--noinput")
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitlplatform.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from reviews.models import Project, ProjectMembership, ReviewItem
    from reviews.services.accounts import user_roles_sync

    settings.ALLOWED_HOSTS = ["*"]
    seeded = 0.0
    if not kept:
        started = time.perf_counter()
        seed(args.rows)
        seeded = time.perf_counter() - started
    items = ReviewItem.objects.count()
    project = Project.objects.get(slug="bench")
    user, _ = get_user_model().objects.get_or_create(
        username="bench-reviewer", defaults={"is_staff": True}
    )
    ProjectMembership.objects.get_or_create(project=project, user=user, role="reviewer")
    user_roles_sync(user=user)
    client = Client()
    client.force_login(user)
    url = reverse("admin:reviews_reviewitem_changelist")
    pairs = [(DRUGS[i % len(DRUGS)], TOPICS[(i * 7) % len(TOPICS)]) for i in range(12)]

    def params(i: int) -> dict:
        drug, topic = pairs[i % len(pairs)]
        return {"q": f"{drug} {topic}", "model_version": "v3", "confidence_max": "0.5"}

    for i in range(3):  # warm up: connection, templates, caches
        assert client.get(url, params(i)).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params(0))
    assert response.status_code == 200, response.status_code
    queries = len(captured)
    drug, topic = pairs[0]
    matches = (
        ReviewItem.objects.search(f"{drug} {topic}")
        .filter(project=project, model_version="v3", confidence__lte=0.5)
        .count()
    )
    # The page's own statements: the capped count and the first page of rows.
    statements = [q["sql"] for q in captured.captured_queries if "reviews_reviewitem" in q["sql"]]
    page_sql = [sql for sql in statements if "reviews_itemsearch" in sql]

    timings, cpu, reference = [], [], []
    load_before = os.getloadavg()[0]
    for i in range(args.requests):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url, params(i))
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200
        drug, topic = pairs[i % len(pairs)]
        first_drug, first_topic = pairs[0]  # the words in the captured statements
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for sql in page_sql:
                cursor.execute(sql.replace(f"{first_drug} {first_topic}", f"{drug} {topic}"))
                cursor.fetchall()
        reference.append((time.perf_counter() - started) * 1000)

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + page_sql[-1])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    uses_index = SEARCH_INDEX in plan
    print(f"items {items}, seeded in {seeded:.0f} s" if seeded else f"items {items} (kept)")
    print(f"query: {params(0)} -> {matches} matching item(s)")
    print(f"page: p50 {percentile(timings, 50):.1f} ms, p95 {percentile(timings, 95):.1f} ms")
    print(
        f"reference (the page's {len(page_sql)} item statements as raw SQL): "
        f"p50 {percentile(reference, 50):.1f} ms, p95 {percentile(reference, 95):.1f} ms"
    )
    print(
        f"app CPU per page (this process): p50 {percentile(cpu, 50):.1f} ms, "
        f"p95 {percentile(cpu, 95):.1f} ms"
    )
    print(f"load average 1 min: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"plan uses the GIN index: {uses_index}")
    print(f"items = {items}")
    print(f"search_matches = {matches}")
    print(f"search_p50_ms = {percentile(timings, 50):.1f}")
    print(f"search_p95_ms = {percentile(timings, 95):.1f}")
    print(f"search_queries = {queries}")
    print(f"search_app_cpu_p95_ms = {percentile(cpu, 95):.1f}")
    print(f"reference_sql_p95_ms = {percentile(reference, 95):.1f}")
    print(f"gin_index_used = {int(uses_index)}")
    print(f"target_p95_ms = {TARGET_MS}")
    print(f"within_target = {int(percentile(timings, 95) < TARGET_MS)}")


if __name__ == "__main__":
    main()
