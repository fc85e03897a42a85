"""The web dashboard (/ui) in headless Chromium against the real API (uvicorn + an in-process worker).

Debian's /usr/bin/chromium driven by Playwright (no `playwright install`). On a developer machine
without Chromium or Playwright these tests skip; in CI (CI=true) they fail instead.
Full-page screenshots of the key moments go to test-artifacts/dashboard-*.png.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path

import av
import httpx
import pytest

from mediaflow.client.terminal import human_bytes
from mediaflow.jobs.model import Method
from mediaflow.media.operations import allowed_formats, default_format
from tests import media
from tests.apptools import REPO, ApiServer, make_settings, running_app
from tests.browser import ApiServerLog, chromium_page, screenshot


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("dashboard-clips")
    return {
        "clip": media.make_clip(directory, "clip.mp4", width=320, height=240, seconds=3),
        "text": media.text_as_mp4(directory, "notes.mp4"),
        "long": media.make_clip(directory, "holiday.mp4", width=1280, height=720, seconds=8),
    }


async def choose_file(page, path: Path) -> None:
    async with page.expect_file_chooser() as chooser_info:
        await page.get_by_test_id("dropzone").click()
    await (await chooser_info.value).set_files(str(path))


async def follow_until_final(page, timeout: float = 45) -> list[tuple[str, str]]:
    """(status, progress) pairs shown in the detail panel until it shows a final status."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = (
            await page.get_by_test_id("detail-status").text_content() or "",
            await page.get_by_test_id("detail-progress").text_content() or "",
        )
        if not seen or seen[-1] != shown:
            seen.append(shown)
        if shown[0] in ("Completed", "Failed", "Canceled"):
            return seen
        await page.wait_for_timeout(50)
    raise AssertionError(f"the detail panel never showed a final status: {seen}")


