"""The dashboard's "Many outputs" card in headless Chromium against the real API: a job from JSON
outputs, each output shown with its files — the HLS ladder playing natively, thumbnails, the
storyboard sprite and the waveform as images that load, with API keys on (files through signed URLs)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests import media
from tests.apptools import ApiServer, make_settings
from tests.browser import ApiServerLog, chromium_page, screenshot

KEY = "dashboard-key-1"
OUTPUTS = [
    {
        "name": "stream",
        "type": "hls",
        "segment_seconds": 1,
        "video": {"preset": "ultrafast"},
        "renditions": [{"height": 180, "bitrate": "300k"}, {"height": 90, "bitrate": "120k"}],
    },
    {"name": "poster", "type": "thumbnails", "count": 2, "width": 160},
    {"name": "scrub", "type": "storyboard", "interval_seconds": 1, "columns": 3, "width": 64},
    {"name": "wave", "type": "waveform", "width": 300, "height": 60},
    {
        "name": "measured",
        "type": "video",
        "audio": False,
        "video": {"preset": "ultrafast", "height": 90},
        "quality": ["vmaf", "psnr"],
    },
]


@pytest.mark.browser
async def test_many_outputs_card(tmp_path):
    from playwright.async_api import expect

    settings = make_settings(tmp_path, API_KEYS=f"me:{KEY}")
    shutil.copyfile(media.make_clip(tmp_path, "src.mp4", width=320, height=180, seconds=2), tmp_path / "media/talk.mp4")
    with ApiServer(settings, tmp_path, api_workers=1) as server, ApiServerLog(server):
        async with chromium_page(tmp_path / "downloads") as page:
            await page.goto(f"{server.url}/ui/")
            await page.evaluate(f"localStorage.setItem('mediaflow.apiKey', '{KEY}')")
            await page.reload()
            card = page.get_by_test_id("outputs-card")
            await expect(card.get_by_test_id("outputs-template").locator("option")).to_have_count(
                8
            )  # custom + 7 built-ins
            await card.get_by_test_id("outputs-source").fill("talk.mp4")
            await card.get_by_test_id("outputs-spec").fill(json.dumps(OUTPUTS))
            await card.get_by_test_id("outputs-submit").click()
            status = card.get_by_test_id("outputs-job-status")
            await expect(status).to_contain_text("completed", timeout=60_000)
            for output in OUTPUTS:
                await expect(card.get_by_test_id(f"output-{output['name']}")).to_have_attribute(
                    "data-status", "completed"
                )
            images = card.locator("img.output-image")
            await expect(images).to_have_count(4)  # 2 thumbnails, 1 sprite, 1 waveform
            await page.wait_for_function(
                "() => [...document.querySelectorAll('img.output-image')].every(i => i.complete && i.naturalWidth > 0)"
            )
            video = card.get_by_test_id("output-stream").locator("video")
            await expect(video).to_have_count(1)  # Chromium plays HLS natively
            await video.evaluate("v => { v.muted = true; return v.play(); }")
            await page.wait_for_function(
                "() => document.querySelector('[data-testid=output-stream] video').currentTime > 0.3"
            )
            quality = card.get_by_test_id("quality-measured")
            await expect(quality.locator("tr[data-metric]")).to_have_count(2)  # VMAF and PSNR rows
            await expect(quality.locator("tr[data-metric=vmaf] td").first).to_have_text(re.compile(r"^\d+\.\d\d$"))
            points = await quality.get_by_test_id("vmaf-plot").locator("polyline").get_attribute("points")
            assert len(points.split()) == 60  # one point per frame of the 2 s clip
            await screenshot(page, "outputs-card")

            # a refused spec shows the API's own words
            await card.get_by_test_id("outputs-spec").fill(
                '[{"name": "a", "type": "video", "format": "webm", "video": {"codec": "h264"}}]'
            )
            await card.get_by_test_id("outputs-submit").click()
            await expect(card.get_by_test_id("outputs-error")).to_contain_text("a webm file cannot hold h264 video")
