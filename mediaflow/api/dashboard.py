"""The web dashboard at /ui/: static files (ui/), no build step. Every call it makes goes through the
API and its key check; the files themselves hold no data and are served without a key."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from mediaflow.logs import get_logger

log = get_logger("api")


def dashboard_dir() -> Path | None:
    """The dashboard's static files: `mediaflow/ui/`, package data, so the same path holds in a
    checkout, an editable install, a wheel and the Docker image."""
    candidate = Path(__file__).resolve().parent.parent / "ui"
    return candidate if (candidate / "index.html").is_file() else None


def register_dashboard(app: FastAPI) -> None:
    """The web dashboard at /ui/: static files only; every call it makes goes through the API (and its key check)."""
    directory = dashboard_dir()
    if directory is None:
        log.warning("api.dashboard_missing", reason="no index.html in the package's ui/ folder")
        return

    @app.get("/ui", include_in_schema=False)
    async def dashboard_redirect() -> RedirectResponse:
        return RedirectResponse("ui/", status_code=307)  # relative: keeps working behind a path prefix

    app.mount("/ui", StaticFiles(directory=directory, html=True), name="ui")
