"""GET / : the seed's health answer for programs, the dashboard for people.

curl (`Accept: */*`), `Accept: application/json` and clients that send no Accept header keep getting
exactly `{"status":"ok"}`; a browser, which asks for `text/html` by name, is sent to /ui/ instead of
being shown a line of JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from mediaflow.api.openapi import Tag

# Both answers depend on Accept: a cache must not hand the redirect to curl, or the JSON to a browser.
VARY = {"Vary": "Accept"}


def _quality(accept: str, media_type: str) -> float:
    """The q value the Accept header gives `media_type` when it names it exactly (0 when it does not)."""
    for part in accept.split(","):
        name, *params = (piece.strip() for piece in part.split(";"))
        if name.lower() != media_type:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    return max(0.0, min(1.0, float(value)))
                except ValueError:
                    return 0.0
        return 1.0
    return 0.0


def wants_html(accept: str) -> bool:
    """True for a browser navigating here: text/html named, and preferred at least as much as JSON.
    Wildcards (`*/*`, `text/*`) never count: they are what programs send."""
    html = _quality(accept, "text/html")
    return html > 0 and html >= _quality(accept, "application/json")


router = APIRouter(tags=[Tag.HEALTH])


@router.get(
    "/",
    summary="Liveness check (the seed's health endpoint); a browser is sent to the dashboard",
    responses={307: {"description": "To /ui/, for a request that asks for text/html (a browser)"}},
)
async def root(request: Request) -> Response:
    if wants_html(request.headers.get("accept", "")):
        return RedirectResponse("ui/", status_code=307, headers=VARY)  # relative: works behind a path prefix
    return JSONResponse({"status": "ok"}, headers=VARY)
