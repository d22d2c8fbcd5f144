"""The caller's side of the bus: build a request, send it, always get a reply back.

`request` never raises for a remote condition (the reply says what went wrong); `call` is the
same with the typed error raised, for code that prefers exceptions, and `fetch` returns the
service's canonical model (a `Person` for din.person) instead of its JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

from pydantic import BaseModel, ValidationError

from ehis import tracing
from ehis.bus.envelope import Reply, Request, Requester, describe
from ehis.bus.events import Received, SeenEvents
from ehis.bus.transport import Transport, open_transport
from ehis.errors import BadRequest, UnknownService

if TYPE_CHECKING:
    from ehis.config import Settings

M = TypeVar("M", bound=BaseModel)


class BusClient:
    """Requests over one transport; `async with` connects it and closes it after."""

    def __init__(self, transport: Transport, *, requester: Requester | None = None, default_timeout: float = 10.0):
        self.transport = transport
        self.requester = requester
        self.default_timeout = default_timeout
        self._seen = SeenEvents()

    @classmethod
    def open(cls, url: str, *, requester: Requester, default_timeout: float | None = None,
             settings: Settings | None = None) -> BusClient:
        """A client of the hub at `url` (connected by `async with`).

        An amqp:// URL without a password logs in as the requester's subsystem (with this
        deployment's `broker_user_prefix`), its password read from the credentials file that
        `ehis broker setup` wrote (`broker_credentials`); the URL's path names the vhost.
        `settings` default to the environment and ehis.toml.
        """
        from ehis.bus.credentials import with_credentials
        from ehis.config import Settings

        settings = settings or Settings()
        login = with_credentials(url, requester.subsystem, credentials=settings.broker_credentials_path,
                                 prefix=settings.broker_user_prefix)
        return cls(open_transport(login, namespace=settings.bus_namespace), requester=requester,
                   default_timeout=settings.request_timeout if default_timeout is None else default_timeout)

    async def request(
        self,
        service: str,
        params: dict[str, Any],
        *,
        requester: Requester | None = None,
        timeout: float | None = None,
        fresh: bool = False,
    ) -> Reply:
        """The reply to one request: data, or an error reply saying what went wrong.

        Every request goes to the hub, an unknown service's too: the hub answers and records it.
        """
        request_id = str(uuid.uuid4())
        who = requester or self.requester
        if who is None:
            return Reply.failure(request_id, BadRequest("no requester: every request says who asks and why"))
        timeout = self.default_timeout if timeout is None else timeout
        try:
            request = Request.new(service, params, who, timeout, fresh=fresh)
        except ValidationError as exc:
            return Reply.failure(request_id, BadRequest(f"malformed request: {describe(exc)}"))
        with tracing.client_span(request.service, request.id) as span:
            reply = await self.transport.call(request, timeout)
            tracing.set_outcome(span, reply.error.code if reply.error else "ok")
        return reply

    async def call(
        self,
        service: str,
        params: dict[str, Any],
        *,
        requester: Requester | None = None,
        timeout: float | None = None,
        fresh: bool = False,
    ) -> dict[str, Any]:
        """The data of an ok reply; raises the typed `EhisError` an error reply describes."""
        reply = await self.request(service, params, requester=requester, timeout=timeout, fresh=fresh)
        return reply.result()

    @overload
    async def fetch(self, service: str, params: dict[str, Any], *, model: type[M], requester: Requester | None = None,
                    timeout: float | None = None, fresh: bool = False) -> M: ...

    @overload
    async def fetch(self, service: str, params: dict[str, Any], *, model: None = None,
                    requester: Requester | None = None, timeout: float | None = None,
                    fresh: bool = False) -> BaseModel: ...

    async def fetch(self, service: str, params: dict[str, Any], *, model: type[BaseModel] | None = None,
                    requester: Requester | None = None, timeout: float | None = None,
                    fresh: bool = False) -> BaseModel:
        """The data of an ok reply as the service's canonical model (`ehis.sources.service(name).model`,
        e.g. `ehis.mapping.models.Person` for din.person); raises the typed error an error reply describes.

        `model` names the class for type checkers (and for a service this installation has not built).
        """
        data = await self.call(service, params, requester=requester, timeout=timeout, fresh=fresh)
        if model is None:
            from ehis.sources import service as built

            spec = built(service)
            if spec is None:
                raise UnknownService(f"{service} has no canonical model here (a metaservice?): use call() for its data")
            model = spec.model
        return model.model_validate(data)

    async def events(self, *, subsystem: str | None = None, prefetch: int = 8,
                     seen: SeenEvents | None = None) -> AsyncIterator[Received]:
        """The events this subsystem receives, as they come, each to be acknowledged (`ack()`) once
        acted on, or rejected (`reject()`) to have it again later; unsettled ones come back.

        Delivery is at least once: an event the hub published twice (a worker died between the
        broker's confirm and its bookkeeping) is acknowledged and skipped here when `seen` (by
        default this client's memory of the last ids acknowledged) holds its id. The subsystem
        is the requester's; on RabbitMQ this client's login must be it (the queue is its own).
        """
        from ehis.bus.events import open_event_bus

        who = subsystem or (self.requester.subsystem if self.requester else None)
        if who is None:
            raise BadRequest("events(): no subsystem: give a requester or subsystem=")
        seen = seen if seen is not None else self._seen
        async with open_event_bus(self.transport.url, namespace=self.transport.namespace) as bus:
            async for received in bus.subscribe(who, prefetch=prefetch):
                if received.event.id in seen:
                    await received.ack()
                    continue
                received.on_ack(seen.add)
                yield received

    async def connect(self) -> None:
        await self.transport.connect()

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
