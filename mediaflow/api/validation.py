"""422 answers for requests that fail validation, safe to send whatever the request held.

FastAPI's default handler echoes each offending `input` back as it came. That broke on hostile
bodies: Python's JSON parser accepts `NaN` and `Infinity`, which the response encoder refuses, and a
lone surrogate (`"\\ud800"`) cannot be encoded as UTF-8 — both became 500s. It also sent a 10 MB field
back in full. Here every echoed value is made printable and cut short. The error list keeps FastAPI's
shape (`type`, `loc`, `msg`, `input`, `ctx`) with the words of `error_words.py`: the path as the user
wrote it (also as text, `field`), and a message that names what is accepted.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mediaflow.api.error_words import errors_in_words

ECHO_MAX_CHARS = 200  # per echoed string
ECHO_MAX_ITEMS = 20  # per echoed list or object
ECHO_MAX_DEPTH = 4
MAX_ERRORS = 20  # a body with a thousand bad fields gets the first twenty


def printable(text: str, limit: int = ECHO_MAX_CHARS) -> str:
    """`text` as valid UTF-8 (a lone surrogate becomes its `\\udxxx` escape), at most `limit` characters."""
    clean = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return clean if len(clean) <= limit else clean[:limit] + f"… ({len(clean)} characters)"


def safe_echo(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, bounded copy of a value taken from the request."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value if not isinstance(value, int) or abs(value) < 10**18 else printable(str(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN / Infinity are not JSON
    if depth >= ECHO_MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())
        return {printable(str(key), 64): safe_echo(item, depth + 1) for key, item in items[:ECHO_MAX_ITEMS]}
    if isinstance(value, (list, tuple)):
        return [safe_echo(item, depth + 1) for item in list(value)[:ECHO_MAX_ITEMS]]
    return printable(repr(value))


def _clean_error(error: dict[str, Any]) -> dict[str, Any]:
    cleaned = {key: safe_echo(value) if key in ("input", "ctx") else value for key, value in error.items()}
    if "msg" in cleaned:
        cleaned["msg"] = printable(str(cleaned["msg"]), 500)
    cleaned["loc"] = [safe_echo(part) for part in error.get("loc", ())]
    return cleaned


async def validation_error_answer(request: Request, exc: Exception) -> JSONResponse:
    # Starlette types every handler as taking Exception; this one is registered for RequestValidationError only.
    if not isinstance(exc, RequestValidationError):
        raise exc
    raw = [dict(error) for error in exc.errors()[:MAX_ERRORS]]
    errors = [_clean_error(error) for error in errors_in_words(raw, request.scope.get("route"))]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def add_validation_handler(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_answer)
