"""One source call: cache (with single-flight), guard, adapter, mapper, as one awaitable.

Every way the hub asks a source goes through `SourceCalls.call`: a single request, each part of
a composite, a lookup one service needs before another (the district before a household
certificate), each bureau of a credit report. It returns the mapped answer *with its evidence*
(the certificate that verified the signed answer and its digest), and so does a signed
business answer such as "not found", which is cached and reported with its evidence too.

The deadline is the caller's, one `Deadline` for the whole request; each call gets what is left
of it, and the guard divides that between attempts.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from ehis import tracing
from ehis.adapters.resilience import SourceGuard
from ehis.adapters.soap import Caller, SoapAdapter
from ehis.cache import CachedAnswer, CacheStatus, ResponseCache
from ehis.errors import EhisError, InternalError, NotFound, NotServed
from ehis.evidence import Evidence
from ehis.monitor.metrics import HubMetrics
from ehis.sources.spec import Service

AFTER_CALL_S = 0.02  # kept from the caller's budget for mapping and recording after the source call


class Deadline:
    """A point on the monotonic clock by which the reply must leave the worker."""

    __slots__ = ("at",)

    def __init__(self, at: float):
        self.at = at

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


@dataclass(frozen=True)
class Part:
    """One source call made as part of a request (a composite's part, a routing lookup, a bureau),
    recorded in the exchange log as its own exchange linked to the request."""

    service: str
    endpoint: str | None
    subject: str | None
    error_code: str | None  # None: the source answered with data
    cache: str | None
    duration_ms: float
    evidence: Evidence | None


PartSink = Callable[[Part], Awaitable[None]]


@dataclass(frozen=True)
class CallContext:
    """What every source call of one request shares: who asks, by when, whether a stored answer
    will do, and where the parts of a multi-call service are recorded."""

    caller: Caller
    deadline: Deadline
    fresh: bool = False
    record_part: PartSink | None = None
    composing: bool = False  # asked as a part of a composite: every source call is a part record


class EvidenceSink(Protocol):
    """Where a source in full-evidence mode has its signed answers kept (ehis.audit.evidence_store)."""

    async def keep(self, source: str, evidence: Evidence) -> None: ...


@dataclass(frozen=True)
class SourceLink:
    """One endpoint of a source as the hub reaches it: its adapter behind its guard, and where
    its signed answers are kept (None: the log keeps their digest only)."""

    adapter: SoapAdapter
    guard: SourceGuard
    evidence: EvidenceSink | None = None


@dataclass(frozen=True)
class Outcome:
    """A source's answer: `data` (the canonical model as JSON) or `error` (a signed not-found),
    with the evidence of the signed answer and how the cache served it."""

    answer: CachedAnswer
    cache: CacheStatus

    @property
    def data(self) -> dict[str, Any] | None:
        return self.answer.data

    @property
    def error(self) -> EhisError | None:
        return self.answer.exception()


class SourceCalls:
    def __init__(self, links: Mapping[str, Mapping[str, SourceLink]], cache: ResponseCache,
                 metrics: HubMetrics | None = None):
        self.links = links  # system -> endpoint name -> link
        self.cache = cache
        self.metrics = metrics

    def endpoints(self, system: str) -> list[str]:
        return list(self.links.get(system, {}))

    async def call(self, service: Service, params: BaseModel, ctx: CallContext, *,
                   endpoint: str | None = None, part: bool = False) -> Outcome:
        """The answer of `service` for `params` (from `endpoint`, or the source's only one).

        `part`: the call is one of several a request makes; it is recorded as an exchange of its
        own (linked to the request), whatever its outcome, before this returns or raises.
        """
        if not part or ctx.record_part is None:
            return await self._call(service, params, ctx, endpoint)
        started = time.perf_counter()
        try:
            outcome = await self._call(service, params, ctx, endpoint)
        except EhisError as exc:
            await ctx.record_part(Part(service.name, endpoint, service.subject_of(params), exc.code.value, None,
                                       _ms(started), exc.evidence))
            raise
        error = outcome.error
        await ctx.record_part(Part(service.name, endpoint, service.subject_of(params),
                                   error.code.value if error else None, outcome.cache.value, _ms(started),
                                   outcome.answer.evidence))
        return outcome

    async def _call(self, service: Service, params: BaseModel, ctx: CallContext, endpoint: str | None) -> Outcome:
        link = self._link(service.system, endpoint)
        name = link.adapter.name
        key = self.cache.key(service.name if name == service.system else f"{service.name}@{name}",
                             params.model_dump(mode="json"))

        async def fetch() -> CachedAnswer:
            return await self._fetch(link, service, params, ctx)

        with tracing.span(f"{service.name} cache", service=service.name, endpoint=name) as span:
            answer, status = await self.cache.get_or_fetch(key, service.cache_ttl, fetch, fresh=ctx.fresh)
            tracing.set_attribute(span, "cache", status.value)
        return Outcome(answer, status)

    def _link(self, system: str, endpoint: str | None) -> SourceLink:
        links = self.links.get(system, {})
        if endpoint is None and len(links) == 1:
            return next(iter(links.values()))
        link = links.get(endpoint or "")
        if link is None:
            raise NotServed(f"this hub serves no endpoint {endpoint or system!r} of {system}", source=system)
        return link

    async def _fetch(self, link: SourceLink, service: Service, params: BaseModel, ctx: CallContext) -> CachedAnswer:
        """Ask the source once, through its guard; a signed not-found is an answer worth caching."""

        attempts = 0
        name = link.adapter.name

        async def attempt(budget: float):
            nonlocal attempts
            attempts += 1
            with tracing.span(f"{name} attempt", source=service.system, endpoint=name, attempt=attempts):
                return await link.adapter.call(service, params, ctx.caller, budget)

        started = time.perf_counter()
        outcome = "ok"
        try:
            with tracing.span(f"{name} call", source=service.system, endpoint=name) as span:
                answer = await link.guard.run(attempt, ctx.deadline.remaining() - AFTER_CALL_S)
                tracing.set_attribute(span, "attempts", attempts)
        except NotFound as exc:
            outcome = exc.code.value
            exc.evidence = await _keep(link, service, exc.evidence)
            return CachedAnswer.from_error(exc)
        except EhisError as exc:
            outcome = exc.code.value
            exc.evidence = await _keep(link, service, exc.evidence)
            _overall(exc, attempts, time.perf_counter() - started)
            raise
        finally:
            if self.metrics is not None:
                self.metrics.source_call_done(service.system, outcome, time.perf_counter() - started)
        evidence = await _keep(link, service, answer.evidence)
        return CachedAnswer(data=service.mapper(answer.body).model_dump(mode="json"), evidence=evidence)


async def _keep(link: SourceLink, service: Service, evidence: Evidence | None) -> Evidence | None:
    """Keep the signed answer (full evidence) before anyone is answered from it; drop its bytes."""
    if evidence is None or evidence.signed is None:
        return evidence
    if link.evidence is not None:
        try:
            await link.evidence.keep(service.system, evidence)
        except Exception as exc:  # noqa: BLE001 - without its signed answer the exchange is not answered
            raise InternalError(f"the signed answer of {service.system} could not be kept ({type(exc).__name__});"
                                " try again", source=service.system, retryable=True) from None
    return evidence.without_bytes()


def _overall(exc: EhisError, attempts: int, seconds: float) -> None:
    """Say what happened over all the attempts, not only in the last one: "din did not answer
    within 5 s" after four attempts and 20 s would mislead whoever reads it."""
    if attempts > 1:
        exc.message = f"{attempts} attempts in {seconds:.1f} s failed; the last: {exc.message}"
        exc.args = (exc.message,)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
