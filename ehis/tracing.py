"""Distributed tracing with OpenTelemetry: off unless `tracing_endpoint` is set.

Off (the default), every helper here is a constant no-op and OpenTelemetry is not even imported:
no SDK, no instrumentation, no message header. On, one trace follows a request from the caller's
`BusClient` over the bus (W3C `traceparent` in the message headers, on RabbitMQ and on the
embedded bus alike), through the worker, the cache lookup, the source call and each of its
attempts (httpx's maintained instrumentation adds the HTTP span and puts `traceparent` on the
request to the source) and the exchange-log append, and is exported over OTLP/HTTP.

OpenTelemetry's aio-pika instrumentation is not used: it supports aio-pika < 10 only, knows
nothing of the embedded bus, and would trace every direct reply-to delivery as a trace of its own.

Span attributes are codes only: service, source, endpoint, request id, caller subsystem, cache
status, outcome, attempt number. Never a FIN, a name, an official or a purpose, and no exception
message either (a source's fault string may quote what it was sent): errors are recorded as
their code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from ehis.config import Settings

_NOOP: AbstractContextManager[None] = nullcontext()


@dataclass
class _State:
    tracer: Tracer | None = None
    provider: TracerProvider | None = None
    owned: bool = False  # the provider is ours to shut down
    http: bool = False  # httpx is instrumented by us


_state = _State()


def enabled() -> bool:
    return _state.tracer is not None


# -- turning it on and off ---------------------------------------------------------------------


def setup(settings: Settings, service_name: str) -> bool:
    """Tracing on for this process if `settings.tracing_endpoint` names an OTLP/HTTP endpoint."""
    if not settings.tracing_endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    install(OTLPSpanExporter(endpoint=traces_url(settings.tracing_endpoint)), service_name=service_name,
            sample_ratio=settings.tracing_sample_ratio)
    return True


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: a collector's base URL (`http://127.0.0.1:4318`) gets `/v1/traces`."""
    from urllib.parse import urlsplit

    return endpoint.rstrip("/") + "/v1/traces" if urlsplit(endpoint).path in ("", "/") else endpoint


def install(exporter: SpanExporter | None = None, *, provider: TracerProvider | None = None,
            service_name: str = "ehis", sample_ratio: float = 1.0, batch: bool = True) -> None:
    """Tracing on: spans go to `exporter` (batched, unless `batch` is False), or to an
    application's own `provider` (a caller with its OpenTelemetry SDK set up already).

    The provider is not made global: the hub's spans, and httpx's, go to it alone.
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    uninstall()
    owned = provider is None
    if provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                                  sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    instrumentor = HTTPXClientInstrumentor()
    http = not instrumentor.is_instrumented_by_opentelemetry
    if http:
        instrumentor.instrument(tracer_provider=provider)
    _state.tracer = provider.get_tracer("ehis")
    _state.provider, _state.owned, _state.http = provider, owned, http


def uninstall() -> None:
    """Tracing off again: flush and stop what `install` started (tests; the end of a process)."""
    if _state.tracer is None:
        return
    if _state.http:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().uninstrument()
    if _state.owned and _state.provider is not None:
        _state.provider.shutdown()
    elif _state.provider is not None:
        _state.provider.force_flush()
    _state.tracer, _state.provider, _state.owned, _state.http = None, None, False, False


# -- spans -------------------------------------------------------------------------------------


def span(name: str, **attributes: str | float | bool | None) -> AbstractContextManager[Span | None]:
    """An internal span, child of the current one; attributes are named `ehis.<key>`."""
    if _state.tracer is None:
        return _NOOP
    return _span(name, "INTERNAL", None, attributes)


def client_span(service: str, request_id: str) -> AbstractContextManager[Span | None]:
    """The caller's span around one request and its reply; `inject` then carries it on the message."""
    if _state.tracer is None:
        return _NOOP
    return _span(f"{label(service)} request", "CLIENT", None,
                 {"service": label(service), "request_id": request_id, "messaging.system": "ehis-bus"})


def consumer_span(headers: Mapping[str, Any] | None) -> AbstractContextManager[Span | None]:
    """The worker's span around handling one delivery, child of the caller's span its headers carry."""
    if _state.tracer is None:
        return _NOOP
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )

    parent = TraceContextTextMapPropagator().extract(_text(headers or {}))  # no traceparent: a new trace
    return _span("ehis.worker process", "CONSUMER", parent, {"messaging.system": "ehis-bus"})


def inject() -> dict[str, str] | None:
    """The current trace context as W3C message headers (`traceparent`, `tracestate`); None when off."""
    if _state.tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier or None


def request_taken(service: str, request_id: str, caller: str | None) -> None:
    """Name the worker's span after the request it turned out to carry."""
    current = _current()
    if current is None:
        return
    current.update_name(f"{label(service)} process")
    current.set_attribute("ehis.service", label(service))
    current.set_attribute("ehis.request_id", request_id)
    if caller:
        current.set_attribute("ehis.caller", caller)


def set_outcome(target: Span | None, outcome: str) -> None:
    """`ok`, or the error code, on `target`; an error code marks the span as failed."""
    if target is None:
        return
    from opentelemetry.trace import Status, StatusCode

    target.set_attribute("ehis.outcome", outcome)
    if outcome != "ok":
        target.set_status(Status(StatusCode.ERROR, outcome))


def set_attribute(target: Span | None, key: str, value: str | float | bool | None) -> None:
    if target is not None and value is not None:
        target.set_attribute(f"ehis.{key}", value)


def label(service: str) -> str:
    """A service name fit for a span name: one of the catalogue's, or `unknown` (callers send any name)."""
    from ehis.catalogue import METASERVICES, SERVICES

    return service if service in SERVICES or service in METASERVICES else "unknown"


@contextmanager
def _span(name: str, kind: str, parent: Any, attributes: Mapping[str, Any]) -> Iterator[Span | None]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    assert _state.tracer is not None
    attrs = {(k if "." in k else f"ehis.{k}"): v for k, v in attributes.items() if v is not None}
    with _state.tracer.start_as_current_span(name, context=parent, kind=SpanKind[kind], attributes=attrs,
                                             record_exception=False, set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as exc:
            code = getattr(getattr(exc, "code", None), "value", None) or type(exc).__name__
            current.set_attribute("ehis.outcome", str(code))
            current.set_status(Status(StatusCode.ERROR, str(code)))
            raise


def _current() -> Span | None:
    if _state.tracer is None:
        return None
    from opentelemetry import trace

    current = trace.get_current_span()
    return current if current.is_recording() else None


def _text(headers: Mapping[str, Any]) -> dict[str, str]:
    """AMQP header values may arrive as bytes: W3C trace context is text."""
    out = {}
    for key in ("traceparent", "tracestate"):
        value = headers.get(key)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if isinstance(value, str):
            out[key] = value
    return out
