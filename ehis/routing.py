"""Services that one call to one endpoint cannot answer: several providers behind one contract.

- `FanOut`: every provider answers alike and the caller wants them all (the credit bureaus).
  All are asked at once under the caller's one deadline (or only the one the caller names), the
  answers are merged by the source package, and the reply says which providers answered and
  which did not, with the error code, never silently less.
- `ByDistrict`: each provider answers for the residents of its districts (the local executive
  authorities). The person's registered district comes from `din.person` (the same source call:
  cached, guarded, verified), and the request goes to the provider configured for that district,
  or to the default provider.

Every call is a part of the request: an exchange-log record of its own, linked to the request,
with its provider and its evidence. The district lookup's data never reaches the caller, so it
needs no access right of the caller's own; it is recorded all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from ehis.cache import CachedAnswer, CacheStatus
from ehis.calls import CallContext, Outcome, SourceCalls
from ehis.config import SourceSettings
from ehis.errors import EhisError, InvalidInput, NotServed, SourceUnavailable
from ehis.mapping.queries import FinQuery
from ehis.sources.spec import HandlerFactory, Service


@dataclass(frozen=True)
class ProviderResult:
    """One provider's part of a fan-out: its outcome, or the error that stopped it."""

    provider: str
    outcome: Outcome | None
    error: EhisError | None


Merge = Callable[[BaseModel, Sequence[ProviderResult]], BaseModel]
"""The request's params and every provider's result -> the canonical answer."""


class FanOut:
    def __init__(self, spec: Service, calls: SourceCalls, config: SourceSettings, *, merge: Merge,
                 choose: str):
        self.spec = spec
        self.params = spec.params
        self.calls = calls
        self.merge = merge
        self.choose = choose  # the params field naming one provider (None: all of them)

    async def answer(self, params: BaseModel, ctx: CallContext) -> Outcome:
        configured = self.calls.endpoints(self.spec.system)
        chosen = getattr(params, self.choose, None)
        if chosen is not None:  # by its endpoint name (kb-akb) or its short code (akb)
            named = {n: n for n in configured} | {n.removeprefix(f"{self.spec.system}-"): n for n in configured}
            if chosen not in named:
                short = ", ".join(n.removeprefix(f"{self.spec.system}-") for n in configured)
                raise InvalidInput(f"no {self.choose} {chosen!r}; configured: {short}", source=self.spec.system)
            chosen = named[chosen]
        targets = [chosen] if chosen is not None else configured
        results = await asyncio.gather(*(self._one(name, params, ctx) for name in targets))
        answered = [r for r in results if r.outcome is not None]
        if not answered:
            first = results[0].error
            if len(results) == 1 and first is not None:
                raise first
            failed = ", ".join(f"{r.provider} ({r.error.code if r.error else '?'})" for r in results)
            raise SourceUnavailable(f"no {self.spec.system} provider answered: {failed}", source=self.spec.system)
        if all(r.error is not None for r in answered):  # every provider said, signed, it holds nothing on it
            raise answered[0].error  # type: ignore[misc]
        data = self.merge(params, results).model_dump(mode="json")
        status = CacheStatus.HIT if all(r.outcome.cache is CacheStatus.HIT for r in answered) else CacheStatus.MISS
        return Outcome(CachedAnswer(data=data), status)

    async def _one(self, name: str, params: BaseModel, ctx: CallContext) -> ProviderResult:
        try:
            outcome = await self.calls.call(self.spec, params, ctx, endpoint=name, part=True)
        except EhisError as exc:
            return ProviderResult(name, None, exc)
        return ProviderResult(name, outcome, outcome.error)


def fan_out(merge: Merge, *, choose: str) -> HandlerFactory:
    """The `Service.handler` of a fan-out service (see `FanOut`)."""
    return lambda spec, calls, config: FanOut(spec, calls, config, merge=merge, choose=choose)


class ByDistrict:
    def __init__(self, spec: Service, calls: SourceCalls, config: SourceSettings):
        self.spec = spec
        self.params = spec.params
        self.calls = calls
        self.routes = {district: name for name, provider in config.providers.items()
                       for district in provider.districts}
        self.default = config.default_provider

    def provider_for(self, district: str) -> str:
        name = self.routes.get(district, self.default)
        if name is None:
            raise NotServed(f"no {self.spec.system} authority is configured for district {district} "
                            "and there is no default route", source=self.spec.system)
        return name

    async def answer(self, params: BaseModel, ctx: CallContext) -> Outcome:
        from ehis.sources import service

        lookup = service("din.person")
        if lookup is None or not self.calls.endpoints("din"):
            raise NotServed(f"{self.spec.name} is routed by din.person, which this hub does not serve",
                            source=self.spec.system)
        person = await self.calls.call(lookup, FinQuery(fin=params.fin), ctx, part=True)
        if person.error is not None:
            raise person.error
        assert person.data is not None
        district = person.data["address"]["district_code"]
        return await self.calls.call(self.spec, params, ctx, endpoint=self.provider_for(district), part=True)


def by_district() -> HandlerFactory:
    """The `Service.handler` of a service routed to the authority of the person's district."""
    return ByDistrict
