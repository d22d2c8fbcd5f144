"""The worker: bytes off the bus in, one reply out, whatever happens in between.

It owns the envelope rules (malformed -> bad_request, deadline -> deadline_exceeded, crash ->
internal) so the hub's `dispatch` deals only with valid requests in time. Application logs get
the request id, service, caller subsystem, outcome and duration: never the body or params,
which carry personal data (the exchange log, not this one, keeps what the statute asks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ehis.bus.envelope import Reply, Request, parse_request, request_id_of
from ehis.bus.transport import Consumer, Delivery, Transport
from ehis.errors import DeadlineExceeded, EhisError, InternalError

log = logging.getLogger(__name__)

#: The hub's business logic: a valid request and the broker-vouched caller identity -> a reply.
Dispatch = Callable[[Request, str | None], Awaitable[Reply]]


class Worker:
    def __init__(self, transport: Transport, dispatch: Dispatch) -> None:
        self.transport = transport
        self.dispatch = dispatch
        self._consumers: list[Consumer] = []

    async def serve(self, queue: str, services: list[str]) -> None:
        """Start consuming `queue` for `services`; returns once requests flow (see `stop`)."""
        self._consumers.append(await self.transport.serve(services, queue, self.handle))

    async def stop(self) -> None:
        """Stop taking requests and finish the ones in hand."""
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.stop()

    async def handle(self, delivery: Delivery) -> bytes:
        return (await self.answer(delivery.body, delivery.broker_user)).to_bytes()

    async def answer(self, body: bytes, broker_user: str | None) -> Reply:
        """The reply to one request body. Never raises (except cancellation)."""
        started = time.monotonic()
        try:
            request = parse_request(body)
        except EhisError as exc:
            reply = Reply.failure(request_id_of(body), exc)
            _log_outcome(reply, "-", "-", started)
            return reply
        reply = await self._dispatch(request, broker_user)
        _log_outcome(reply, request.service, request.requester.subsystem, started)
        return reply

    async def _dispatch(self, request: Request, broker_user: str | None) -> Reply:
        remaining = request.remaining()
        if remaining <= 0:
            return _late(request, "the deadline passed before a worker took the request")
        deadline = asyncio.timeout(remaining)
        try:
            async with deadline:
                return await self.dispatch(request, broker_user)
        except TimeoutError:
            if deadline.expired():
                return _late(request, "the deadline passed while the request was handled")
            log.exception("dispatch let a timeout escape; request id %s service %s", request.id, request.service)
        except EhisError as exc:
            return Reply.failure(request.id, exc)
        except Exception:
            log.exception("dispatch crashed; request id %s service %s", request.id, request.service)
        return Reply.failure(request.id, InternalError(f"internal error; request id {request.id}"))


def _late(request: Request, message: str) -> Reply:
    return Reply.failure(request.id, DeadlineExceeded(message, source=request.system))

def _log_outcome(reply: Reply, service: str, caller: str, started: float) -> None:
    outcome = reply.error.code if reply.error else "ok"
    duration_ms = (time.monotonic() - started) * 1000
    log.info(
        "request %s service=%s caller=%s outcome=%s duration_ms=%.1f",
        reply.id or "-", service, caller, outcome, duration_ms,
    )
