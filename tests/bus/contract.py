"""The one contract every bus transport meets (kombu's t/integration/common.py, for us).

A transport's test module subclasses `TransportContract` and provides `transport_url` and
`broker_user`; every case below then runs against it through the real client and worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from ehis.bus.client import BusClient
from ehis.bus.envelope import Meta, Reply, Request, Requester
from ehis.bus.transport import UNROUTED, Transport, open_transport
from ehis.bus.worker import Worker
from ehis.errors import ErrorCode, NotFound

REQUESTER = Requester(subsystem="contract-tests", user="official-1", purpose="testing the bus")
FIN = "5GXM4DZ"  # stands for personal data: it must never reach an application log
SERVED = ["din.person", "din.vehicles"]


async def scripted_dispatch(request: Request, broker_user: str | None) -> Reply:
    """A stand-in for the hub: `params["do"]` says what to do, the reply echoes what it saw."""
    action = request.params.get("do", "echo")
    if action == "sleep":
        await asyncio.sleep(request.params["seconds"])
    elif action == "not_found":
        raise NotFound("no such person", source=request.system)
    elif action == "crash":
        raise RuntimeError("a defect in dispatch")
    data = {"params": request.params, "broker_user": broker_user, "service": request.service}
    return Reply.ok(request.id, data, Meta(system=request.system))


class TransportContract:
    # -- what a subclass provides ------------------------------------------------------------

    @pytest.fixture
    def transport_url(self) -> str:
        raise NotImplementedError("a TransportContract subclass provides transport_url")

    @pytest.fixture
    def broker_user(self) -> str | None:
        raise NotImplementedError("a TransportContract subclass provides broker_user")

    @pytest.fixture
    def namespace(self) -> str:
        return f"ehis-test-{uuid.uuid4().hex[:12]}"

    # -- the wiring every case uses ----------------------------------------------------------

    @pytest.fixture
    async def worker_transport(self, transport_url: str, namespace: str) -> AsyncIterator[Transport]:
        async with open_transport(transport_url, namespace=namespace) as transport:
            yield transport

    @pytest.fixture
    async def client_transport(self, transport_url: str, namespace: str) -> AsyncIterator[Transport]:
        async with open_transport(transport_url, namespace=namespace) as transport:
            yield transport

    @pytest.fixture
    async def worker(self, worker_transport: Transport) -> AsyncIterator[Worker]:
        worker = Worker(worker_transport, scripted_dispatch)
        await worker.serve("din", SERVED)
        yield worker
        await worker.stop()

    @pytest.fixture
    def client(self, client_transport: Transport) -> BusClient:
        return BusClient(client_transport, requester=REQUESTER, default_timeout=5.0)

    # -- the contract ------------------------------------------------------------------------

    async def test_echo_round_trip(self, client: BusClient, worker: Worker) -> None:
        reply = await client.request("din.person", {"fin": FIN})
        assert reply.status == "ok", reply.error
        assert reply.id
        assert reply.data is not None
        assert reply.data["params"] == {"fin": FIN} and reply.data["service"] == "din.person"
        assert reply.meta.system == "din"
        assert (await client.call("din.vehicles", {"fin": FIN}))["service"] == "din.vehicles"

    async def test_concurrent_calls_each_get_their_own_reply(self, client: BusClient, worker: Worker) -> None:
        replies = await asyncio.gather(*(client.request("din.person", {"n": n}) for n in range(50)))
        assert [r.data["params"]["n"] for r in replies if r.data] == list(range(50))
        assert len({r.id for r in replies}) == 50

    async def test_a_request_no_queue_takes_reaches_the_catch_all_worker(
        self, client: BusClient, worker: Worker
    ) -> None:
        await worker.serve(UNROUTED, [])
        started = time.monotonic()
        for service in ("din.nonesuch", "vergiler.taxpayer", "no-such-system"):
            reply = await client.request(service, {"fin": FIN}, timeout=5.0)
            assert reply.status == "ok" and reply.data is not None, reply
            assert reply.data["service"] == service  # answered by the worker, not by the bus
        assert time.monotonic() - started < 1.0  # the "never hang" rule, not a benchmark

    async def test_with_no_worker_at_all_a_request_is_unavailable_at_once(
        self, client: BusClient, worker: Worker
    ) -> None:
        started = time.monotonic()
        reply = await client.request("vergiler.taxpayer", {"voen": "1234567890"}, timeout=5.0)
        elapsed = time.monotonic() - started
        assert reply.error is not None and reply.error.code == ErrorCode.UNAVAILABLE, reply
        assert reply.error.retryable and reply.error.source == "vergiler"
        assert "no worker" in reply.error.message
        assert elapsed < 1.0  # the "never hang" rule, not a benchmark

    async def test_slow_dispatch_ends_in_deadline_exceeded(self, client: BusClient, worker: Worker) -> None:
        started = time.monotonic()
        reply = await client.request("din.person", {"do": "sleep", "seconds": 5}, timeout=0.5)
        elapsed = time.monotonic() - started
        assert reply.error is not None and reply.error.code == ErrorCode.DEADLINE_EXCEEDED, reply
        assert reply.error.retryable
        assert 0.3 < elapsed < 1.0
        assert (await client.request("din.person", {})).status == "ok"

    async def test_stopping_a_worker_lets_the_requests_in_hand_finish_and_reply(
        self, client: BusClient, worker: Worker
    ) -> None:
        """Shutdown stops taking requests, then waits for those being handled (the consumer's grace)."""
        in_hand = [asyncio.create_task(client.request("din.person", {"do": "sleep", "seconds": 0.5, "n": i},
                                                      timeout=5.0)) for i in range(3)]
        await asyncio.sleep(0.25)  # all three are being handled
        await worker.stop()
        replies = await asyncio.gather(*in_hand)
        assert [r.status for r in replies] == ["ok"] * 3, replies
        assert [r.data["params"]["n"] for r in replies] == [0, 1, 2]
        after = await client.request("din.person", {}, timeout=0.5)
        assert after.error is not None and after.error.code in (ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED)

    async def test_malformed_body_gets_bad_request(self, client_transport: Transport, worker: Worker) -> None:
        reply = await client_transport.send("din.person", b"{not json", correlation_id="raw-1", timeout=5.0)
        assert reply.error is not None and reply.error.code == ErrorCode.BAD_REQUEST, reply
        # Parseable but incomplete: the error reply echoes the id it could read.
        body = b'{"id": "raw-2", "service": "din.person", "params": {}}'
        reply = await client_transport.send("din.person", body, correlation_id="raw-2", timeout=5.0)
        assert reply.error is not None and reply.error.code == ErrorCode.BAD_REQUEST
        assert reply.id == "raw-2"
        assert "requester" in reply.error.message

    async def test_typed_error_keeps_its_code(self, client: BusClient, worker: Worker) -> None:
        reply = await client.request("din.person", {"do": "not_found"})
        assert reply.error is not None and reply.error.code == ErrorCode.NOT_FOUND
        assert reply.error.source == "din"
        with pytest.raises(NotFound):
            await client.call("din.person", {"do": "not_found"})

    async def test_crash_is_internal_and_worker_keeps_serving(
        self, client: BusClient, worker: Worker, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="ehis")
        reply = await client.request("din.person", {"do": "crash", "fin": FIN})
        assert reply.error is not None and reply.error.code == ErrorCode.INTERNAL
        assert reply.id in reply.error.message
        assert "defect" not in reply.error.message  # internals stay in the log
        assert (await client.request("din.person", {"fin": FIN})).status == "ok"
        assert (await client.request("din.person", {"fin": FIN})).status == "ok"
        ours = [r for r in caplog.records if r.name.startswith("ehis")]
        assert any(r.exc_info and reply.id in r.getMessage() for r in ours)

    async def test_broker_user_reaches_dispatch(
        self, client: BusClient, worker: Worker, broker_user: str | None
    ) -> None:
        reply = await client.request("din.person", {})
        assert reply.data is not None and reply.data["broker_user"] == broker_user

    async def test_application_logs_carry_no_personal_data(
        self, client: BusClient, client_transport: Transport, worker: Worker, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="ehis")
        for action in ("echo", "not_found", "crash"):
            await client.request("din.person", {"do": action, "fin": FIN})
        await client.request("din.person", {"do": "sleep", "seconds": 2, "fin": FIN}, timeout=0.3)
        await client_transport.send("din.person", b'{"params": {"fin": "%s"}}' % FIN.encode(), correlation_id="x", timeout=2)
        ours = [r for r in caplog.records if r.name.startswith("ehis")]
        text = "\n".join(caplog.text.splitlines() + [r.getMessage() for r in ours])
        assert FIN not in text
        outcomes = [r.getMessage() for r in ours if "outcome=" in r.getMessage()]
        assert any("outcome=ok" in m and "caller=contract-tests" in m for m in outcomes)
        assert any("outcome=not_found" in m for m in outcomes)

    async def test_close_is_idempotent_and_fails_waiting_calls(
        self, client: BusClient, client_transport: Transport, worker: Worker
    ) -> None:
        pending = asyncio.create_task(client.request("din.person", {"do": "sleep", "seconds": 0.6}))
        await asyncio.sleep(0.1)
        await client.close()
        await client.close()
        reply = await asyncio.wait_for(pending, 1.0)
        assert reply.error is not None and reply.error.code == ErrorCode.UNAVAILABLE
