"""The one job view in headless Chromium against the real API: a job of many outputs (POST /jobs) shows
each output with its status and files, and what fits each file — the HLS ladder playing (natively, and
through the hls.js this server serves when the browser cannot), DASH through dash.js, thumbnails, the storyboard sprite and
the waveform as pictures that load, the storyboard as a scrubbing preview, the VMAF table and plot
when only VMAF is asked for (its CSV has CRLF line ends) — all from GET /jobs/{id}, so a reload or a
shared #job= link shows the same; with API keys on (files through signed links).
The page fits 390 px and 1280 px with a job that has tasks, and axe-core finds nothing serious.

Screenshots: test-artifacts/dashboard-job-view-*.png.
"""

from __future__ import annotations

import json
import re
import shutil

import httpx
import pytest

from tests import media
from tests.apptools import ApiServer, make_settings
from tests.browser import DESKTOP, MOBILE, ApiServerLog, axe_violations, chromium_page, screenshot

pytestmark = pytest.mark.browser

KEY = "dashboard-key-1"
OUTPUTS = [
    {
        "name": "stream",
        "type": "hls",
        "segment_seconds": 1,
        "video": {"preset": "ultrafast"},
        "renditions": [{"height": 180, "bitrate": "300k"}, {"height": 90, "bitrate": "120k"}],
    },
    {
        "name": "dash",
        "type": "dash",
        "segment_seconds": 1,
        "video": {"preset": "ultrafast"},
        "renditions": [{"height": 90, "bitrate": "120k"}],
    },
    {"name": "poster", "type": "thumbnails", "count": 2, "width": 160},
    {"name": "scrub", "type": "storyboard", "interval_seconds": 1, "columns": 3, "width": 64},
    {"name": "wave", "type": "waveform", "width": 300, "height": 60},
    {
        "name": "measured",
        "type": "video",
        "audio": False,
        "video": {"preset": "ultrafast", "height": 90},
        "quality": ["vmaf"],
    },
]
# Firefox's answer: no native HLS, so the page must load hls.js from this server.
NO_NATIVE_HLS = """(() => {
    const original = HTMLMediaElement.prototype.canPlayType;
    HTMLMediaElement.prototype.canPlayType = function (type) {
        return /mpegurl/i.test(type) ? '' : original.call(this, type);
    };
})();"""


# The page's and the view's width, and the innermost elements that reach past the view (to name the culprit).
WIDTHS = """() => ({
    page: document.documentElement.scrollWidth, view: window.innerWidth,
    detail: document.querySelector('[data-testid=job-detail]').getBoundingClientRect().right,
    past: [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth && !e.closest('.tasks-scroll'))
        .filter((e) => ![...e.children].some((c) => c.getBoundingClientRect().right > window.innerWidth))
        .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().width)}px`),
})"""


def submit(server: ApiServer, outputs: list[dict], headers: dict | None = None) -> str:
    created = httpx.post(f"{server.url}/jobs", json={"source": "talk.mp4", "outputs": outputs}, headers=headers)
    assert created.status_code == 201, created.text
    return created.json()["job_id"]


async def plays(page, output: str) -> None:
    """The output's player gets data and its time moves on."""
    selector = f"[data-testid=output-{output}] video"
    # play() only once the source is attached and has data: hls.js and dash.js attach theirs after loading
    await page.wait_for_function(f"() => document.querySelector('{selector}')?.readyState >= 2", timeout=20_000)
    await page.locator(selector).evaluate("v => { v.muted = true; return v.play(); }")
    await page.wait_for_function(f"() => document.querySelector('{selector}').currentTime > 0.3", timeout=20_000)