async def test_methods_endpoint_and_static_dashboard(tmp_path):
    """No browser needed: GET /methods, /ui → /ui/, the files, and nothing fetched from elsewhere."""
    async with running_app(make_settings(tmp_path, API_KEYS="tester:dashboard-test-key-1")) as api:
        assert (await api.get("/methods")).status_code == 401  # on the key-checked router
        methods = (await api.get("/methods", headers={"X-API-Key": "dashboard-test-key-1"})).json()["methods"]
        assert [m["name"] for m in methods] == [m.value for m in Method]
        for m in methods:
            assert m["formats"] == list(allowed_formats(Method(m["name"])))
            assert m["default_format"] == default_format(Method(m["name"])) == m["formats"][0]
            assert m["label"] and m["description"]

        redirect = await api.get("/ui")  # the page itself is open, like /docs; its API calls need the key
        assert redirect.status_code == 307 and redirect.headers["location"] == "ui/"
        # every file in ui/ (the page loads app.js as an ES module, which imports the other modules)
        modules = sorted(path.name for path in (REPO / "mediaflow" / "ui").glob("*.js"))
        assert "app.js" in modules and len(modules) > 1, modules
        files = [("", "text/html"), ("index.html", "text/html"), ("style.css", "text/css")]
        files += [(name, "javascript") for name in modules]  # a module script needs a JavaScript MIME type
        for name, kind in files:
            response = await api.get(f"/ui/{name}")
            assert response.status_code == 200 and kind in response.headers["content-type"], name
            # offline: no script, module, style sheet, font or image from another origin
            assert not re.search(
                r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import"""
                r"""|\b(from|import)\s*\(?\s*["'](https?:)?//""",
                response.text,
            ), name
            if name.endswith(".js"):  # static imports are relative and name a file that is served
                for target in re.findall(
                    r"""^\s*(?:import|export)\b[^'"]*?\bfrom\s*["']([^"']+)["']""", response.text, re.MULTILINE
                ):
                    assert target.startswith("./") and target[2:] in modules, (name, target)
        index = (await api.get("/ui/index.html")).text
        assert re.search(r"""<script\s+type="module"\s+src="app\.js">""", index), "app.js is not loaded as a module"
        assert (await api.get("/ui/missing.js")).status_code == 404


@pytest.mark.browser
async def test_dashboard_upload_process_download_play_and_failure(tmp_path, clips):
    from playwright.async_api import expect

    started = time.monotonic()
    with ApiServer(make_settings(tmp_path), tmp_path, api_workers=1) as server, ApiServerLog(server):
        async with chromium_page(tmp_path / "downloads") as page:
            # /ui redirects to /ui/; the methods and formats come from GET /methods
            await page.goto(f"{server.url}/ui")
            assert page.url == f"{server.url}/ui/"
            methods = page.get_by_test_id("method-select")
            await expect(methods.locator("option")).to_have_count(
                8
            )  # 5 methods, the web and hls templates, custom outputs
            await expect(page.get_by_test_id("job-empty")).to_be_visible()
            await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "ok")
            await screenshot(page, "1-empty")

            # upload a clip with the file chooser, compress to mp4
            await choose_file(page, clips["clip"])
            await expect(page.get_by_test_id("chosen-file")).to_contain_text("clip.mp4")
            # the same size, in the same units, as the CLI shows for this file
            await expect(page.get_by_test_id("chosen-file")).to_contain_text(
                f"({human_bytes(clips['clip'].stat().st_size)})"
            )
            await methods.select_option("compress")
            await expect(page.get_by_test_id("method-description")).to_contain_text("H.264")
            formats = page.get_by_test_id("format-select")
            assert await formats.locator("option").evaluate_all("options => options.map(o => o.value)") == [
                "mp4",
                "mov",
                "mkv",
                "webm",
            ]
            await formats.select_option("mp4")
            await page.get_by_test_id("submit-button").click()

            # the upload bar reaches 100%, the new job is selected and followed to completion
            await expect(page.locator("#upload-pct")).to_have_text("100%")
            await expect(page.get_by_test_id("detail-id")).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
            seen = await follow_until_final(page)
            assert seen[-1] == ("Completed", "100%"), seen
            progress_values = [int(pct.rstrip("%")) for _, pct in seen if pct]  # "" while loading
            assert progress_values == sorted(progress_values), f"progress went backwards: {seen}"
            job_id = await page.get_by_test_id("detail-id").text_content()

            row = page.locator(f'[data-testid="job-row"][data-job-id="{job_id}"]')
            await expect(row.get_by_test_id("job-status")).to_have_text("Completed")
            await expect(row).to_have_class(re.compile(r"\bselected\b"))
            await expect(page.get_by_test_id("detail-phase")).to_contain_text("Done")
            await expect(page.locator('[data-field="output_format"]')).to_have_text("MP4")
            # file names, not where the server keeps them
            await expect(page.locator('[data-field="output_path"]')).to_have_text("clip_compress.mp4")
            await expect(page.locator('[data-field="log_path"]')).to_have_text("ffmpeg.log")
            await expect(page.get_by_test_id("detail-name")).to_have_text("clip.mp4 → Compress, MP4")
            await expect(page.get_by_test_id("cancel-button")).to_be_hidden()
            await expect(page.get_by_test_id("retry-button")).to_be_hidden()

            # download: the browser saves <source name>_<method>.mp4, a real 3-second H.264 video
            saved = await download_from_dashboard(page, tmp_path, "clip_compress.mp4")
            with av.open(str(saved)) as container:
                video = container.streams.video[0]
                assert video.codec_context.name == "h264"
                assert (video.codec_context.width, video.codec_context.height) == (320, 240)
                assert 2.5 < float(container.duration) / av.time_base < 3.5

            # the in-page player plays it (Debian's Chromium decodes H.264)
            player = page.get_by_test_id("player-media")
            await expect(player).to_be_visible()
            assert await player.evaluate("v => v.tagName") == "VIDEO"
            await player.evaluate("v => { v.muted = true; return v.play(); }")
            await page.wait_for_function(
                "() => { const v = document.querySelector('[data-testid=player-media]');"
                " return v && v.readyState >= 2 && v.currentTime > 0.3; }",
                timeout=15_000,
            )
            playback = await player.evaluate(
                "v => ({readyState: v.readyState, time: v.currentTime, "
                "width: v.videoWidth, error: v.error && v.error.code})"
            )
            assert playback["readyState"] >= 2 and playback["time"] > 0 and playback["width"] == 320, playback
            await player.evaluate("v => v.pause()")
            # seeking works: the download endpoint answers Range requests
            seeked = await player.evaluate(
                "v => new Promise(done => { v.addEventListener('seeked', () => done(v.currentTime), {once: true});"
                " v.currentTime = 2.5; })"
            )
            assert abs(seeked - 2.5) < 0.2 and await player.evaluate("v => v.seekable.end(0)") > 2.5
            await screenshot(page, "2-completed")

            # a text file named .mp4: the job fails and its error is shown, with Retry offered
            await choose_file(page, clips["text"])
            await page.get_by_test_id("submit-button").click()
            await expect(page.get_by_test_id("detail-id")).not_to_have_text(job_id)
            seen = await follow_until_final(page)
            assert seen[-1][0] == "Failed", seen
            error = page.get_by_test_id("detail-error-text")
            await expect(error).to_be_visible()
            await expect(error).to_contain_text("not a readable media file")
            await expect(page.get_by_test_id("retry-button")).to_be_visible()
            await expect(page.get_by_test_id("download-button")).to_be_hidden()
            await expect(page.get_by_test_id("player")).to_be_hidden()
            failed_id = await page.get_by_test_id("detail-id").text_content()
            failed_row = page.locator(f'[data-testid="job-row"][data-job-id="{failed_id}"]')
            await expect(failed_row.get_by_test_id("job-status")).to_have_text("Failed")
            await expect(failed_row.locator(".job-error")).to_contain_text("not a readable media file")
            await screenshot(page, "3-failed")

            # a longer encode (720p to VP9): live progress over Server-Sent Events, in the detail
            # panel and in the list, with the time left; then Cancel stops it
            await choose_file(page, clips["long"])
            await formats.select_option("webm")
            await page.get_by_test_id("submit-button").click()
            await expect(page.get_by_test_id("detail-id")).not_to_have_text(failed_id)
            await expect(page.get_by_test_id("detail-status")).to_have_text("Processing", timeout=20_000)
            await expect(page.get_by_test_id("detail-live")).to_have_attribute("data-mode", "stream")
            await expect(page.get_by_test_id("detail-phase")).to_contain_text("left", timeout=20_000)
            long_id = await page.get_by_test_id("detail-id").text_content()
            long_row = page.locator(f'[data-testid="job-row"][data-job-id="{long_id}"]')
            await expect(long_row.get_by_test_id("job-progress")).to_contain_text("Encoding")
            shown = int((await page.get_by_test_id("detail-progress").text_content()).rstrip("%"))
            assert 0 < shown < 100
            await screenshot(page, "4-processing")
            await page.get_by_test_id("cancel-button").click()
            await expect(page.get_by_test_id("detail-status")).to_have_text("Canceled")
            # how far it got, not the 0 % the server resets a stopped run to
            await expect(page.get_by_test_id("detail-progress")).to_have_text(re.compile(r"^[1-9][0-9]?%$"))
            await expect(page.get_by_test_id("retry-button")).to_be_visible()
            await expect(page.get_by_test_id("cancel-button")).to_be_hidden()
            await expect(long_row.get_by_test_id("job-status")).to_have_text("Canceled")

            # the status filter
            chips = page.get_by_test_id("status-filter")
            await chips.get_by_text("Failed", exact=True).click()
            await expect(page.get_by_test_id("job-row")).to_have_count(1)
            await expect(page.get_by_test_id("job-row")).to_have_attribute("data-job-id", failed_id)
            await chips.get_by_text("Canceled", exact=True).click()
            await expect(page.get_by_test_id("job-row")).to_have_attribute("data-job-id", long_id)
            await chips.get_by_text("All", exact=True).click()
            await expect(page.get_by_test_id("job-row")).to_have_count(3)

            # Delete (after a confirmation) removes the failed job: gone from the list and from the server
            await failed_row.click()
            await expect(page.get_by_test_id("detail-id")).to_have_text(failed_id)
            page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.get_by_test_id("delete-button").click()
            await expect(page.get_by_test_id("job-row")).to_have_count(2)
            await expect(page.locator(f'[data-job-id="{failed_id}"]')).to_have_count(0)
            await expect(page.get_by_test_id("detail-empty")).to_be_visible()
            assert httpx.get(f"{server.url}/status/{failed_id}").status_code == 404
    assert time.monotonic() - started < 60


@pytest.mark.browser
async def test_dashboard_api_key_prompt_and_readable_errors(tmp_path, clips):
    from playwright.async_api import expect

    key = "dashboard-test-key-1"
    settings = make_settings(tmp_path, API_KEYS=f"tester:{key}")
    shutil.copyfile(clips["clip"], tmp_path / "media" / "clip.mp4")
    with ApiServer(settings, tmp_path, api_workers=1) as server, ApiServerLog(server):
        async with chromium_page(tmp_path / "downloads") as page:
            await page.goto(f"{server.url}/ui/")
            # every call answers 401: the page asks for a key instead of showing errors
            form = page.get_by_test_id("api-key-form")
            await expect(form).to_be_visible()
            await expect(page.get_by_test_id("connection")).to_contain_text("API key needed")
            await expect(page.get_by_test_id("list-error")).to_be_hidden()  # the prompt, not a wall of 401s
            await screenshot(page, "5-api-key-prompt")
            await page.get_by_test_id("api-key-input").fill("wrong-key-123")
            await page.get_by_test_id("api-key-save").click()
            await expect(form).to_be_visible()
            await expect(form).to_contain_text("refused")
            await page.get_by_test_id("api-key-input").fill(key)
            await page.get_by_test_id("api-key-save").click()
            await expect(form).to_be_hidden()
            await expect(page.get_by_test_id("method-select").locator("option")).to_have_count(
                8
            )  # 5 methods, 2 templates, custom
            assert await page.evaluate("() => localStorage.getItem('mediaflow.apiKey')") == key

            # an invalid source: the API's 422 detail is shown as text, and markup in it stays text
            await page.get_by_test_id("mode-source").click()
            hostile = "<img src=x onerror=window.__xss=1>.mp4"
            await page.get_by_test_id("source-input").fill(hostile)
            await page.get_by_test_id("submit-button").click()
            problem = page.get_by_test_id("submit-error")
            await expect(problem).to_be_visible()
            await expect(problem).to_contain_text(hostile)
            text = await problem.text_content()
            assert "[object Object]" not in text and "no such file under media/" in text, text
            assert await page.evaluate("() => window.__xss") is None
            assert await page.locator("img").count() == 0

            # a server path with the key: extract the audio, the player is an <audio>; player and
            # download use a signed link (GET /jobs/{id}/download-url), since neither can send the key
            await page.get_by_test_id("source-input").fill("clip.mp4")
            await page.get_by_test_id("method-select").select_option("extract_audio")
            assert await page.get_by_test_id("format-select").input_value() == "mp3"
            await page.get_by_test_id("submit-button").click()
            await expect(page.get_by_test_id("detail-status")).to_have_text("Completed", timeout=45_000)
            await expect(page.get_by_test_id("detail-progress")).to_have_text("100%")
            await expect(page.get_by_test_id("detail-name")).to_have_text("clip.mp4 → Extract audio, MP3")
            saved = await download_from_dashboard(page, tmp_path, "clip_extract_audio.mp3")
            with av.open(str(saved)) as container:
                assert container.streams.audio[0].codec_context.name.startswith("mp3")  # the decoder: mp3float
                assert 2.5 < float(container.duration) / av.time_base < 3.5
            audio = page.get_by_test_id("player-media")
            await expect(audio).to_be_visible()
            assert await audio.evaluate("a => a.tagName") == "AUDIO"
            assert "token=" in await audio.evaluate("a => a.src"), "the player streams from a signed link"
            await page.wait_for_function(
                "() => { const a = document.querySelector('[data-testid=player-media]'); return a && a.readyState >= 1; }"
            )
            await screenshot(page, "6-api-key-audio")


async def download_from_dashboard(page, directory: Path, expected_name: str) -> Path:
    """Click Download; the browser must offer `expected_name`. Returns where the file was saved."""
    async with page.expect_download() as download_info:
        await page.get_by_test_id("download-button").click()
    download = await download_info.value
    assert download.suggested_filename == expected_name
    saved = directory / f"downloaded-{expected_name}"
    await download.save_as(str(saved))
    return saved
