"""The hub's business logic for one request: identity, policy, cache, guarded source call, mapping.

The worker (ehis.bus.worker) hands every parsed request to `Hub.handle` and records the reply
in the exchange log (ehis.recording) before sending it. The order here is the statute's: the
caller's identity is the one the broker vouches for, the access policy is checked before the
cache (a cache hit never shows a caller what the policy forbids), and the source is asked only
when no fresh answer is cached, through its guard (deadline, retries, breaker, bulkhead).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ehis import catalogue
from ehis.adapters.events import SourceStatus
from ehis.adapters.resilience import SourceGuard
from ehis.adapters.soap import CallContext, SoapAdapter
from ehis.bus.envelope import Meta, Reply, Request, describe
from ehis.cache import CachedAnswer, ResponseCache
from ehis.errors import EhisError, Forbidden, InvalidInput, NotFound, SourceUnavailable
from ehis.monitor.metrics import HubMetrics
from ehis.policy import AccessPolicy

AFTER_CALL_S = 0.02  # kept from the caller's budget for mapping and recording after the source call


@dataclass(frozen=True)
class SourceLink:
    """A built source system as the hub reaches it: its adapter behind its guard."""

    adapter: SoapAdapter
    guard: SourceGuard


class Hub:
    def __init__(
        self,
        sources: Mapping[str, SourceLink],
        policy: AccessPolicy,
        cache: ResponseCache,
        metrics: HubMetrics | None = None,
    ):
        self.sources = dict(sources)
        self.policy = policy
        self.cache = cache
        self.metrics = metrics

    @property
    def services(self) -> list[str]:
        """The services this hub answers: built in the catalogue and with an adapter."""
        return [name for name, s in catalogue.SERVICES.items() if s.built and s.system in self.sources]

    def source_statuses(self) -> list[SourceStatus]:
        return [link.guard.status() for link in self.sources.values()]

    async def handle(self, request: Request, broker_user: str | None = None) -> Reply:
        """One reply per request. `broker_user` is the identity the broker vouches for (None on
        the embedded bus, where caller and worker share one process)."""
        started = time.perf_counter()
        meta = Meta(system=request.system)
        try:
            with self.metrics.track_in_flight() if self.metrics is not None else nullcontext():
                reply = await self._answer(request, broker_user, meta)
        except EhisError as exc:
            reply = Reply.failure(request.id, exc, meta)
        reply.meta.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        return reply

    async def _answer(self, request: Request, broker_user: str | None, meta: Meta) -> Reply:
        caller = verified_caller(request, broker_user)
        service = catalogue.service(request.service)
        self.policy.check(caller, service.name)
        link = self.sources.get(service.system)
        if not service.built or link is None:
            raise SourceUnavailable(f"{service.name} is not served by this hub yet", source=service.system)
        assert service.params is not None and service.operation is not None
        try:
            params = service.params.model_validate(request.params).model_dump(mode="json")
        except ValidationError as exc:
            raise InvalidInput(f"invalid params for {service.name}: {describe(exc)}") from None

        async def fetch() -> CachedAnswer:
            return await self._fetch(link, service, params, request)

        key = ResponseCache.key(service.name, params)
        answer, status = await self.cache.get_or_fetch(key, service.cache_ttl, fetch, fresh=request.fresh)
        meta.cache = status.value
        meta.signed_by, meta.fetched_at, meta.evidence = answer.signed_by, answer.fetched_at, answer.evidence
        if answer.error is not None:
            raise NotFound(answer.error.get("message", "not found"), source=service.system)
        assert answer.data is not None
        return Reply.ok(request.id, answer.data, meta)

    async def _fetch(self, link: SourceLink, service: catalogue.Service, params: dict[str, Any],
                     request: Request) -> CachedAnswer:
        """Ask the source once (through its guard); a not-found is an answer worth caching."""
        assert service.operation is not None and service.mapper is not None
        requester = request.requester

        async def attempt(budget: float):
            context = CallContext(requester.subsystem, requester.user, requester.purpose, deadline_s=budget)
            return await link.adapter.call(service.operation, params, context)

        started = time.perf_counter()
        outcome = "ok"
        try:
            answer = await link.guard.run(attempt, request.budget() - AFTER_CALL_S)
        except NotFound as exc:
            outcome = exc.code.value
            return CachedAnswer(error={"code": exc.code.value, "message": exc.message, "source": exc.source})
        except EhisError as exc:
            outcome = exc.code.value
            raise
        finally:
            if self.metrics is not None:
                self.metrics.source_call_done(service.system, outcome, time.perf_counter() - started)
        return CachedAnswer(
            data=service.mapper(answer.body).model_dump(mode="json"),
            signed_by=answer.signer,
            fetched_at=answer.fetched_at,
            evidence=answer.evidence_digest,
            source_message_id=answer.message_id,
        )


def verified_caller(request: Request, broker_user: str | None) -> str:
    """The calling subsystem: on RabbitMQ the broker-validated user, never a claim in the body."""
    claimed = request.requester.subsystem
    if broker_user is None:  # the embedded bus: caller and worker are one process
        return claimed
    if broker_user != claimed:
        raise Forbidden(f"the request claims subsystem {claimed!r} but was sent by broker user {broker_user!r}")
    return broker_user
