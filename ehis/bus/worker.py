"""The worker: bytes off the bus in, one reply out, whatever happens in between.

It owns the envelope rules (malformed -> bad_request, deadline -> deadline_exceeded, crash ->
internal) so the hub's `dispatch` deals only with valid requests in time. Every reply, whatever
its outcome, goes through the recorder (the exchange log) before it is sent. Application logs get
the request id, service, caller subsystem, outcome and duration: never the body or params,
which carry personal data (the exchange log, not this one, keeps what the statute asks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from ehis import tracing
from ehis.bus.envelope import Reply, Request, parse_request, request_id_of
from ehis.bus.transport import Consumer, Delivery, Transport
from ehis.errors import DeadlineExceeded, EhisError, InternalError

log = logging.getLogger(__name__)

#: The hub's business logic: a valid request and the broker-vouched caller identity -> a reply.
Dispatch = Callable[[Request, str | None], Awaitable[Reply]]


class Recorder(Protocol):
    """Accounts for a reply (exchange log, metrics) before it is sent; raising withholds it."""

    async def record(self, request: Request | None, reply: Reply, broker_user: str | None, seconds: float,
                     *, redelivered: bool = False, withheld: bool = False) -> None:
        ...

    async def recorded(self, request: Request) -> bool:
        """Whether the exchange log already holds a record of this request id."""
        ...

    def expecting(self) -> AbstractContextManager[None]:
        """Around handling one request: its record will follow."""
        ...


class Worker:
    def __init__(self, transport: Transport, dispatch: Dispatch, recorder: Recorder | None = None) -> None:
        self.transport = transport
        self.dispatch = dispatch
        self.recorder = recorder
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
        with tracing.consumer_span(delivery.headers) as span:  # a no-op unless tracing is on
            reply = await self.answer(delivery.body, delivery.broker_user, redelivered=delivery.redelivered)
            tracing.set_outcome(span, reply.error.code if reply.error else "ok")
        return reply.to_bytes()

    async def answer(self, body: bytes, broker_user: str | None, *, redelivered: bool = False) -> Reply:
        """The reply to one request body. Never raises (except cancellation).

        A redelivered request whose id is already recorded (its first worker recorded it, then died
        before acknowledging it) is answered again but not recorded twice: one record per id."""
        with self.recorder.expecting() if self.recorder is not None else nullcontext():
            return await self._answer(body, broker_user, redelivered)

    async def _answer(self, body: bytes, broker_user: str | None, redelivered: bool) -> Reply:
        started = time.monotonic()
        request: Request | None = None
        try:
            request = parse_request(body)
        except EhisError as exc:
            reply = Reply.failure(request_id_of(body), exc)
        else:
            tracing.request_taken(request.service, request.id, request.requester.subsystem)
            if redelivered and self.recorder is not None and await self.recorder.recorded(request):
                reply = await self._dispatch(request, broker_user)
                log.info("request %s redelivered and already recorded: answered again, not recorded twice",
                         request.id)
                _log_outcome(reply, request.service, request.requester.subsystem, started)
                return reply
            reply = await self._dispatch(request, broker_user)
        reply = await self._record(request, reply, broker_user, started, redelivered)
        service, caller = (request.service, request.requester.subsystem) if request else ("-", "-")
        _log_outcome(reply, service, caller, started)
        return reply

    async def _record(self, request: Request | None, reply: Reply, broker_user: str | None, started: float,
                      redelivered: bool = False) -> Reply:
        """The reply once recorded; if it cannot be recorded, a retryable error replaces it (and that
        error is recorded if anything still can be: never a record of data the caller did not get)."""
        if self.recorder is None:
            return reply
        try:
            await self.recorder.record(request, reply, broker_user, time.monotonic() - started,
                                       redelivered=redelivered)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the answer is withheld
            log.warning("the exchange log refused request id %s (%s); the answer is withheld",
                        reply.id or "-", type(exc).__name__)
            error = InternalError("the exchange could not be recorded, so it is not answered; try again",
                                  retryable=True)
            withheld = Reply.failure(reply.id, error, reply.meta)
            try:
                await self.recorder.record(request, withheld, broker_user, time.monotonic() - started,
                                           redelivered=redelivered, withheld=True)
            except Exception as again:  # noqa: BLE001
                log.error("request id %s: not even its refusal could be recorded (%s)", reply.id or "-",
                          type(again).__name__)
            return withheld
        return reply

    async def _dispatch(self, request: Request, broker_user: str | None) -> Reply:
        budget = request.budget()
        if budget <= 0:
            return _late(request, "the deadline passed before a worker took the request")
        deadline = asyncio.timeout(budget)
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
