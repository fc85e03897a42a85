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
            ids[name] = httpx.post(f"{api.url}/process", json={"source": source, "method_name": "compress"}).json()[
                "job_id"
            ]
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
        await expect(page.get_by_test_id("method-select").locator("option")).to_have_count(
            8
        )  # 5 methods, 2 templates, custom
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


async def test_phone_header_fits_and_the_job_comes_into_view_after_submit(server, tmp_path):
    from playwright.async_api import expect

    async with chromium_page(tmp_path, viewport=MOBILE) as page:
        await page.goto(f"{server.url}/ui/")
        await expect(page.get_by_test_id("method-select").locator("option")).to_have_count(
            8
        )  # 5 methods, 2 templates, custom
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= MOBILE["width"]
        docs = await page.get_by_role("link", name="API docs").bounding_box()
        assert docs["x"] >= 0 and docs["x"] + docs["width"] <= MOBILE["width"], docs

        await page.get_by_test_id("mode-source").click()
        await page.get_by_test_id("source-input").fill("clip.mp4")
        await page.get_by_test_id("method-select").select_option("extract_audio")
        await page.get_by_test_id("submit-button").click()
        await expect(page.get_by_test_id("detail-status")).to_have_text("Completed", timeout=30_000)
        # the job panel is ~1,000 px below the button on a phone: it is brought into view
        await page.wait_for_function(
            "() => { const r = document.getElementById('detail').getBoundingClientRect();"
            " return r.top >= -1 && r.top < innerHeight / 2; }",
            timeout=5_000,
        )
        assert await page.evaluate("() => document.activeElement.id") == "detail"
        await screenshot(page, "a11y-mobile-light-after-submit")


async def test_keyboard_focus_rings_and_what_screen_readers_get(server, tmp_path):
    from playwright.async_api import expect

    async with chromium_page(tmp_path) as page:
        await page.goto(f"{server.url}/ui/#job={server.jobs['completed']}")
        await expect(page.get_by_test_id("detail-status")).to_have_text("Completed")

        # Tab to the active source tab: an outline of 2 px with 3:1 contrast or more, not hidden by its shadow
        await page.get_by_test_id("api-key-button").focus()
        for _ in range(8):
            await page.keyboard.press("Tab")
            if await page.evaluate("() => document.activeElement.dataset.testid") == "mode-upload":
                break
        ring = await page.evaluate(
            """() => { const s = getComputedStyle(document.activeElement);
                       return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor,
                               active: document.activeElement.classList.contains('active')}; }"""
        )
        assert ring["active"] and ring["style"] == "solid" and ring["width"] >= 2, ring
        card = await page.evaluate("() => getComputedStyle(document.querySelector('.card')).backgroundColor")
        assert contrast(ring["color"], card) >= 3, (ring, card)
        # the arrow keys move between the tabs (one tab stop for the list)
        await page.keyboard.press("ArrowRight")
        assert await page.evaluate("() => document.activeElement.dataset.testid") == "mode-source"
        await expect(page.get_by_test_id("source-input")).to_be_visible()

        # the card is no live region (it changes several times a second); one status line is
        assert await page.get_by_test_id("job-detail").get_attribute("aria-live") is None
        assert await page.locator("[aria-live]").evaluate_all("nodes => nodes.map(n => n.id)") == ["detail-announce"]
        await expect(page.get_by_test_id("detail-announce")).to_have_text("clip.mp4: Completed")
        bar = page.get_by_test_id("detail-progressbar")
        assert await bar.get_attribute("role") == "progressbar"
        assert await bar.get_attribute("aria-valuenow") == "100"

        # changing #job= on the open page switches jobs
        await page.evaluate(f"() => {{ location.hash = 'job={server.jobs['failed']}'; }}")
        await expect(page.get_by_test_id("detail-status")).to_have_text("Failed")
        await expect(page.get_by_test_id("detail-announce")).to_have_text("notes.mp4: Failed")


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours (alpha ignored)."""

    def luminance(css: str) -> float:
        channels = [int(float(part)) / 255 for part in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
