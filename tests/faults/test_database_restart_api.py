"""PostgreSQL restarted during a stream of batch ingests over HTTP (gunicorn).

The web process runs on a private cluster; a client thread posts batches and
retries on 503 as told by ``Retry-After``. While the database is down the API
answers 503 with a JSON body, never Django's HTML 500; afterwards every item
is stored exactly once (ingest is idempotent on external_id).
"""

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import psycopg
import pytest

from tests.faults.conftest import base_env, gunicorn, post_json, wait_for

BATCHES = 40
BATCH_SIZE = 25
SETUP = """
from reviews.models import Project
from reviews.services.projects import api_key_create
project = Project.objects.create(name="Restarted", slug="restarted", mode="gate")
print(api_key_create(project=project, name="faults")[1])
"""


@pytest.fixture(scope="module")
def migrated(private_postgres):
    env = base_env(DATABASE_URL=private_postgres.url(), REDIS_URL="")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env, check=True
    )
    key = (
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SETUP],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return private_postgres, key


def get(url: str, cookie: str) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_database_restart_under_batch_ingest_answers_503_json_and_loses_nothing(migrated, spawn):
    server, key = migrated
    env = base_env(DATABASE_URL=server.url(), REDIS_URL="", HITL_RETRY_AFTER_SECONDS="1")
    web = gunicorn(spawn, env)
    url = web.url + "/api/v1/items/"
    statuses: Counter = Counter()
    unavailable: list[tuple[dict, dict]] = []
    other_errors: list = []
    first_ok_after_outage: list[float] = []
    created = existing = 0
    done = threading.Event()
    outage = {"down": None, "up": None}

    def client() -> None:
        nonlocal created, existing
        for b in range(BATCHES):
            batch = [
                {
                    "external_id": f"pg-{b:03d}-{i:03d}",
                    "prompt": "What is the maximum daily dose?",
                    "output": "4 g per day.",
                    "model_name": "acme-med",
                    "model_version": "2026-11-01",
                    "confidence": 0.9,
                }
                for i in range(BATCH_SIZE)
            ]
            while True:
                try:
                    status, headers, body = post_json(url, {"items": batch}, key, timeout=30)
                except OSError as exc:  # the server itself never goes away here
                    other_errors.append(repr(exc))
                    time.sleep(0.5)
                    continue
                statuses[status] += 1
                if status == 503:
                    unavailable.append((headers, body))
                    time.sleep(float(headers.get("Retry-After", "1")))
                    continue
                if status >= 300:
                    other_errors.append((status, body))
                    break
                if outage["up"] is not None and not first_ok_after_outage:
                    first_ok_after_outage.append(time.monotonic())
                created += body["created"]
                existing += body["existing"]
                break
            time.sleep(0.05)
        done.set()

    thread = threading.Thread(target=client, daemon=True)
    thread.start()

    def under_way() -> bool:
        assert not other_errors, other_errors[:3]
        return created >= 8 * BATCH_SIZE

    wait_for(under_way, timeout=60, what="ingest under way")
    outage["down"] = time.monotonic()
    server.stop()
    # With a session cookie the middleware reads the database before any view runs.
    admin = get(web.url + "/admin/", cookie="sessionid=" + "a" * 32)
    api = get(web.url + "/api/v1/items/", cookie="sessionid=" + "a" * 32)
    time.sleep(2)
    server.start()
    outage["up"] = time.monotonic()
    assert done.wait(timeout=120), "the client did not finish"
    thread.join()

    assert other_errors == [], other_errors[:5]
    assert admin[0] == 503 and admin[1]["Content-Type"].startswith("text/plain"), admin
    assert "database" in admin[2] and admin[1]["Retry-After"] == "1"
    assert api[0] == 503 and json.loads(api[2])["code"] == "database_unavailable", api
    assert unavailable, "no 503 seen while the database was down"
    for headers, body in unavailable:
        assert body["code"] == "database_unavailable", body
        assert headers.get("Content-Type", "").startswith("application/json")
        assert headers["Retry-After"] == "1"
    with psycopg.connect(server.url()) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT external_id) FROM reviews_reviewitem"
        ).fetchone()
    assert total == distinct == BATCHES * BATCH_SIZE
    assert created + existing == BATCHES * BATCH_SIZE
    recovery = first_ok_after_outage[0] - outage["up"] if first_ok_after_outage else 0.0
    print(
        f"database_restart: batches={BATCHES} items={total} duplicates={total - distinct} "
        f"statuses={dict(statuses)} answered_503={len(unavailable)} created={created} "
        f"existing_on_retry={existing} down_s={outage['up'] - outage['down']:.1f} "
        f"first_2xx_after_start_s={recovery:.2f}"
    )
