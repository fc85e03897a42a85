"""Structured logging, configured once per process. Context (job_id, worker_id, request_id) is
bound through contextvars, so every line written while handling a job carries its id.

Every line takes one path to one renderer (console or JSON): structlog hands its events to stdlib
`logging`, and the one root handler renders them with `structlog.stdlib.ProcessorFormatter`, which
also renders the lines of the stdlib loggers that remain (uvicorn's, asyncio's, botocore's) with the
same processors, so a JSON log has no plain-text lines in it. Routing through stdlib also means a
test's `caplog` sees our lines.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import FilteringBoundLogger, Processor

# Loggers of ours are named "mediaflow.<area>"; LOG_LEVEL applies to them and to uvicorn's, while
# other libraries stay at stdlib's default (warnings and worse).
ROOT_NAME = "mediaflow"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

# What every line gets, ours and foreign alike, before it is rendered.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

_configured = False


def _route_through_stdlib(level: int) -> None:
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,  # here, while the exception is still the current one
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Cached only once LOG_LEVEL is known: a module-level logger used before then must not keep
        # the provisional level.
        cache_logger_on_first_use=_configured,
    )


# Before configure_logging (imports, tests that never build an app) lines already take the stdlib
# path; stdlib's own levels and handlers decide what is shown.
_route_through_stdlib(logging.NOTSET)


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    global _configured
    if _configured:
        return
    _configured = True
    numeric_level = logging.getLevelNamesMapping()[level]
    _route_through_stdlib(numeric_level)
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # a foreign record's exc_info
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    logging.getLogger(ROOT_NAME).setLevel(numeric_level)
    for name in UVICORN_LOGGERS:
        # uvicorn's own logging config (when uvicorn started us) gives these their own plain-text
        # handlers; hand their lines to the root handler instead.
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(numeric_level)


def get_logger(name: str) -> FilteringBoundLogger:
    """The logger of one area of ours ("worker", "api", …); its lines are named mediaflow.<area>."""
    qualified = name if name == ROOT_NAME or name.startswith(ROOT_NAME + ".") else f"{ROOT_NAME}.{name}"
    logger: FilteringBoundLogger = structlog.get_logger(qualified)
    return logger


def bind_job_id(job_id: str) -> None:
    """Name the job on the rest of this context's log lines (a request's http.request line included)."""
    structlog.contextvars.bind_contextvars(job_id=job_id)
