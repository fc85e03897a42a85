"""Structured logging, configured once per process. Context (job_id, worker_id, request_id) is
bound through contextvars, so every line written while handling a job carries its id.

Every line goes to one renderer (console or JSON). structlog renders our events and hands the finished
line to stdlib `logging`, marked as rendered; the one root handler prints such lines as they are and
renders every other record — uvicorn's, asyncio's, botocore's — with the same processors and renderer
(`structlog.stdlib.ProcessorFormatter`), so a JSON log has no plain-text lines in it. Rendering before
stdlib sees the line keeps an info line at about the cost of writing it directly (stdlib's own record
and formatter only add the hand-over); going through stdlib also lets a test's `caplog` see our lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

# Loggers of ours are named "mediaflow.<area>"; LOG_LEVEL applies to them and to uvicorn's, while
# other libraries stay at stdlib's default (warnings and worse).
ROOT_NAME = "mediaflow"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_RENDERED = "mediaflow_rendered"  # set on a record whose message is a line structlog already rendered

# What every line gets, ours and foreign alike, before it is rendered.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

_configured = False


def _renderer(fmt: Literal["console", "json"]) -> Processor:
    return structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)


def _hand_to_stdlib(_logger: WrappedLogger, _method: str, line: str | EventDict) -> tuple[tuple[Any, ...], dict]:
    """The last processor: the rendered line becomes the stdlib record's message, marked as rendered."""
    return (line,), {"extra": {_RENDERED: True}}


def _stdlib_logger(name: str, *_: Any) -> logging.Logger:
    return logging.getLogger(name)


def _route_through_stdlib(level: int, fmt: Literal["console", "json"]) -> None:
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,  # here, while the exception is still the current one
            _renderer(fmt),
            _hand_to_stdlib,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stdlib_logger,
        # Cached only once LOG_LEVEL is known: a module-level logger used before then must not keep
        # the provisional level and renderer.
        cache_logger_on_first_use=_configured,
    )


class _OneRenderer(logging.Formatter):
    """Our lines as structlog rendered them; any other library's record through the same processors."""

    def __init__(self, fmt: Literal["console", "json"]) -> None:
        super().__init__()
        self._foreign = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _renderer(fmt),
            ],
        )

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, _RENDERED, False):
            return record.getMessage()
        return self._foreign.format(record)


# Before configure_logging (imports, tests that never build an app) lines already take the stdlib
# path; stdlib's own levels and handlers decide what is shown.
_route_through_stdlib(logging.NOTSET, "console")


def configure_logging(level: str = "INFO", fmt: Literal["console", "json"] = "console") -> None:
    global _configured
    if _configured:
        return
    _configured = True
    numeric_level = logging.getLevelNamesMapping()[level]
    _route_through_stdlib(numeric_level, fmt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneRenderer(fmt))
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
