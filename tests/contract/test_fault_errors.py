"""Every fault the simulators can inject, seen by the real SoapAdapter over a real socket.

The simulator runs under uvicorn (in a thread, on a free port) so `reset` is a real TCP reset
and `hang` a real silent connection; each fault must end as the typed error the hub's
resilience relies on (code and retryable), never as an untyped exception.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from ehis.adapters.soap import CallContext, SoapAdapter
from ehis.catalogue import system
from ehis.errors import EhisError, SignatureInvalid, SourceFault, SourceTimeout, SourceUnavailable
from ehis.mapping.din import to_person
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.simulators import FaultKind, create_app, make_server
from ehis.testing import free_port

CTX = CallContext(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")
FIN = "5GXM4DZ"
SHORT = 0.5  # the adapter's timeout where the fault is about time


class Live:
    """The simulator under uvicorn, with its admin API at hand."""

    def __init__(self, url: str, server: uvicorn.Server):
        self.url, self.server = url, server
        self.admin = httpx.Client(base_url=url, timeout=5)

    def add(self, **rule: Any) -> dict[str, Any]:
        response = self.admin.post("/_admin/faults", json={"system": "din", **rule})
        assert response.status_code == 201, response.text
        return response.json()["faults"][0]

    def rule(self, rule_id: str) -> dict[str, Any]:
        return next(r for r in self.admin.get("/_admin/faults").json()["faults"] if r["id"] == rule_id)

    def journal(self) -> list[dict[str, Any]]:
        return self.admin.get("/_admin/journal", params={"system": "din"}).json()["entries"]

    def busy(self) -> int:
        """Requests uvicorn is still running (a hung handler would stay here)."""
        return len(self.server.server_state.tasks)


@pytest.fixture(scope="module")
def live(pki: Pki) -> Iterator[Live]:
    port = free_port()
    server = make_server(create_app(pki), "127.0.0.1", port, log_level="warning", lifespan="off",
                         timeout_graceful_shutdown=5)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    sim = Live(f"http://127.0.0.1:{port}", server)
    yield sim
    sim.admin.close()
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(autouse=True)
def clean(live: Live) -> Iterator[None]:
    live.admin.delete("/_admin/faults").raise_for_status()
    live.admin.delete("/_admin/journal").raise_for_status()
    yield
    live.admin.delete("/_admin/faults").raise_for_status()


def adapter(pki: Pki, live: Live, timeout: float) -> tuple[SoapAdapter, httpx.AsyncClient]:
    http = httpx.AsyncClient()
    return SoapAdapter(system("din"), endpoint=f"{live.url}/din", http=http, signer=EnvelopeSigner(pki.operator()),
                       verifier=EnvelopeVerifier(pki.ca_file), timeout=timeout), http


# kind, extra rule fields, adapter timeout, expected error, code, retryable
CASES: list[tuple[FaultKind, dict[str, Any], float, type[EhisError], str, bool]] = [
    (FaultKind.LATENCY, {"latency_ms": 2000}, SHORT, SourceTimeout, "timeout", True),
    (FaultKind.HANG, {}, SHORT, SourceTimeout, "timeout", True),
    (FaultKind.HTTP_500, {}, 5, SourceUnavailable, "unavailable", True),
    (FaultKind.HTTP_503, {}, 5, SourceUnavailable, "unavailable", True),
    (FaultKind.RESET, {}, 5, SourceUnavailable, "unavailable", True),
    (FaultKind.SOAP_FAULT, {}, 5, SourceFault, "source_fault", True),
    (FaultKind.MALFORMED, {}, 5, SourceFault, "source_fault", True),
    (FaultKind.TRUNCATED, {}, 5, SourceFault, "source_fault", True),
    (FaultKind.EMPTY, {}, 5, SourceFault, "source_fault", True),
    (FaultKind.BAD_SIGNATURE, {}, 5, SignatureInvalid, "signature_invalid", False),
    (FaultKind.WRONG_SIGNER, {}, 5, SignatureInvalid, "signature_invalid", False),
    (FaultKind.EXPIRED_CERT, {}, 5, SignatureInvalid, "signature_invalid", False),
    (FaultKind.UNSIGNED, {}, 5, SignatureInvalid, "signature_invalid", False),
]


def test_every_fault_kind_is_covered() -> None:
    assert {case[0] for case in CASES} == set(FaultKind)


@pytest.mark.parametrize(("kind", "extra", "timeout", "error", "code", "retryable"), CASES, ids=[c[0] for c in CASES])
async def test_fault_ends_in_its_typed_error(
    pki: Pki, live: Live, kind: FaultKind, extra: dict[str, Any], timeout: float,
    error: type[EhisError], code: str, retryable: bool,
) -> None:
    rule = live.add(kind=kind, **extra)
    sim, http = adapter(pki, live, timeout)
    async with http:
        started = time.monotonic()
        with pytest.raises(EhisError) as raised:
            await sim.call("GetPerson", {"fin": FIN}, CTX)
        elapsed = time.monotonic() - started
    assert type(raised.value) is error, repr(raised.value)
    assert raised.value.code == code and raised.value.retryable is retryable
    assert raised.value.source == "din"
    assert FIN not in str(raised.value)
    assert elapsed < timeout + 1.0
    assert live.rule(rule["id"])["fired"] == 1
    entry, = live.journal()
    assert entry["fault"] == kind.value
    assert entry["operation"] == "GetPerson" and entry["outcome"] == "ok" and entry["signature_ok"]


async def test_the_same_adapter_works_once_the_faults_are_cleared(pki: Pki, live: Live) -> None:
    live.add(kind=FaultKind.TRUNCATED)
    sim, http = adapter(pki, live, 5)
    async with http:
        with pytest.raises(SourceFault):
            await sim.call("GetPerson", {"fin": FIN}, CTX)
        live.admin.delete("/_admin/faults").raise_for_status()
        answer = await sim.call("GetPerson", {"fin": FIN}, CTX)
    assert to_person(answer.body).fin == FIN
    assert [e["fault"] for e in live.journal()] == ["truncated", None]


async def test_reset_is_a_real_tcp_reset(live: Live) -> None:
    """httpx sees ECONNRESET (a FIN would be 'server disconnected'), and the request is journaled."""
    live.add(kind=FaultKind.RESET)
    async with httpx.AsyncClient(base_url=live.url, timeout=5) as http:
        with pytest.raises(httpx.ReadError) as raised:
            await http.post("/din", content=b"<not-signed/>", headers={"Content-Type": "text/xml"})
    chain, exc = [], raised.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, ConnectionResetError) for e in chain), chain
    entry, = live.journal()
    assert entry["fault"] == "reset" and entry["outcome"] == "rejected"


async def test_hang_does_not_block_other_requests_and_ends_when_the_client_leaves(pki: Pki, live: Live) -> None:
    live.add(kind=FaultKind.HANG, first=1)
    hung, hung_http = adapter(pki, live, SHORT)
    sim, http = adapter(pki, live, 5)
    async with hung_http, http:
        hanging = asyncio.create_task(hung.call("GetPerson", {"fin": FIN}, CTX))
        while not live.journal():  # the hanging request has reached the simulator
            await asyncio.sleep(0.01)
        answer = await sim.call("GetPerson", {"fin": "7ABC123"}, CTX)  # served while the other hangs
        assert not hanging.done()
        with pytest.raises(SourceTimeout):
            await hanging
    assert to_person(answer.body).fin == "7ABC123"
    assert [e["fault"] for e in live.journal()] == ["hang", None]
    deadline = time.monotonic() + 2
    while live.busy() and time.monotonic() < deadline:  # the handler noticed the client left
        await asyncio.sleep(0.02)
    assert live.busy() == 0


async def test_latency_below_the_timeout_only_slows_the_answer(pki: Pki, live: Live) -> None:
    live.add(kind=FaultKind.LATENCY, latency_ms=300, jitter_ms=50)
    sim, http = adapter(pki, live, 2)
    async with http:
        started = time.monotonic()
        answer = await sim.call("GetPerson", {"fin": FIN}, CTX)
        elapsed = time.monotonic() - started
    assert to_person(answer.body).fin == FIN
    assert 0.3 <= elapsed < 1.5
    assert live.journal()[0]["fault"] == "latency"


async def test_latency_combines_with_a_failure(pki: Pki, live: Live) -> None:
    live.add(kind=FaultKind.LATENCY, latency_ms=200)
    live.add(kind=FaultKind.HTTP_503)
    sim, http = adapter(pki, live, 2)
    async with http:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            await sim.call("GetPerson", {"fin": FIN}, CTX)
    assert time.monotonic() - started >= 0.2
    assert live.journal()[0]["fault"] == "latency+http_503"


async def test_probability_zero_never_fires(pki: Pki, live: Live) -> None:
    rule = live.add(kind=FaultKind.HTTP_503, probability=0)
    sim, http = adapter(pki, live, 5)
    async with http:
        for _ in range(5):
            await sim.call("GetPerson", {"fin": FIN}, CTX)
    listed = live.rule(rule["id"])
    assert listed["fired"] == 0 and listed["matched"] == 5
    assert [e["fault"] for e in live.journal()] == [None] * 5


async def test_fail_the_first_n_then_recover(pki: Pki, live: Live) -> None:
    live.add(kind=FaultKind.HTTP_503, first=2)
    sim, http = adapter(pki, live, 5)
    outcomes = []
    async with http:
        for _ in range(4):
            try:
                await sim.call("GetPerson", {"fin": FIN}, CTX)
                outcomes.append("ok")
            except EhisError as exc:
                outcomes.append(exc.code)
    assert outcomes == ["unavailable", "unavailable", "ok", "ok"]


@pytest.mark.parametrize("exc", [ConnectionResetError(104, "Connection reset by peer"),
                                 BrokenPipeError(32, "Broken pipe")])
async def test_a_raw_os_error_from_the_transport_is_typed(pki: Pki, exc: OSError) -> None:
    """A transport that lets an OSError through (not wrapped by httpx) still ends typed."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    http = httpx.AsyncClient(transport=httpx.MockTransport(fail))
    sim = SoapAdapter(system("din"), endpoint="http://sim/din", http=http, signer=EnvelopeSigner(pki.operator()),
                      verifier=EnvelopeVerifier(pki.ca_file))
    async with http:
        with pytest.raises(SourceUnavailable) as raised:
            await sim.call("GetPerson", {"fin": FIN}, CTX)
    assert raised.value.retryable and raised.value.source == "din"