async def test_a_job_of_many_outputs_in_the_one_job_view(tmp_path):
    from playwright.async_api import expect

    settings = make_settings(tmp_path, API_KEYS=f"me:{KEY}")
    shutil.copyfile(media.make_clip(tmp_path, "src.mp4", width=320, height=180, seconds=2), tmp_path / "media/talk.mp4")
    with ApiServer(settings, tmp_path, api_workers=1) as server, ApiServerLog(server):
        job_id = submit(server, OUTPUTS, {"X-API-Key": KEY})
        async with chromium_page(tmp_path / "downloads", offline=True) as page:
            await page.goto(f"{server.url}/ui/")
            await page.evaluate(f"localStorage.setItem('mediaflow.apiKey', '{KEY}')")
            await page.goto(f"{server.url}/ui/#job={job_id}")
            await page.reload()
            await expect(page.get_by_test_id("detail-status")).to_have_text("Completed", timeout=90_000)
            box = page.get_by_test_id("job-outputs")
            for output in OUTPUTS:
                item = box.get_by_test_id(f"output-{output['name']}")
                await expect(item).to_have_attribute("data-status", "completed")
                await expect(item.get_by_test_id("output-status")).to_have_text("Completed")
            await expect(page.get_by_test_id("outputs-summary")).to_have_text("6 of 6 made")
            # many files: a link per file, no single Download button, no seed-only rows
            await expect(page.get_by_test_id("download-button")).to_be_hidden()
            await expect(page.locator("dd[data-field=method_name]")).to_have_count(0)
            await expect(box.get_by_test_id("output-poster").locator(".output-files a")).to_have_count(2)
            images = box.locator("img.output-image")
            await expect(images).to_have_count(4)  # 2 thumbnails, 1 sprite, 1 waveform
            await page.wait_for_function(
                "() => [...document.querySelectorAll('img.output-image')].every(i => i.complete && i.naturalWidth > 0)"
            )
            await expect(box.get_by_test_id("hls-player")).to_have_attribute("data-engine", "native")
            await plays(page, "stream")
            await expect(box.get_by_test_id("dash-player")).to_have_attribute("data-engine", "dash.js")
            await plays(page, "dash")  # dash.js, served by this server
            quality = box.get_by_test_id("quality-measured")
            await expect(quality.locator("tr[data-metric]")).to_have_count(1)  # VMAF only: the CRLF case
            await expect(quality.locator("tr[data-metric=vmaf] td").first).to_have_text(re.compile(r"^\d+\.\d\d$"))
            points = await quality.get_by_test_id("vmaf-plot").locator("polyline").get_attribute("points")
            assert len(points.split()) == 60  # one point per frame of the 2 s clip
            # the storyboard under the first player: hovering shows a tile of the sprite, a click seeks
            strip = box.get_by_test_id("scrub-strip")
            await expect(strip).to_have_count(1)
            await strip.hover(position={"x": 5, "y": 5})
            await expect(strip.locator(".scrub-tile")).to_be_visible()
            await expect(strip.locator(".scrub-tile")).to_have_attribute("data-file", re.compile(r"^sprite_\d+\.jpg$"))
            await screenshot(page, "job-view")
            assert await axe_violations(page) == []

            # a browser without native HLS gets hls.js from this server (the page is offline: no CDN)
            await page.add_init_script(NO_NATIVE_HLS)
            await page.reload()
            await expect(page.get_by_test_id("detail-status")).to_have_text("Completed")
            await expect(box.get_by_test_id("hls-player")).to_have_attribute("data-engine", "hls.js")
            await plays(page, "stream")


async def test_the_page_fits_a_phone_and_a_desktop_with_a_job_that_has_tasks(tmp_path):
    """No sideways scrolling at 390 px (the tasks table used to make the detail 555 px wide)."""
    from playwright.async_api import expect

    settings = make_settings(tmp_path, CHUNK_SECONDS=1, LEASE_SECONDS=3)
    media.detailed_clip(tmp_path / "media", "talk.mp4", width=320, height=180, seconds=3, gop_seconds=1)
    parallel = {"name": "main", "type": "video", "parallel": True, "video": {"preset": "ultrafast", "crf": 30}}
    with ApiServer(settings, tmp_path, api_workers=2) as server, ApiServerLog(server):
        job_id = submit(server, [parallel, {"name": "poster", "type": "thumbnails", "count": 1, "width": 160}])
        for size, viewport, scheme in (
            ("mobile", MOBILE, "light"),
            ("desktop", DESKTOP, "light"),
            ("mobile", MOBILE, "dark"),
        ):
            async with chromium_page(
                tmp_path / "downloads", viewport=viewport, color_scheme=scheme, offline=True
            ) as page:
                await page.goto(f"{server.url}/ui/#job={job_id}")
                await expect(page.get_by_test_id("detail-status")).to_have_text("Completed", timeout=90_000)
                await expect(page.get_by_test_id("job-tasks")).to_be_visible()
                await expect(page.get_by_test_id("output-main")).to_have_attribute("data-status", "completed")
                await page.wait_for_function("() => document.querySelector('img.output-image')?.naturalWidth > 0")
                widths = await page.evaluate(WIDTHS)
                assert widths["page"] <= widths["view"], f"{size}: the page scrolls sideways: {widths}"
                assert widths["detail"] <= widths["view"], f"{size}: the job panel is cut off: {widths}"
                # the New job form's custom outputs builder fits too
                await page.get_by_test_id("method-select").select_option("custom")
                await expect(page.get_by_test_id("builder-output")).to_have_count(2)
                assert await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
                await screenshot(page, f"job-view-{size}-{scheme}")
                assert await axe_violations(page) == [], (size, scheme)


