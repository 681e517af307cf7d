"""The export page in a real browser: the progress bar follows the build, then downloads."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from datasets.models import DatasetExport
from datasets.services import export_build, export_create
from tests.datasets.factories import reviewed

# Playwright's sync API runs an event loop in this thread; the ORM calls of the
# test itself stay plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("HITL_CHROMIUM", "/usr/bin/chromium"),
            args=CHROMIUM_ARGS,
            headless=True,
        )
        context = browser.new_context(accept_downloads=True)
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        browser.close()


def test_progress_bar_follows_the_build_and_offers_downloads(
    page, live_server, admin_user, project
):
    for n in range(3):
        reviewed(project, verdict="correct", corrected_output=f"Corrected <b>{n}</b>.")
    export = export_create(
        format="sft_chat", projects=[project], filters={}, name="<i>nightly</i>", enqueue=False
    )
    change_url = f"/admin/datasets/datasetexport/{export.pk}/change/"

    page.goto(f"{live_server.url}/admin/login/?next={change_url}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pass-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"**{change_url}")
    text = page.locator(".export-progress-text")
    expect(text).to_have_text("queued")
    expect(page.locator("h2", has_text="<i>nightly</i>")).to_have_count(1)  # escaped, not HTML

    DatasetExport.objects.filter(pk=export.pk).update(
        status="running", progress=0.5, rows_done=2, rows_total=4
    )
    expect(text).to_have_text("50% (2 of 4 rows)")
    expect(page.locator(".export-progress progress")).to_have_attribute("value", "0.5")

    export_build(export_id=export.pk)
    expect(text).to_have_text("built: 3 rows")  # the page reloaded with the result
    link = page.get_by_role("link", name=export.file_name("train"))
    with page.expect_download() as download_info:
        link.click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert content.count("\n") == 3
    assert "Corrected <b>0</b>." in content
