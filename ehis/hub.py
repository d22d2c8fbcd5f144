"""The hub's business logic for one request: identity, catalogue, policy, then the service.

The worker (ehis.bus.worker) hands every parsed request to `Hub.handle` and records the reply in
the exchange log (ehis.recording) before sending it. The order is the statute's: the caller is
the one the broker vouches for; a service must be in the statute's table (`unknown_service`);
the access policy is checked before anything else is said about the service (`forbidden`, never
`unavailable`), and before the cache (a hit never shows a caller what the policy forbids); a
service this hub does not serve is `not_served`, which is not retryable; then the parameters are
validated and the service answers through the one source-call path (ehis.calls).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from functools import partial
from typing import Protocol

from pydantic import BaseModel, ValidationError

from ehis import catalogue, discovery
from ehis.adapters.events import SourceStatus
from ehis.adapters.soap import Caller
from ehis.bus.envelope import Meta, Reply, Request, describe
from ehis.calls import CallContext, Deadline, Outcome, Part, SourceCalls
from ehis.errors import EhisError, Forbidden, InvalidInput, NotServed
from ehis.monitor.metrics import HubMetrics
from ehis.policy import AccessPolicy
from ehis.sources.spec import Service

PartRecorder = Callable[[Request, str, Part], Awaitable[None]]


class ServiceHandler(Protocol):
    """How one bus service is answered; `params` validates what the caller sent."""

    params: type[BaseModel]

    async def answer(self, params: BaseModel, ctx: CallContext) -> Outcome: ...


class SourceService:
    """A service answered by one call to its source."""

    def __init__(self, spec: Service, calls: SourceCalls, config: object = None):
        self.spec = spec
        self.params = spec.params
        self.calls = calls

    async def answer(self, params: BaseModel, ctx: CallContext) -> Outcome:
        return await self.calls.call(self.spec, params, ctx, part=ctx.composing)


class Hub:
    def __init__(
        self,
        handlers: Mapping[str, ServiceHandler],
        policy: AccessPolicy,
        metrics: HubMetrics | None = None,
        statuses: Callable[[], list[SourceStatus]] = list,
        parts: PartRecorder | None = None,
        user_prefix: str = "",
    ):
        self.handlers = dict(handlers)
        self.user_prefix = user_prefix
        self.policy = policy
        self.metrics = metrics
        self._statuses = statuses
        self._parts = parts

    @property
    def services(self) -> list[str]:
        """The services this hub answers."""
        return list(self.handlers)

    def source_statuses(self) -> list[SourceStatus]:
        return self._statuses()

    async def handle(self, request: Request, broker_user: str | None = None) -> Reply:
        """One reply per request. `broker_user` is the identity the broker vouches for (None on
        the embedded bus, where caller and worker share one process)."""
        started = time.perf_counter()
        meta = Meta(system=request.system)
        try:
            with self.metrics.track_in_flight() if self.metrics is not None else nullcontext():
                reply = await self._answer(request, broker_user, meta)
        except EhisError as exc:
            if exc.evidence is not None:
                meta.set_evidence(exc.evidence)
            reply = Reply.failure(request.id, exc, meta)
        reply.meta.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        return reply

    async def _answer(self, request: Request, broker_user: str | None, meta: Meta) -> Reply:
        caller = verified_caller(request, broker_user, self.user_prefix)
        if request.service in discovery.METASERVICES:
            return Reply.ok(request.id, self._discover(request, caller), meta)
        meta.system = catalogue.service(request.service).system
        self.policy.check(caller, request.service)
        handler = self.handlers.get(request.service)
        if handler is None:
            raise NotServed(f"{request.service} is in the statute but this hub does not serve it",
                            source=request.system)
        try:
            params = handler.params.model_validate(request.params)
        except ValidationError as exc:
            raise InvalidInput(f"invalid params for {request.service}: {describe(exc)}") from None
        who = Caller(caller, request.requester.user, request.requester.purpose)
        sink = partial(self._parts, request, caller) if self._parts is not None else None
        ctx = CallContext(who, Deadline.after(request.budget()), request.fresh, sink)
        outcome = await handler.answer(params, ctx)
        meta.cache = outcome.cache.value
        if outcome.answer.evidence is not None:
            meta.set_evidence(outcome.answer.evidence)
        error = outcome.error
        if error is not None:
            raise error
        assert outcome.data is not None
        return Reply.ok(request.id, outcome.data, meta)


    def _discover(self, request: Request, caller: str) -> dict:
        try:
            params = discovery.PARAMS[request.service].model_validate(request.params)
        except ValidationError as exc:
            raise InvalidInput(f"invalid params for {request.service}: {describe(exc)}") from None
        return discovery.answer(request.service, params, caller, set(self.handlers), self.policy)


def verified_caller(request: Request, broker_user: str | None, prefix: str = "") -> str:
    """The calling subsystem: on RabbitMQ the broker-validated user (less this deployment's user
    prefix), never a claim in the body."""
    claimed = request.requester.subsystem
    if broker_user is None:  # the embedded bus: caller and worker are one process
        return claimed
    if not broker_user.startswith(prefix) or broker_user[len(prefix):] != claimed:
        raise Forbidden(f"the request claims subsystem {claimed!r} but was sent by broker user {broker_user!r}")
    return claimed
