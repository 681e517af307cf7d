import pytest


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    """Each test writes exports to its own directory and runs jobs inline."""
    settings.HITL_EXPORT_DIR = tmp_path / "exports"
    settings.RQ_INLINE = True
    return settings.HITL_EXPORT_DIR
