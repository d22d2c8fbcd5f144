"""Scatter-gather for composite services: several source calls at once under one deadline.

Each part goes through the same path as a single request (the one source call: cache and
coalescing, guard, adapter, mapper) and is recorded as an exchange of its own, linked to the
composite's request. Before a part is asked, the caller must be allowed it by the access policy:
a composite never hands a caller what it could not ask for itself. Parts end a little before
the caller's deadline, so the composite still has time to answer with what it has; a part that
failed or ran out of time is reported with its error code, never silently left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ehis.calls import CallContext, Deadline, Outcome
from ehis.composites.models import Part, PartState
from ehis.errors import DeadlineExceeded, EhisError, Forbidden, NotServed, error_for
from ehis.policy import AccessPolicy
from ehis.sources import services
from ehis.sources.spec import Service

COMPOSE_MARGIN_S = 0.1  # kept from the deadline to compose and record the composite's answer


@dataclass(frozen=True)
class Ask:
    """One part to ask: a service with its params (by the bus names callers use)."""

    service: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Result:
    """What one part brought: the data (the canonical model as JSON), or why it did not."""

    part: Part
    data: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.part.state is PartState.OK

    def error(self) -> EhisError:
        """The typed error this part ended in, for a composite that cannot answer without it."""
        part = self.part
        return error_for(part.error_code or "internal", f"{part.service}: {part.message or part.state.value}",
                         source=part.service.split(".")[0])


class Gatherer:
    """Asks the parts of one composite request; built per request by the composite handler."""

    def __init__(self, handlers: Mapping[str, Any], policy: AccessPolicy, ctx: CallContext):
        self.handlers = handlers  # the hub's own: a part is answered exactly as a request for it would be
        self.policy = policy
        self.ctx = CallContext(ctx.caller, Deadline(ctx.deadline.at - COMPOSE_MARGIN_S), ctx.fresh, ctx.record_part,
                               composing=True)

    async def ask(self, asks: Mapping[str, Ask]) -> dict[str, Result]:
        """Every part at once; keyed as `asks` is. Never raises for a part's failure."""
        names = list(asks)
        results = await asyncio.gather(*(self._one(asks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def one(self, ask: Ask) -> Result:
        return await self._one(ask)

    async def _one(self, ask: Ask) -> Result:
        spec = services().get(ask.service)
        if not self.policy.allows(self.ctx.caller.subsystem, ask.service):
            return _refused(ask, Forbidden(f"the caller may not ask {ask.service}"))
        handler = self.handlers.get(ask.service)
        if spec is None or handler is None:
            return _refused(ask, NotServed(f"{ask.service} is not served by this hub"))
        try:
            params = spec.params.model_validate(dict(ask.params))
            remaining = self.ctx.deadline.remaining()
            if remaining <= 0:
                raise DeadlineExceeded(f"no time was left to ask {ask.service}", source=spec.system)
            async with asyncio.timeout(remaining):
                outcome = await handler.answer(params, self.ctx)
        except TimeoutError:
            return _refused(ask, DeadlineExceeded(f"{ask.service} had not answered by the deadline",
                                                  source=spec.system))
        except EhisError as exc:
            return _refused(ask, exc)
        return _answered(ask, spec, outcome)


def _answered(ask: Ask, spec: Service, outcome: Outcome) -> Result:
    evidence = outcome.answer.evidence
    error = outcome.error
    state = PartState.OK if error is None else PartState.NOT_FOUND if error.code == "not_found" else PartState.FAILED
    part = Part(service=ask.service, state=state, error_code=None if error is None else error.code.value,
                cache=outcome.cache.value, signed_by=evidence.signer if evidence else None,
                evidence=evidence.digest if evidence else None, endpoint=evidence.endpoint if evidence else None)
    return Result(part, outcome.data)


def _refused(ask: Ask, error: EhisError) -> Result:
    evidence = error.evidence
    state = PartState.NOT_FOUND if error.code == "not_found" else PartState.FAILED
    return Result(Part(service=ask.service, state=state, error_code=error.code.value, message=error.message[:200],
                       signed_by=evidence.signer if evidence else None,
                       evidence=evidence.digest if evidence else None), None)
