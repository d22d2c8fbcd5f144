"""One request, one trace: from the caller's BusClient over the bus (memory:// and RabbitMQ),
through the worker, cache, source call, each attempt and its HTTP request (which carries the
trace to the source), to the exchange-log append. Off by default, and then nothing is loaded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ehis import tracing
from ehis.bus.amqp import delete_namespace
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.bus.transport import open_transport
from ehis.mapping.models import Person
from ehis.monitor.server import serve_admin
from ehis.simulators import create_app
from ehis.simulators.faults import FaultRule
from ehis.testing import hub_in_process

FIN = "5GXM4DZ"
PURPOSE = "contract 2025/118"
OFFICIAL = "AZ0000001"
REQUESTER = Requester(subsystem="emek-muqavilesi", user=OFFICIAL, purpose=PURPOSE)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install(exporter, batch=False, service_name="ehis-test")
    try:
        yield exporter
    finally:
        tracing.uninstall()


@pytest.fixture
async def sources(pki) -> AsyncIterator[tuple[str, list[str], object]]:
    """The simulators on a real socket (so the HTTP call is httpx's own transport, instrumented),
    recording the `traceparent` of every request din receives."""
    seen: list[str] = []
    app = create_app(pki)

    async def recording(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/din":
            seen.append(dict(scope["headers"]).get(b"traceparent", b"").decode())
        await app(scope, receive, send)

    async with serve_admin(recording, "127.0.0.1", 0) as url:
        yield url, seen, app


def trace_of(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    """The spans of the one request's trace, by name (background work, such as the checkpoint's
    time-stamp request, makes traces of its own)."""
    finished = exporter.get_finished_spans()
    (client,) = [s for s in finished if s.name == "din.person request"]
    mine = [s for s in finished if s.context.trace_id == client.context.trace_id]
    assert len({s.name for s in mine}) == len(mine), [s.name for s in mine]
    return {s.name: s for s in mine}


def assert_linked(by_name: dict[str, ReadableSpan], seen: list[str], caller: str = "emek-muqavilesi") -> None:
    client = by_name["din.person request"]
    worker = by_name["din.person process"]
    assert client.kind is SpanKind.CLIENT and client.parent is None
    assert worker.kind is SpanKind.CONSUMER and worker.parent.span_id == client.context.span_id
    cache = by_name["din.person cache"]
    call, attempt, post = by_name["din call"], by_name["din attempt"], by_name["POST"]
    assert cache.attributes["ehis.cache"] == "miss"
    assert call.parent.span_id == cache.context.span_id and attempt.parent.span_id == call.context.span_id
    assert post.kind is SpanKind.CLIENT and post.parent.span_id == attempt.context.span_id
    assert by_name["exchange log append"].parent.span_id == worker.context.span_id
    trace_id = f"{client.context.trace_id:032x}"
    assert seen and seen[-1].split("-")[1] == trace_id  # the source received the same trace
    assert worker.attributes["ehis.outcome"] == "ok" and worker.attributes["ehis.caller"] == caller


def assert_no_personal_data(exporter: InMemorySpanExporter) -> None:
    for span in exporter.get_finished_spans():
        text = repr(dict(span.attributes or {})) + span.name + repr(span.status.description)
        for secret in (FIN, PURPOSE, OFFICIAL):
            assert secret not in text, f"{secret} in span {span.name}"


async def test_one_request_is_one_trace_on_the_embedded_bus(tmp_path: Path, pki, spans, sources) -> None:
    url, seen, _ = sources
    async with hub_in_process(tmp_path, pki, transport=httpx.AsyncHTTPTransport(), simulator_url=url) as hub:
        person = await BusClient(hub.transport, requester=REQUESTER).fetch("din.person", {"fin": FIN})
    assert isinstance(person, Person)
    assert_linked(trace_of(spans), seen)
    assert_no_personal_data(spans)


@pytest.mark.rabbitmq
async def test_one_request_is_one_trace_over_rabbitmq(tmp_path: Path, pki, spans, sources, rabbitmq_url) -> None:
    url, seen, _ = sources
    namespace = f"trace-{uuid.uuid4().hex[:8]}"
    try:
        # the broker vouches for the caller: logged in as guest, it asks as the subsystem "guest"
        async with hub_in_process(tmp_path, pki, transport=httpx.AsyncHTTPTransport(), simulator_url=url,
                                  broker_url=rabbitmq_url, bus_namespace=namespace, access={"guest": ["din.person"]}):
            as_guest = REQUESTER.model_copy(update={"subsystem": "guest"})
            async with BusClient(open_transport(rabbitmq_url, namespace=namespace), requester=as_guest) as client:
                reply = await client.request("din.person", {"fin": FIN})
        assert reply.status == "ok", reply.error
        assert_linked(trace_of(spans), seen, caller="guest")
        assert_no_personal_data(spans)
    finally:
        await delete_namespace(rabbitmq_url, namespace)


async def test_each_attempt_is_a_span_and_failures_carry_only_their_code(tmp_path: Path, pki, spans, sources) -> None:
    url, seen, app = sources
    app.state.faults.add(FaultRule(kind="http_503", system="din", first=2))
    guard = {"attempts": 3, "backoff_initial": 0.0, "backoff_max": 0.0}
    async with hub_in_process(tmp_path, pki, transport=httpx.AsyncHTTPTransport(), simulator_url=url,
                              source_defaults=guard) as hub:
        reply = await BusClient(hub.transport, requester=REQUESTER).request("din.person", {"fin": FIN})
    assert reply.status == "ok"
    attempts = sorted((s for s in spans.get_finished_spans() if s.name == "din attempt"),
                      key=lambda s: s.attributes["ehis.attempt"])
    assert [s.attributes["ehis.attempt"] for s in attempts] == [1, 2, 3]
    assert [s.status.description for s in attempts[:2]] == ["unavailable", "unavailable"]
    assert len({t.split("-")[1] for t in seen}) == 1 and len(seen) == 3


def test_off_by_default_nothing_is_loaded_nor_sent(tmp_path: Path) -> None:
    """A request on the embedded bus with tracing off imports no OpenTelemetry and sends no header."""
    code = (
        "import asyncio, sys\n"
        "from ehis import tracing\n"
        "from ehis.bus.memory import MemoryTransport\n"
        "assert tracing.inject() is None and not tracing.enabled()\n"
        "with tracing.span('x') as s: assert s is None\n"
        "import ehis.cli, ehis.runtime, ehis.calls, ehis.recording, ehis.bus.amqp, ehis.bus.client\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[2], check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_settings_export_spans_over_otlp_http(tmp_path: Path, pki) -> None:
    """`tracing_endpoint` (a collector's base URL) is enough: the spans reach it as OTLP protobuf."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from ehis.config import Settings

    received: list[ExportTraceServiceRequest] = []

    async def traces(request: Request) -> Response:
        received.append(ExportTraceServiceRequest.FromString(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    collector = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    async with serve_admin(collector, "127.0.0.1", 0) as url:
        assert tracing.setup(Settings(tracing_endpoint=url), "ehis-test")
        try:
            async with hub_in_process(tmp_path, pki, create_app(pki)) as hub:
                reply = await BusClient(hub.transport, requester=REQUESTER).request("din.person", {"fin": FIN})
        finally:
            await asyncio.to_thread(tracing.uninstall)  # flushes: the exporter posts from its own thread
    assert reply.status == "ok"
    spans = [s for r in received for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    (client,) = [s for s in spans if s.name == "din.person request"]
    names = {s.name for s in spans if s.trace_id == client.trace_id}  # one trace, exported by the SDK as OTLP
    assert {"din.person request", "din.person process", "din.person cache", "din call", "din attempt"} <= names
    assert Settings.model_fields["tracing_endpoint"].default is None  # off unless configured
