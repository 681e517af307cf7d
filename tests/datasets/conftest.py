import uuid
from dataclasses import dataclass

import pytest

from tests.datasets.seaweedfs import SeaweedFS
from tests.s3 import BUCKET, s3_storage


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    """Each test writes exports to its own directory and runs jobs inline."""
    settings.HITL_EXPORT_DIR = tmp_path / "exports"
    settings.RQ_INLINE = True
    return settings.HITL_EXPORT_DIR


@dataclass
class S3Exports:
    """The test's own prefix in the session's bucket, and a client to look at it."""

    server: SeaweedFS
    bucket: str
    prefix: str

    @property
    def env(self) -> dict[str, str]:
        return self.server.env(bucket=self.bucket, prefix=self.prefix)

    def keys(self) -> list[str]:
        """Object names under the prefix (relative to it)."""
        listing = self.server.client().list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/")
        return sorted(obj["Key"][len(self.prefix) + 1 :] for obj in listing.get("Contents", []))

    def uploads(self) -> list[str]:
        """Keys of incomplete multipart uploads under the prefix."""
        listing = self.server.client().list_multipart_uploads(
            Bucket=self.bucket, Prefix=f"{self.prefix}/"
        )
        return sorted(upload["Key"] for upload in listing.get("Uploads", []))

    def read(self, name: str) -> bytes:
        answer = self.server.client().get_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}")
        return answer["Body"].read()


@pytest.fixture
def s3_exports(seaweedfs, settings, monkeypatch) -> S3Exports:
    """Exports on the SeaweedFS server, configured the way production is: from the
    environment, through the settings module's own ``_file_storage()``.
    """
    exports = S3Exports(server=seaweedfs, bucket=BUCKET, prefix=f"t-{uuid.uuid4().hex[:12]}")
    for name, value in exports.env.items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {**settings.STORAGES, "exports": s3_storage(exports.prefix)}
    return exports
