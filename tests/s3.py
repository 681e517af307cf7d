"""S3 storage for tests: the session's SeaweedFS server (tests/conftest.py)."""

from hitlplatform import settings as platform_settings

BUCKET = "hitl-exports-test"


def s3_storage(prefix: str) -> dict:
    """A STORAGES entry for the S3 server the environment names (``SeaweedFS.env``)."""
    return platform_settings._file_storage(
        kind_setting="HITL_EXPORT_STORAGE", kind="s3", local={}, prefix=prefix
    )
