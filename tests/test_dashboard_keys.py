"""The dashboard with API keys: a prompt instead of blank menus, a refused key shown as refused,
forgetting a key leaves none of its jobs on screen; and a player that tells a server that went away
from a file it cannot play."""

from __future__ import annotations

import pytest

from tests import media
from tests.apptools import ApiServer, make_settings
from tests.browser import ApiServerLog, axe_violations, chromium_page, screenshot

KEY = "dashboard-key-flow-1"


@pytest.mark.browser
async def test_api_key_flow_and_a_player_whose_server_went_away(tmp_path):
    from playwright.async_api import expect

    settings = make_settings(tmp_path, API_KEYS=f"tester:{KEY}")
    media.make_clip(tmp_path / "media", "clip.mp4", width=160, height=120, seconds=1)
    with ApiServer(settings, tmp_path, api_workers=1) as server, ApiServerLog(server):
        async with chromium_page(tmp_path / "downloads", offline=True) as page:
            await page.goto(f"{server.url}/ui/")
            await expect(page.get_by_test_id("api-key-form")).to_be_visible()
            # before a key works, the menus say why they are empty
            await expect(page.get_by_test_id("method-select")).to_contain_text("Enter the API key")
            assert not await axe_violations(page)
            await screenshot(page, "keys-prompt")

            key_button = page.get_by_test_id("api-key-button")
            await page.get_by_test_id("api-key-input").fill("not-the-key-123")
            await page.get_by_test_id("api-key-save").click()
            await expect(page.get_by_test_id("api-key-form")).to_contain_text("refused")
            await expect(key_button).to_have_text("API key refused")  # not a ✓ for a key the server refused

            await page.get_by_test_id("api-key-input").fill(KEY)
            await page.get_by_test_id("api-key-save").click()
            await expect(page.get_by_test_id("method-select").locator("option")).to_have_count(
                8
            )  # 5 methods, 2 templates, custom
            await expect(key_button).to_have_text("API key ✓")

            await page.get_by_test_id("mode-source").click()
            await page.get_by_test_id("source-input").fill("clip.mp4")
            await page.get_by_test_id("method-select").select_option("extract_audio")
            await page.get_by_test_id("submit-button").click()
            await expect(page.get_by_test_id("detail-status")).to_have_text("Completed", timeout=30_000)
            await expect(page.get_by_test_id("job-row")).to_have_count(1)

            # forgetting the key: nothing of that key's jobs stays on screen
            await key_button.click()
            await page.get_by_test_id("api-key-forget").click()
            await expect(page.get_by_test_id("detail-empty")).to_be_visible()
            await expect(page.get_by_test_id("job-row")).to_have_count(0)
            await expect(page.get_by_test_id("job-empty")).to_contain_text("Enter the API key")
            await expect(page.get_by_test_id("detail-name")).not_to_have_text("Could not load the job")
            await expect(key_button).to_have_text("API key")

            # with the key again, the player loads; then the server goes away under it
            await page.get_by_test_id("api-key-input").fill(KEY)
            await page.get_by_test_id("api-key-save").click()
            await page.get_by_test_id("job-row").click()
            player = page.get_by_test_id("player-media")
            await page.wait_for_function(
                "() => { const a = document.querySelector('[data-testid=player-media]'); return a && a.readyState >= 1; }"
            )
            server.stop()
            await player.evaluate("a => { a.src = a.src + '&again=1'; a.load(); }")
            note = page.get_by_test_id("player-note")
            await expect(note).to_have_attribute("data-reason", "network")
            await expect(note).to_contain_text("cannot be reached")
            await expect(note).not_to_contain_text("cannot play")