async def test_the_new_job_form_makes_template_and_custom_jobs(tmp_path):
    """One form: a template described in plain words, custom outputs from the builder with the JSON kept
    in sync both ways, and a typo answered in the user's words."""
    from playwright.async_api import expect

    settings = make_settings(tmp_path)
    shutil.copyfile(media.make_clip(tmp_path, "src.mp4", width=320, height=180, seconds=1), tmp_path / "media/talk.mp4")
    with ApiServer(settings, tmp_path, api_workers=1) as server, ApiServerLog(server):
        async with chromium_page(tmp_path / "downloads", offline=True) as page:
            await page.goto(f"{server.url}/ui/")
            await page.get_by_test_id("mode-source").click()
            await page.get_by_test_id("source-input").fill("talk.mp4")
            what = page.get_by_test_id("method-select")
            await what.select_option("template:web")
            await expect(page.get_by_test_id("method-description")).to_contain_text(
                "Makes web (a video) and poster (thumbnails)."
            )
            await expect(page.get_by_test_id("format-select")).to_be_hidden()
            await page.get_by_test_id("submit-button").click()
            await expect(page.get_by_test_id("detail-name")).to_have_text("talk.mp4 → template web")
            await expect(page.get_by_test_id("detail-status")).to_have_text("Completed", timeout=60_000)
            await expect(page.get_by_test_id("output-web")).to_have_attribute("data-status", "completed")
            await expect(page.locator("dd[data-field=template]")).to_have_text("web")

            # custom outputs: the builder writes the JSON ...
            await what.select_option("custom")
            json_box = page.get_by_test_id("outputs-json")
            await page.get_by_test_id("builder-1-type").select_option("waveform")
            await page.get_by_test_id("builder-add").click()
            outputs = json.loads(await json_box.input_value())
            assert [o["type"] for o in outputs] == ["video", "waveform", "video"], outputs
            assert outputs[1] == {"name": "poster", "type": "waveform"}  # the thumbnails' fields went with the type
            # ... and the JSON redraws the builder
            await page.locator("details.builder-json summary").click()
            await json_box.fill(json.dumps([{"name": "a", "type": "video", "video": {"heigth": 90}}]))
            await expect(page.get_by_test_id("builder-output")).to_have_count(1)
            await expect(page.get_by_test_id("builder-0-name")).to_have_value("a")
            await page.get_by_test_id("submit-button").click()
            await expect(page.get_by_test_id("submit-error")).to_have_text(
                re.compile(r'^outputs\[0\]\.video\.heigth: unknown field "heigth" \(did you mean "height"\?\)')
            )
            await json_box.fill("[{")
            await expect(page.get_by_test_id("outputs-json-note")).to_contain_text("Not valid JSON yet")
            await expect(page.get_by_test_id("builder-output")).to_have_count(1)  # the last valid outputs stay
            await screenshot(page, "new-job-custom")
            assert await axe_violations(page) == []

            # one output of one video file: the panel's own player and Download, as for a seed job
            await json_box.fill(json.dumps([{"name": "one", "type": "video", "video": {"preset": "ultrafast"}}]))
            await page.get_by_test_id("submit-button").click()
            await expect(page.get_by_test_id("detail-name")).to_have_text("talk.mp4 → 1 output")
            await expect(page.get_by_test_id("detail-status")).to_have_text("Completed", timeout=60_000)
            await expect(page.get_by_test_id("download-button")).to_be_visible()
            player = page.get_by_test_id("player-media")
            await page.wait_for_function(
                "() => document.querySelector('[data-testid=player-media]')?.readyState >= 1", timeout=20_000
            )
            assert await player.evaluate("v => v.tagName") == "VIDEO"
            await expect(page.get_by_test_id("output-one").locator("video")).to_have_count(0)  # no second player
            await expect(page.get_by_test_id("output-one").locator(".output-files a")).to_have_text("one/one.mp4")


async def test_a_file_link_outlives_its_signed_token(tmp_path):
    """A page left open past DOWNLOAD_URL_EXPIRES_S: clicking a file link still downloads the file (the
    link is renewed first), where the old signed link would answer 403."""
    from playwright.async_api import expect

    settings = make_settings(tmp_path, API_KEYS=f"me:{KEY}", DOWNLOAD_URL_EXPIRES_S=10)
    shutil.copyfile(media.make_clip(tmp_path, "src.mp4", width=160, height=90, seconds=1), tmp_path / "media/talk.mp4")
    with ApiServer(settings, tmp_path, api_workers=1) as server, ApiServerLog(server):
        job_id = submit(server, [{"name": "poster", "type": "thumbnails", "count": 1}], {"X-API-Key": KEY})
        async with chromium_page(tmp_path / "downloads", offline=True) as page:
            await page.goto(f"{server.url}/ui/")
            await page.evaluate(f"localStorage.setItem('mediaflow.apiKey', '{KEY}')")
            await page.goto(f"{server.url}/ui/#job={job_id}")
            await page.reload()
            link = page.get_by_test_id("output-poster").locator(".output-files a")
            await expect(link).to_have_text("poster/thumbnail_001.jpg", timeout=60_000)
            old = await link.get_attribute("href")
            await page.wait_for_timeout(11_000)  # the token in the link has expired
            assert httpx.get(old).status_code == 403
            async with page.expect_download() as download:
                await link.click()
            saved = await (await download.value).path()
            assert saved.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG, not an error page
            assert await link.get_attribute("href") != old
