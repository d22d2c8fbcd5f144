"""The caller's side of the bus: build a request, send it, always get a reply back.

`request` never raises for a remote condition (the reply says what went wrong); `call` is the
same with the typed error raised, for code that prefers exceptions.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError

from ehis.bus.envelope import Reply, Request, Requester, describe
from ehis.bus.transport import Transport
from ehis.errors import BadRequest


class BusClient:
    """Requests over one transport; `async with` connects it and closes it after."""

    def __init__(self, transport: Transport, *, requester: Requester | None = None, default_timeout: float = 10.0):
        self.transport = transport
        self.requester = requester
        self.default_timeout = default_timeout

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
        return await self.transport.call(request, timeout)

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
