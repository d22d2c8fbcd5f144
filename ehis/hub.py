"""The hub's business logic for one request: catalogue, access policy, source call, mapping.

The worker (ehis.bus.worker) hands every parsed request to `Hub.handle`; it is transport-blind,
so the same object serves memory:// and amqp://.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from pydantic import ValidationError

from ehis import catalogue
from ehis.adapters.soap import CallContext, SoapAdapter
from ehis.bus.envelope import Meta, Reply, Request, describe
from ehis.errors import EhisError, InvalidInput, SourceUnavailable
from ehis.policy import AccessPolicy


class Hub:
    def __init__(self, adapters: Mapping[str, SoapAdapter], policy: AccessPolicy):
        self.adapters = dict(adapters)
        self.policy = policy

    @property
    def services(self) -> list[str]:
        """The services this hub answers: built in the catalogue and with an adapter."""
        return [name for name, s in catalogue.SERVICES.items() if s.built and s.system in self.adapters]

    async def handle(self, request: Request, broker_user: str | None = None) -> Reply:
        """One reply per request. `broker_user` is the identity the broker vouches for; the
        access policy checks the subsystem named in the request until per-subsystem broker
        users exist (the exchange-log and policy issue makes the worker trust only this)."""
        started = time.perf_counter()
        meta = Meta(system=request.system)
        try:
            reply = await self._answer(request, meta)
        except EhisError as exc:
            reply = Reply.failure(request.id, exc, meta)
        reply.meta.duration_ms = _ms_since(started)
        return reply

    async def _answer(self, request: Request, meta: Meta) -> Reply:
        service = catalogue.service(request.service)
        self.policy.check(request.requester.subsystem, service.name)
        adapter = self.adapters.get(service.system)
        if not service.built or adapter is None:
            raise SourceUnavailable(f"{service.name} is not served by this hub yet", source=service.system)
        assert service.params is not None and service.mapper is not None and service.operation is not None
        try:
            params = service.params.model_validate(request.params)
        except ValidationError as exc:
            raise InvalidInput(f"invalid params for {service.name}: {describe(exc)}") from None
        context = CallContext(
            subsystem=request.requester.subsystem,
            user=request.requester.user,
            purpose=request.requester.purpose,
            deadline_s=request.remaining(),
        )
        answer = await adapter.call(service.operation, params.model_dump(), context)
        data = service.mapper(answer.body).model_dump(mode="json")
        meta.cache = "miss"
        meta.signed_by = answer.signer
        meta.fetched_at = answer.fetched_at
        return Reply.ok(request.id, data, meta)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
