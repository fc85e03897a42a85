"""The web dashboard at /ui/: static files (ui/), no build step. Every call it makes goes through the
API and its key check; the files themselves hold no data and are served without a key."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from mediaflow.logs import get_logger

log = get_logger("api")

# The players the dashboard loads when the browser cannot play a stream by itself: hls.js for HLS
# (Firefox), dash.js for DASH (every browser). They come from npm (pinned in scripts/setup.sh, which
# installs them into .deps/), never from a CDN and never committed; without them the dashboard plays
# HLS natively where it can and says why a stream does not play elsewhere.
VENDOR = {
    "hls.min.js": Path(".deps/hls/node_modules/hls.js/dist/hls.min.js"),
    "dash.all.min.js": Path(".deps/dash/node_modules/dashjs/dist/modern/umd/dash.all.min.js"),
}


def dashboard_dir() -> Path | None:
    """The dashboard's static files: `mediaflow/ui/`, package data, so the same path holds in a
    checkout, an editable install, a wheel and the Docker image."""
    candidate = Path(__file__).resolve().parent.parent / "ui"
    return candidate if (candidate / "index.html").is_file() else None


def vendor_file(name: str) -> Path | None:
    """A player script as scripts/setup.sh installs it: beside the checkout, or where the server runs."""
    relative = VENDOR.get(name)
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if relative is not None and (root / relative).is_file():
            return root / relative
    return None


def register_dashboard(app: FastAPI) -> None:
    """The web dashboard at /ui/: static files only; every call it makes goes through the API (and its key check)."""
    directory = dashboard_dir()
    if directory is None:
        log.warning("api.dashboard_missing", reason="no index.html in the package's ui/ folder")
        return

    @app.get("/ui", include_in_schema=False)
    async def dashboard_redirect() -> RedirectResponse:
        return RedirectResponse("ui/", status_code=307)  # relative: keeps working behind a path prefix

    vendor = {name: vendor_file(name) for name in VENDOR}  # looked up once: they change only with setup.sh

    @app.get("/ui/vendor/{name}", include_in_schema=False)
    async def dashboard_vendor_script(name: str) -> FileResponse:
        found = vendor.get(name)
        if found is None:
            raise HTTPException(404, detail=f"{name} is not installed on this server: run scripts/setup.sh")
        return FileResponse(
            found, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "public, max-age=86400"}
        )

    app.mount("/ui", StaticFiles(directory=directory, html=True), name="ui")
