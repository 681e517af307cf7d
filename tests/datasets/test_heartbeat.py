"""A running build's heartbeat, and what a build does once its export is no longer its own.

Committed transactions (``transaction=True``): the heartbeat and the sweep's
verdict travel between connections, as they do between a worker and the sweep.
"""

import time

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from datasets.formats import sft_chat
from datasets.models import DatasetExport, DatasetExportItem, ExportStatus
from datasets.services import export_build, export_create, exports_sweep
from datasets.services.build import ExportBuildError
from tests.datasets.factories import reviewed

pytestmark = pytest.mark.django_db(transaction=True)


def _heartbeat(export_id: int):
    """The export's heartbeat as another process sees it (own connection, no snapshot)."""
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT heartbeat_at FROM datasets_datasetexport WHERE id = %s", [export_id]
            )
            return cursor.fetchone()[0]
    finally:
        other.close()


def test_a_build_beats_while_one_chunk_takes_long(project, settings, monkeypatch):
    settings.HITL_EXPORT_HEARTBEAT_SECONDS = 0.2
    for _ in range(3):
        reviewed(project)
    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    beats = []
    real_line = sft_chat.sft_line

    def slow_line(**kwargs):
        if not beats:  # the first row: a long stretch with no progress to report
            for _ in range(4):
                beats.append(_heartbeat(export.pk))
                time.sleep(0.4)
        return real_line(**kwargs)

    monkeypatch.setattr(sft_chat, "sft_line", slow_line)
    monkeypatch.setattr(sft_chat, "plain_head", lambda messages: None)  # every line by sft_line
    built = export_build(export_id=export.pk)

    assert built.status == ExportStatus.SUCCEEDED
    assert len(set(beats)) >= 3, beats  # it went on beating in the middle of the chunk
    assert beats == sorted(beats)


@pytest.mark.parametrize("taken_by", ["sweep", "newer attempt"])
def test_a_build_whose_export_was_taken_stops_without_publishing(
    taken_by, project, settings, monkeypatch, export_dir
):
    settings.HITL_EXPORT_CHUNK_SIZE = 2
    for _ in range(6):
        reviewed(project)
    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)

    def progress(done: int, total: int) -> None:
        if done != 2:
            return
        # What happens elsewhere (another connection) while this build is thought dead.
        other = connections.create_connection(DEFAULT_DB_ALIAS)
        with other.cursor() as cursor:
            if taken_by == "sweep":
                cursor.execute(
                    "UPDATE datasets_datasetexport SET status = 'failed', error = %s WHERE id = %s",
                    ["The build stopped sending …", export.pk],
                )
            else:
                cursor.execute(
                    "UPDATE datasets_datasetexport SET build_id = %s WHERE id = %s",
                    ["f" * 32, export.pk],
                )
        other.close()

    with pytest.raises(ExportBuildError, match="was taken from this build"):
        export_build(export_id=export.pk, on_progress=progress)

    export.refresh_from_db()
    if taken_by == "sweep":
        assert export.status == ExportStatus.FAILED
        assert export.error == "The build stopped sending …"  # the sweep's verdict stays
    else:
        assert export.status == ExportStatus.RUNNING  # the newer attempt is left alone
        assert export.build_id == "f" * 32
    assert list(export_dir.iterdir()) == []
    assert not DatasetExportItem.objects.filter(export=export).exists()


def test_the_sweep_leaves_a_beating_build_alone_and_fails_a_silent_one(project, settings):
    settings.HITL_EXPORT_HEARTBEAT_TIMEOUT = 60
    beating, silent = (
        export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
        for _ in range(2)
    )
    DatasetExport.objects.filter(pk__in=[beating.pk, silent.pk]).update(
        status=ExportStatus.RUNNING, build_id="a" * 32
    )
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "UPDATE datasets_datasetexport SET heartbeat_at = now() - interval '59 seconds', "
            "started_at = now() - interval '3 hours' WHERE id = %s",
            [beating.pk],
        )
        cursor.execute(
            "UPDATE datasets_datasetexport SET heartbeat_at = now() - interval '61 seconds' "
            "WHERE id = %s",
            [silent.pk],
        )

    assert exports_sweep().failed == 1

    beating.refresh_from_db(), silent.refresh_from_db()
    assert beating.status == ExportStatus.RUNNING
    assert silent.status == ExportStatus.FAILED
    assert silent.error.startswith("The build stopped sending heartbeats for over 60 s")
