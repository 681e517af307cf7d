"""A fresh database for the schemathesis run, migrated and seeded; prints the API key.

    DATABASE_URL=postgres://.../hitl_schemathesis python tests/schemathesis/fixture.py

Drops and recreates the database named in ``DATABASE_URL`` (on the same server),
migrates it and stores one project with items (one of them final), a built SFT
export, a built CSV export and one still queued, so the generated requests meet
real rows: small ids exist. Prints the project's raw API key, nothing else.
"""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("hitl_schemathesis"):
        raise SystemExit(f"Refusing to recreate {name!r}: not a schemathesis database.")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed() -> str:
    from django.core.management import call_command

    from datasets.services import export_build, export_create
    from reviews.services.projects import api_key_create
    from tests.datasets.factories import reviewed
    from tests.factories import ingest, item_payload, make_project

    call_command("migrate", interactive=False, verbosity=0)
    project = make_project(name="Schemathesis", slug="schemathesis")
    ingest(project, *[item_payload() for _ in range(3)])
    reviewed(project, verdict="correct", corrected_output="Fixed answer.")
    for format in ("sft_chat", "triplets_csv", "review_log"):
        export = export_create(
            format=format, projects=[project], filters={}, via="schemathesis", enqueue=False
        )
        if format != "review_log":  # left queued: download and manifest answer 409
            export_build(export_id=export.pk)
    _key, raw = api_key_create(project=project, name="schemathesis")
    return raw


def main() -> None:
    recreate_database(os.environ["DATABASE_URL"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitlplatform.settings")
    import django

    django.setup()
    print(seed())


if __name__ == "__main__":
    main()
