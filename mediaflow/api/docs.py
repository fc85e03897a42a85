"""The interactive API docs at /docs, served entirely by MediaFlow: Swagger UI's script, style sheet
and icon come from the `swagger-ui-py` wheel (Swagger UI 5, which reads FastAPI's OpenAPI 3.1), not
from a CDN, so the docs work offline like the dashboard.

FastAPI's own /docs (and /redoc) load their assets from the internet: the app factory turns them
off (`docs_url=None, redoc_url=None`) and registers this instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from mediaflow.logs import get_logger

log = get_logger("api")

# Only what the page loads; the wheel also holds Swagger Editor, which nobody here needs served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
SWAGGER_UI_PARAMETERS = {
    "persistAuthorization": True,  # the key typed into Authorize survives a reload
    "tryItOutEnabled": True,  # every operation opens ready to send: the docs are for trying the API
    "displayRequestDuration": True,
    "validatorUrl": None,  # else a badge image is fetched from an online validator
}


def swagger_ui_dir() -> Path | None:
    """Where the installed swagger-ui-py wheel keeps Swagger UI's files (found without importing the
    package, whose framework adapters pull in Jinja2 and PyYAML for nothing)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / "static"
    return directory if all((directory / name).is_file() for name in ASSETS) else None


def register_api_docs(app: FastAPI) -> None:
    """GET /docs (Swagger UI) and GET /docs/assets/{name} (its files), both outside the OpenAPI schema."""
    directory = swagger_ui_dir()
    if directory is None:
        log.warning(
            "api.docs_missing",
            reason="the swagger-ui-py package is not installed",
            fix="pip install -r requirements.txt",
        )

    @app.get("/docs", include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        openapi_url = f"{root}{app.openapi_url}"
        if directory is None:
            return HTMLResponse(
                "<!doctype html><title>MediaFlow API docs</title><h1>The API docs are not installed</h1>"
                "<p>This server lacks the <code>swagger-ui-py</code> package: run "
                "<code>pip install -r requirements.txt</code> (or <code>scripts/setup.sh</code>) and restart. "
                f'The API description itself is at <a href="{openapi_url}">{openapi_url}</a>.</p>',
                status_code=503,
            )
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API docs",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def api_docs_asset(name: str) -> FileResponse:
        if directory is None or name not in ASSETS:
            raise HTTPException(404, detail=f"no such API docs file: {name}")
        return FileResponse(
            directory / name, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"}
        )
