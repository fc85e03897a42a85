"""The job service's errors as HTTP answers, in one place, so routes stay free of try/except."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mediaflow.api.validation import add_validation_handler
from mediaflow.jobs.service import (
    IdempotencyConflictError,
    JobGoneError,
    JobRequestError,
    JobStateError,
    QueueRejectedError,
    TooManyActiveJobsError,
)

STATUS_FOR_ERROR: dict[type[Exception], int] = {
    JobRequestError: 422,
    IdempotencyConflictError: 409,
    JobStateError: 409,
    JobGoneError: 404,
    QueueRejectedError: 503,
    TooManyActiveJobsError: 429,
}


def add_error_handlers(app: FastAPI) -> None:
    add_validation_handler(app)  # 422s for bodies/parameters that fail validation, safe to echo
    for error_type, status in STATUS_FOR_ERROR.items():
        app.add_exception_handler(error_type, _answer_with(status))


def _answer_with(status: int):
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        retry_after = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    return handler
