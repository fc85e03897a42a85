"""The web dashboard at /ui/: static files (ui/), no build step. Every call it makes goes through the
API and its key check; the files themselves hold no data and are served without a key."""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from logs import get_logger

log = get_logger("api")


def dashboard_dir() -> Path | None:
    """The dashboard's static files: `ui/` beside main.py (a checkout, an editable install, the Docker
    image), else `<prefix>/share/mediaflow/ui` where a wheel install puts them (pyproject data-files)."""
    for candidate in (Path(__file__).resolve().parent / "ui", Path(sys.prefix) / "share" / "mediaflow" / "ui"):
        if (candidate / "index.html").is_file():
            return candidate
    return None


def register_dashboard(app: FastAPI) -> None:
    """The web dashboard at /ui/: static files only; every call it makes goes through the API (and its key check)."""
    directory = dashboard_dir()
    if directory is None:
        log.warning("api.dashboard_missing", reason="no ui/index.html beside main.py or in <prefix>/share/mediaflow/ui")
        return

    @app.get("/ui", include_in_schema=False)
    async def dashboard_redirect() -> RedirectResponse:
        return RedirectResponse("ui/", status_code=307)  # relative: keeps working behind a path prefix

    app.mount("/ui", StaticFiles(directory=directory, html=True), name="ui")
