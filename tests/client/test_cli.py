"""The ``hitl`` command, run as a subprocess against the live server."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from reviews.models import ReviewItem
from tests import factories
from tests.client.conftest import ROOT, BackgroundWorker
from tests.datasets.factories import reviewed
from tests.monitoring.helpers import decide

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hitl_cli(proxy, key, tmp_path):
    def run(*args, api_key=key, url=proxy.url, timeout=180):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "clients" / "python" / "src"),
            "HITL_URL": url,
            "HITL_API_KEY": api_key,
        }
        return subprocess.run(
            [sys.executable, "-m", "hitl.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_submit_a_jsonl_file_with_progress_and_idempotent_resubmit(hitl_cli, tmp_path, proxy):
    rows = [factories.item_payload(external_id=f"cli-{n}") for n in range(1200)]
    items = write_jsonl(tmp_path / "items.jsonl", rows)
    done = hitl_cli("submit", str(items))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"created": 1200, "existing": 0, "items": 1200}
    assert "100% 1200/1200" in done.stderr
    assert proxy.forwarded == [("POST", "/api/v1/items/")] * 2
    again = hitl_cli("-q", "submit", str(items))
    assert again.returncode == 0 and json.loads(again.stdout)["existing"] == 1200
    assert again.stderr == ""
    assert ReviewItem.objects.count() == 1200


def test_submit_refusals_have_their_own_exit_codes(hitl_cli, tmp_path):
    good = factories.item_payload(external_id="cli-ok")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(good) + "\n{not json\n")
    result = hitl_cli("submit", str(broken))
    assert result.returncode == 2 and "broken.jsonl:2: not JSON" in result.stderr
    assert not ReviewItem.objects.exists()  # nothing sent

    invalid = write_jsonl(
        tmp_path / "invalid.jsonl", [good, {**good, "external_id": "x2", "confidence": 7}]
    )
    result = hitl_cli("submit", str(invalid))
    assert result.returncode == 1 and "items.1.confidence" in result.stderr
    assert not ReviewItem.objects.exists()

    assert hitl_cli("submit", str(write_jsonl(tmp_path / "a.jsonl", [good]))).returncode == 0
    changed = write_jsonl(tmp_path / "b.jsonl", [{**good, "output": "Changed."}])
    result = hitl_cli("submit", str(changed))
    assert result.returncode == 1 and "cli-ok" in result.stderr

    result = hitl_cli("submit", str(changed), api_key="wrong-key")
    assert result.returncode == 3 and "Invalid or revoked API key" in result.stderr
    result = hitl_cli("submit", str(changed), url="http://127.0.0.1:9")
    assert result.returncode == 5
    result = hitl_cli("submit", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2 and "missing.jsonl" in result.stderr


def test_wait_prints_the_decision(hitl_cli, gate, django_user_model):
    reviewer = django_user_model.objects.create_user("rita", password="x", is_staff=True)
    (item,) = factories.ingest(gate, factories.item_payload(external_id="cli-wait"))
    result = hitl_cli("wait", str(item.pk), "--timeout", "0.5")
    assert result.returncode == 4 and "still pending_review" in result.stderr
    decide([item], reviewer=reviewer, verdict="reject", reason_code="hallucination")
    result = hitl_cli("wait", str(item.pk))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["status"] == "rejected" and body["final_output"] is None
    assert body["decision"]["verdict"] == "reject"
    assert body["decision"]["reason_code"] == "hallucination"


def test_export_builds_and_downloads_with_a_checked_sha256(hitl_cli, gate, exports_queue, tmp_path):
    for n in range(12):
        reviewed(gate, verdict="correct", corrected_output=f"Better answer {n}.")
    with BackgroundWorker(exports_queue):
        result = hitl_cli("export", "sft_chat", "--project", "clinical", "-o", "out.jsonl")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    data = (tmp_path / "out.jsonl").read_bytes()
    assert hashlib.sha256(data).hexdigest() == body["sha256"]
    assert body["rows"] == 12 == len(data.splitlines())
    assert "build" in result.stderr and "download" in result.stderr
    result = hitl_cli("export", "no_such_format", "-o", "x.jsonl")
    assert result.returncode == 1 and "format" in result.stderr


def test_the_client_imports_without_django(tmp_path):
    check = (
        "import sys, hitl, hitl.cli; "
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')]; "
        "assert not loaded, loaded; print(hitl.__version__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "clients" / "python" / "src")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
