"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright (no
`playwright install`), screenshots to test-artifacts/, and axe-core (npm, installed by
`scripts/setup.sh --test` into .deps/axe) injected into a page to check its accessibility.

On a developer machine without Chromium, Playwright or axe-core these tests skip; in CI (CI=true)
they fail instead.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from tests.apptools import REPO, ApiServer
from tests.servers.process import server_unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = REPO / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}
AXE = REPO / ".deps" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@asynccontextmanager
async def chromium_page(
    downloads: Path, *, viewport: dict | None = None, color_scheme: str = "light", offline: bool = False
):
    """A page in a fresh headless Chromium; JavaScript errors on the page fail the test. With
    `offline`, every request to a host other than loopback is aborted and listed in `page.blocked`
    (empty at the end, or the test fails): the page must need nothing from the internet."""
    if not Path(CHROMIUM).exists():
        server_unavailable("chromium", f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        server_unavailable("chromium", "the playwright package is not installed (pip install -e '.[test]')")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, downloads_path=str(downloads))
        try:
            context = await browser.new_context(
                viewport=viewport or DESKTOP, accept_downloads=True, color_scheme=color_scheme
            )
            page = await context.new_page()
            page.set_default_timeout(15_000)
            page_errors: list[str] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.blocked = []
            if offline:

                async def only_loopback(route) -> None:
                    if urlsplit(route.request.url).hostname in LOOPBACK:
                        await route.continue_()
                    else:
                        page.blocked.append(route.request.url)
                        await route.abort("internetdisconnected")

                await context.route("**/*", only_loopback)
            yield page
            assert not page_errors, f"JavaScript errors on the page: {page_errors}"
            assert not page.blocked, f"the page asked the internet for: {page.blocked}"
        finally:
            await browser.close()


async def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"dashboard-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core's WCAG 2.x A/AA violations on the page as it is now, of the given impacts, as
    {id, impact, help, targets} (the first few offending elements' selectors)."""
    if not AXE.is_file():
        server_unavailable("axe-core", f"{AXE} is missing (scripts/setup.sh --test installs it from npm)")
    if not await page.evaluate("() => Boolean(window.axe)"):
        await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 4).map(n => n.target.join(' '))}));
        }"""
    )
    return [violation for violation in result if violation["impact"] in impacts]


class ApiServerLog:
    """Shows the API's log when the block fails, since the browser only sees the symptoms."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server

    def __enter__(self) -> ApiServerLog:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and os.path.exists(self.server.log_path):
            print(f"--- API log ({self.server.log_path}) ---")
            print(Path(self.server.log_path).read_text()[-4000:])
