"""/healthz and /readyz: real gunicorn servers against real, missing and hung dependencies."""

import json
import socket
import threading
import time

import pytest
from django.core.files.storage import storages

from hitlplatform import health
from tests.hitlplatform.servers import closed_port, database_url_of_tests
from tests.s3 import BUCKET, s3_storage

# Never in a readiness answer: where the dependencies live, or how to log in.
SECRET_PASSWORD = "pw-never-shown"


def assert_discloses_nothing(body: bytes, *ports: int) -> None:
    text = body.decode()
    for secret in ("127.0.0.1", "localhost", "postgres", SECRET_PASSWORD, *map(str, ports)):
        assert secret not in text, f"{secret!r} in {text}"


@pytest.mark.django_db(transaction=True)
def test_readyz_is_200_when_every_dependency_answers(start_gunicorn, settings, tmp_path):
    server = start_gunicorn(
        env={
            "DATABASE_URL": database_url_of_tests(),
            "REDIS_URL": settings.REDIS_URL or "redis://127.0.0.1:6379/0",
            "HITL_EXPORT_DIR": str(tmp_path / "exports"),
        }
    )
    status, headers, body = server.get("/readyz")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "ok" and answer["failed"] == []
    assert {name: check["status"] for name, check in answer["checks"].items()} == {
        "database": "ok",
        "redis": "ok",
        "storage": "ok",
    }
    assert headers["Content-Type"] == "application/json"
    assert "no-cache" in headers["Cache-Control"]


def test_database_and_redis_down_make_readyz_503_naming_both(start_gunicorn, tmp_path):
    db_port, redis_port = closed_port(), closed_port()
    server = start_gunicorn(
        env={
            "DATABASE_URL": f"postgres://hitl:{SECRET_PASSWORD}@127.0.0.1:{db_port}/hitl",
            "REDIS_URL": f"redis://:{SECRET_PASSWORD}@127.0.0.1:{redis_port}/0",
            "HITL_EXPORT_DIR": str(tmp_path / "exports"),
        }
    )
    # Alive: the process answers without asking anything else.
    status, _headers, body = server.get("/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})

    status, _headers, body = server.get("/readyz")
    assert status == 503, body
    answer = json.loads(body)
    assert answer["status"] == "fail"
    assert answer["failed"] == ["database", "redis"]
    assert answer["checks"]["database"]["status"] == "fail"
    assert answer["checks"]["database"]["error"] == "database did not answer: OperationalError"
    assert answer["checks"]["redis"]["error"] == "redis did not answer: ConnectionError"
    assert answer["checks"]["storage"]["status"] == "ok"
    assert_discloses_nothing(body, db_port, redis_port)
    # The operator finds the details in the log.
    assert "Readiness check database failed" in server.log()


def test_readyz_names_redis_on_a_closed_port(client, db, settings):
    port = closed_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    answer = response.json()
    assert answer["failed"] == ["redis"]
    assert answer["checks"]["database"]["status"] == "ok"
    assert_discloses_nothing(response.content, port)


def test_readyz_skips_redis_when_it_is_not_configured(client, db, settings):
    settings.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database", "storage"}


def test_readyz_names_storage_when_the_export_location_is_unusable(client, db, settings, tmp_path):
    not_a_directory = tmp_path / "exports"
    not_a_directory.write_text("a file where the export directory should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(not_a_directory / "nested")},
        },
    }
    assert storages["exports"].location.endswith("nested")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["storage"]
    assert str(tmp_path) not in response.content.decode()


def test_readyz_accepts_an_export_directory_the_first_export_will_create(
    client, db, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "not" / "yet")},
        },
    }
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def hung_server():
    """A TCP server that accepts connections and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    listener.close()


def test_a_hung_dependency_does_not_hang_the_probe(start_gunicorn, hung_server, tmp_path):
    server = start_gunicorn(
        env={
            "DATABASE_URL": f"postgres://hitl@127.0.0.1:{hung_server}/hitl",
            "REDIS_URL": f"redis://127.0.0.1:{hung_server}/0",
            "HITL_EXPORT_DIR": str(tmp_path / "exports"),
            "HITL_HEALTH_TIMEOUT": "2",
        },
        workers=1,
    )
    started = time.monotonic()
    status, _headers, body = server.get("/readyz", timeout=30)
    elapsed = time.monotonic() - started
    assert status == 503, body
    assert json.loads(body)["failed"] == ["database", "redis"]
    assert elapsed < 4, f"/readyz took {elapsed:.1f} s with a 2 s timeout"
    # Liveness never waits for a dependency.
    started = time.monotonic()
    assert server.get("/healthz")[0] == 200
    assert time.monotonic() - started < 1


def test_probes_answer_a_load_balancer_host_and_plain_http(client, db, settings):
    """Probes come by IP over plain http: no DisallowedHost 400, no https redirect."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["review.example.com"]
    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_HOST="10.0.3.7:8000")
        assert response.status_code == 200, (path, response.content)
    # Every other page still validates the host and redirects to https.
    assert client.get("/admin/", HTTP_HOST="10.0.3.7:8000").status_code == 400
    redirect = client.get("/admin/", HTTP_HOST="review.example.com")
    assert redirect.status_code == 301
    assert redirect["Location"].startswith("https://review.example.com/")


def test_probes_refuse_writes(client, db):
    for path in ("/healthz", "/readyz"):
        assert client.post(path).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_readyz_reaches_object_storage(start_gunicorn, seaweedfs, settings, tmp_path):
    server = start_gunicorn(
        env={
            "DATABASE_URL": database_url_of_tests(),
            "REDIS_URL": settings.REDIS_URL or "redis://127.0.0.1:6379/0",
            "HITL_EXPORT_DIR": str(tmp_path / "scratch"),
            **seaweedfs.env(bucket=BUCKET, prefix="readyz"),
        }
    )
    status, _headers, body = server.get("/readyz")
    assert status == 200, body
    assert json.loads(body)["checks"]["storage"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_object_storage_down_makes_readyz_503_naming_storage(
    start_gunicorn, seaweedfs, settings, tmp_path
):
    s3_port = closed_port()
    env = seaweedfs.env(bucket=BUCKET, prefix="readyz")
    server = start_gunicorn(
        env={
            "DATABASE_URL": database_url_of_tests(),
            "REDIS_URL": settings.REDIS_URL or "redis://127.0.0.1:6379/0",
            "HITL_EXPORT_DIR": str(tmp_path / "scratch"),
            **env,
            "HITL_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        }
    )
    status, _headers, body = server.get("/readyz")
    assert status == 503, body
    answer = json.loads(body)
    assert answer["failed"] == ["storage"]
    assert_discloses_nothing(body, s3_port)
    assert env["HITL_S3_SECRET_ACCESS_KEY"] not in body.decode()


def test_a_hung_object_storage_is_bounded_by_the_probe_timeout(
    client, db, settings, seaweedfs, hung_server, monkeypatch
):
    for name, value in seaweedfs.env(bucket=BUCKET, prefix="readyz").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HITL_S3_ENDPOINT_URL", f"http://127.0.0.1:{hung_server}")
    settings.STORAGES = {**settings.STORAGES, "exports": s3_storage("readyz")}
    settings.HITL_HEALTH_TIMEOUT = 1
    started = time.monotonic()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["storage"]
    assert time.monotonic() - started < 3
    # The probe itself ends by its own timeout (the storage's client would wait
    # 60 s an attempt, five times), so hung probes do not pile up threads.
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)timeout|timed out"):
        health.export_storage_answers(1)
    assert time.monotonic() - started < 3
