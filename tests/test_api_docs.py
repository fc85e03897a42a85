"""The interactive API docs (/docs) work with no internet, and can be used to try the API: the
X-API-Key scheme (Authorize button) and a /process example that runs as shown."""

from __future__ import annotations

import json
import re

import pytest

from tests import media
from tests.apptools import ApiServer, make_settings, running_app
from tests.browser import ApiServerLog, chromium_page, screenshot

KEY = "docs-test-key-1"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


async def test_docs_page_and_assets_come_from_this_server(tmp_path, monkeypatch):
    async with running_app(make_settings(tmp_path)) as api:
        page = await api.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        loaded = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
        assert loaded and all(url.startswith("/docs/assets/") for url in loaded), loaded
        for url in loaded:
            asset = await api.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
        assert (await api.get("/docs/assets/swagger-editor-bundle.js")).status_code == 404  # only what /docs loads
        assert (await api.get("/redoc")).status_code == 404  # ReDoc needs a CDN: not offered

        schema = (await api.get("/openapi.json")).json()
        schemes = schema["components"]["securitySchemes"]
        api_keys = [scheme for scheme in schemes.values() if scheme["type"] == "apiKey"]
        assert [(k["in"], k["name"]) for k in api_keys] == [("header", "X-API-Key")]  # one Authorize field for it
        assert {"ApiKey": []} in schema["paths"]["/process"]["post"]["security"]
        assert "security" not in schema["paths"]["/healthz"]["get"]  # the open endpoints stay open
        body = schema["components"]["schemas"]["ProcessRequest"]
        assert body["examples"][0] == {"source": "media/sample.mp4", "method_name": "compress", "output_format": "mp4"}
        # POST /jobs' "Try it out" is filled with its first example: with the README's sample clip it is accepted
        media.make_clip(tmp_path / "media", "sample.mp4", width=160, height=120, seconds=1)
        monkeypatch.chdir(tmp_path)  # where `scripts/serve.sh` runs: media/ below the current directory
        for example in schema["components"]["schemas"]["CreateJobRequest"]["examples"]:
            assert example["source"] == "media/sample.mp4", example
            created = await api.post("/jobs", json=example)
            assert created.status_code == 201, created.text


@pytest.mark.browser
async def test_docs_render_offline_and_try_process_with_the_key(tmp_path):
    """Every request that is not to loopback is aborted: the docs must still list every operation,
    and Authorize + Try it out on POST /process (its example as shown) must queue a real job."""
    from playwright.async_api import expect

    settings = make_settings(tmp_path, API_KEYS=f"tester:{KEY}")  # makes tmp_path/media, the source root
    media.make_clip(tmp_path / "media", "sample.mp4", width=160, height=120, seconds=1)
    with ApiServer(settings, tmp_path) as server, ApiServerLog(server):
        import httpx

        schema = httpx.get(f"{server.url}/openapi.json").json()
        operations = sum(1 for item in schema["paths"].values() for method in item if method in HTTP_METHODS)
        async with chromium_page(tmp_path / "downloads", offline=True) as page:
            await page.goto(f"{server.url}/docs")
            await expect(page.locator(".opblock")).to_have_count(operations)
            await screenshot(page, "docs-offline")

            await page.locator("button.authorize").first.click()
            api_key = page.locator(".modal-ux .auth-container").filter(has_text="X-API-Key")
            await api_key.locator("input").fill(KEY)
            await api_key.locator("button.authorize").click()
            await api_key.locator("button.btn-done").click()

            process = page.locator(".opblock-post").filter(has=page.locator('[data-path="/process"]'))
            await process.locator(".opblock-summary").click()
            body = process.locator("textarea.body-param__text")
            assert json.loads(await body.input_value())["source"] == "media/sample.mp4"
            await process.locator("button.execute").click()
            status = process.locator(".live-responses-table tbody .response-col_status").first
            await expect(status).to_have_text(re.compile(r"^\s*200"))
            answer = await process.locator(".live-responses-table .highlight-code").first.text_content()
            assert '"status": "queued"' in answer and '"job_id"' in answer, answer
