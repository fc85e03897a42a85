"""OpenTelemetry traces, configured by the standard OTEL_* variables; off (and free) unless an exporter is set.

    OTEL_TRACES_EXPORTER=otlp|console[,…]   turns tracing on; `otlp` is OTLP over HTTP/protobuf unless
                                           OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL says grpc (that exporter
                                           must then be installed)
    OTEL_SERVICE_NAME                      default: mediaflow-api / mediaflow-worker
    OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, OTEL_SDK_DISABLED …
                                           read by the SDK itself, as everywhere else

A job's trace crosses processes: the API's request span is the root; its W3C `traceparent` is stored on
the job record (`Job.traceparent`) and sent as a Kafka message header, so the worker's spans (claim,
download, probe, encode, upload) and every webhook delivery (which also sends `traceparent` to the
receiver) join the request's trace, whichever process runs them and however late.

With tracing off nothing of OpenTelemetry is imported, and every helper here is a no-op.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_tracer: Any = None  # an opentelemetry Tracer once configure() turned tracing on
_OTLP_EXPORTER_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
TRACED_JOB_ATTRIBUTE = "mediaflow.job_id"


class TracingConfigError(RuntimeError):
    pass


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The span exporters OTEL_TRACES_EXPORTER asks for, as entry point names; [] means tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [name.strip() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if names == ["none"]:
        return []
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()  # the specification's default
    if "otlp" in names and protocol not in _OTLP_EXPORTER_BY_PROTOCOL:
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not one of {sorted(_OTLP_EXPORTER_BY_PROTOCOL)}"
        )
    return [_OTLP_EXPORTER_BY_PROTOCOL[protocol] if name == "otlp" else name for name in names]


def enabled() -> bool:
    return _tracer is not None


def configure(default_service_name: str) -> bool:
    """Turn tracing on for this process if OTEL_TRACES_EXPORTER asks for it (once; later calls keep
    the first configuration). True when tracing is on."""
    global _tracer
    if _tracer is not None:
        return True
    names = exporter_names()
    if not names:
        return False
    from importlib.metadata import entry_points

    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win; our name is only the default.
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: default_service_name}
    provider = TracerProvider(resource=Resource.create(attributes))  # sampler from OTEL_TRACES_SAMPLER
    available = {entry.name: entry for entry in entry_points(group="opentelemetry_traces_exporter")}
    for name in names:
        if name not in available:
            raise TracingConfigError(
                f"OTEL_TRACES_EXPORTER asks for {name!r}, which is not installed (installed: {sorted(available)}); "
                "pip install 'mediaflow[tracing]' brings console and OTLP over HTTP"
            )
        # Exporters read their own settings (OTEL_EXPORTER_OTLP_ENDPOINT, …); the batch processor OTEL_BSP_*.
        provider.add_span_processor(BatchSpanProcessor(available[name].load()()))
    trace.set_tracer_provider(provider)  # flushed and shut down at exit (the SDK's atexit hook)
    _tracer = trace.get_tracer("mediaflow")
    return True


def instrument_app(app: Any) -> None:
    """The FastAPI instrumentation (one server span per request), without the probes' and scrapers' noise."""
    if _tracer is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # No span per ASGI send/receive: a streamed download or an event stream would make thousands.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics,ui", exclude_spans=["receive", "send"]
    )


# --- context carried across processes --------------------------------------------------------------


def current_headers() -> dict[str, str]:
    """The current span's context as W3C headers (`traceparent`, maybe `tracestate`); {} when off."""
    headers: dict[str, str] = {}
    inject(headers)
    return headers


def current_traceparent() -> str | None:
    return current_headers().get("traceparent")


def inject(headers: dict[str, str]) -> None:
    """Add the current context's `traceparent` to outgoing `headers` (a webhook, a Kafka message)."""
    if _tracer is not None:
        from opentelemetry import propagate

        propagate.inject(headers)


def _context(parent: str | Mapping[str, str] | None) -> Any:
    from opentelemetry import propagate

    if parent is None:
        return None  # the current context
    carrier = {"traceparent": parent} if isinstance(parent, str) else dict(parent)
    return propagate.extract(carrier)


# --- spans ------------------------------------------------------------------------------------------


@contextmanager
def span(
    name: str,
    parent: str | Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
    start_time_ns: int | None = None,
) -> Iterator[Any]:
    """A span that is current inside the block, child of `parent` (a traceparent, or headers holding
    one) or else of the current span. An exception leaving the block is recorded on it. Yields None
    when tracing is off."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(
        name, context=_context(parent), attributes=dict(attributes or {}), start_time=start_time_ns
    ) as current:
        yield current


async def traced(name: str, parent: str | None, work: Awaitable[T], attributes: Mapping[str, Any] | None = None) -> T:
    """`await work` inside a span (so an HTTP request it makes can carry the span's traceparent)."""
    with span(name, parent, attributes):
        return await work


def now_ns() -> int:
    return time.time_ns()


def record_span(
    name: str, parent: str | Mapping[str, str] | None, start_time_ns: int, attributes: Mapping[str, Any] | None = None
) -> None:
    """A span from `start_time_ns` to now, for work whose parent is known only once it is done (a
    claim learns the job's trace from the job it claimed). Nothing without a parent: no orphan roots."""
    if _tracer is None or not parent:
        return
    _tracer.start_span(
        name, context=_context(parent), attributes=dict(attributes or {}), start_time=start_time_ns
    ).end()


class PhaseSpans:
    """One span per phase of a job's run (download, probe, encode, upload): entering a phase ends the
    previous one. Children of the span current where it was made (the job's run)."""

    def __init__(self, job_id: str) -> None:
        self._job_id = job_id
        self._current: Any = None
        self._parent: Any = None
        if _tracer is not None:
            from opentelemetry import context

            self._parent = context.get_current()

    def enter(self, name: str) -> None:
        if _tracer is None:
            return
        self.end()
        self._current = _tracer.start_span(name, context=self._parent, attributes={TRACED_JOB_ATTRIBUTE: self._job_id})

    def end(self, error: str | None = None) -> None:
        """End the open phase; `error` marks it failed (the run stopped there)."""
        if self._current is None:
            return
        if error:
            from opentelemetry.trace import Status, StatusCode

            self._current.set_status(Status(StatusCode.ERROR, error))
        self._current.end()
        self._current = None
