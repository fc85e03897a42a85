"""The web dashboard at /ui/: static files (ui/), no build step. Every call it makes goes through the
API and its key check; the files themselves hold no data and are served without a key."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from mediaflow.logs import get_logger

log = get_logger("api")

# hls.js plays HLS where the browser cannot by itself (Firefox, Chrome on some systems). It comes from
# npm (pinned in scripts/setup.sh, which installs it into .deps/hls), never from a CDN and never
# committed; without it the dashboard still plays HLS natively where it can and says so elsewhere.
HLS_JS = Path(".deps/hls/node_modules/hls.js/dist/hls.min.js")


def dashboard_dir() -> Path | None:
    """The dashboard's static files: `mediaflow/ui/`, package data, so the same path holds in a
    checkout, an editable install, a wheel and the Docker image."""
    candidate = Path(__file__).resolve().parent.parent / "ui"
    return candidate if (candidate / "index.html").is_file() else None


def hls_js_file() -> Path | None:
    """hls.js as scripts/setup.sh installs it: beside the checkout, or in the directory the server runs from."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / HLS_JS).is_file():
            return root / HLS_JS
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

    hls_js = hls_js_file()

    @app.get("/ui/vendor/hls.min.js", include_in_schema=False)
    async def dashboard_hls_js() -> FileResponse:
        if hls_js is None:
            raise HTTPException(404, detail="hls.js is not installed on this server: run scripts/setup.sh")
        return FileResponse(
            hls_js, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "public, max-age=86400"}
        )

    app.mount("/ui", StaticFiles(directory=directory, html=True), name="ui")
