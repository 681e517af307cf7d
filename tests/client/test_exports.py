"""Exports built by a real RQ worker, followed and downloaded through the client."""

import asyncio
import hashlib
import uuid

import hitl
import pytest

from tests.client.conftest import BackgroundWorker
from tests.datasets.factories import reviewed
from tests.s3 import BUCKET, s3_storage

pytestmark = pytest.mark.django_db(transaction=True)


def test_export_is_built_downloaded_and_checked_against_the_manifest(
    client, gate, exports_queue, settings, tmp_path
):
    for n in range(40):
        reviewed(gate, verdict="correct", corrected_output=f"Corrected answer {n}.")
    export = client.exports.create("sft_chat", name="client-test", validation_ratio=0.25, seed=7)
    assert export.status == "queued" and export.projects == ["clinical"]
    seen = []
    with BackgroundWorker(exports_queue):
        built = client.exports.wait(export, timeout=120, progress=seen.append)
    assert built.is_built and seen[-1].is_built
    manifest = client.exports.manifest(built)
    for split in ("train", "validation"):
        progress = []
        path = client.exports.download(
            built,
            tmp_path / f"{split}.jsonl",
            split=split,
            progress=lambda done, _total, seen=progress: seen.append(done),
        )
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        assert digest == built.files[split].sha256 == manifest["files"][split]["sha256"]
        assert len(data.splitlines()) == manifest["files"][split]["rows"] > 0
        assert progress[-1] == len(data) == built.files[split].bytes
    assert sum(f.rows for f in built.files.values()) == 40

    # The stored file changed under the export: the download is refused, nothing is left.
    stored = settings.HITL_EXPORT_DIR / built.files["train"].name
    stored.write_bytes(stored.read_bytes().replace(b"Corrected", b"Tampered!"))
    target = tmp_path / "tampered.jsonl"
    with pytest.raises(hitl.ChecksumMismatch) as mismatch:
        client.exports.download(built, target)
    assert mismatch.value.expected == built.files["train"].sha256
    assert not target.exists() and not list(tmp_path.glob("*.part"))


def test_async_export_and_failures(proxy, key, gate, exports_queue, tmp_path):
    reviewed(gate, verdict="approve")

    async def scenario():
        async with hitl.AsyncClient(base_url=proxy.url, api_key=key) as client:
            with pytest.raises(hitl.ValidationError) as invalid:
                await client.exports.create("no_such_format")
            assert "format" in invalid.value.errors
            export = await client.exports.create("review_log")
            with pytest.raises(hitl.WaitTimeout):
                await client.exports.wait(export, timeout=0.2)
            with BackgroundWorker(exports_queue):
                built = await client.exports.wait(export, timeout=120)
            path = await client.exports.download(built, tmp_path / "log.jsonl")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == (await client.exports.manifest(built))["files"]["train"]["sha256"]
            return built

    assert asyncio.run(scenario()).is_built


def test_agreement_figures(client, gate):
    figures = client.agreement("clinical", start="2026-01-01T00:00:00Z")
    assert figures.project == "clinical" and figures.items == 0 and figures.kappa is None
    assert figures.start.year == 2026
    with pytest.raises(hitl.ValidationError) as invalid:
        client.agreement("clinical", start="2999-01-01T00:00:00Z", end="2998-01-01T00:00:00Z")
    assert "start" in invalid.value.errors
    with pytest.raises(hitl.NotFound):
        client.agreement("someone-elses-project")


def test_presigned_download_from_object_storage_is_followed_and_checked(
    client, gate, exports_queue, seaweedfs, settings, monkeypatch
):
    prefix = f"client-{uuid.uuid4().hex[:12]}"
    for name, value in seaweedfs.env(bucket=BUCKET, prefix=prefix).items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {**settings.STORAGES, "exports": s3_storage(prefix)}
    settings.HITL_S3_PRESIGNED_DOWNLOADS = True
    for n in range(5):
        reviewed(gate, verdict="correct", corrected_output=f"Corrected answer {n}.")
    export = client.exports.create("sft_chat", name="presigned", validation_ratio=0, seed=3)
    with BackgroundWorker(exports_queue):
        built = client.exports.wait(export, timeout=120)
    # The server answers 302 to the bucket; the client follows it without its API key.
    path = client.exports.download(built, settings.HITL_EXPORT_DIR.parent / "presigned.jsonl")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == built.files["train"].sha256
    assert len(path.read_bytes().splitlines()) == 5
