"""What the event tests share: a source pushing signed events as the contract says, and a subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import UTC, date, datetime
from typing import Any

import httpx

from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.bus.events import Received
from ehis.bus.transport import Transport
from ehis.contracts import xroad
from ehis.events.wire import Ministry, push_headers, push_url
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner
from ehis.sources import sources


def death(event_id: str, fin: str, day: date = date(2026, 11, 1)) -> dict[str, Any]:
    """An edliyye death event as the contract carries it."""
    return {"id": event_id, "kind": "death", "occurredAt": datetime(2026, 11, 2, 9, 30, tzinfo=UTC), "fin": fin,
            "death": {"number": f"OL-2026-{abs(hash(event_id)) % 10_000_000:07d}", "date": day,
                      "registryOffice": "Bakı şəhəri Nəsimi rayonu"}}


def birth(event_id: str, child: str, mother: str | None = None, day: date = date(2026, 11, 3)) -> dict[str, Any]:
    """An edliyye birth event: the child's FIN is its subject."""
    act = {"fin": child, "number": f"AD-2026-{abs(hash(event_id)) % 10_000_000:07d}", "date": day,
           "registryOffice": "Bakı şəhəri Yasamal rayonu"}
    return {"id": event_id, "kind": "birth", "occurredAt": datetime(2026, 11, 3, 11, 0, tzinfo=UTC), "fin": child,
            "birth": act | ({"mother": mother} if mother else {})}


def push_body(pki: Pki, system: str, events: list[dict[str, Any]], *, signer: str | None = None,
              member_code: str | None = None) -> bytes:
    """A push as `system` sends it, signed with `signer`'s key (by default the source's own)."""
    headers = push_headers(system, Ministry(), member_code=member_code)
    payload = sources()[system].codec.encode("PushEvents", {"event": events})
    envelope = xroad.envelope(headers.elements(), payload)
    return xroad.serialize(EnvelopeSigner(pki.identity(signer or system)).sign(envelope))


async def push(base_url: str, system: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(push_url(base_url + "/events", system), content=body,
                               headers={"Content-Type": "text/xml; charset=utf-8"})


async def take(transport: Transport, subsystem: str, count: int, *, within: float = 5.0,
               ack: bool = True) -> list[Received]:
    """The next `count` events `subsystem` receives (acknowledged unless `ack` is False)."""
    client = BusClient(transport, requester=Requester(subsystem=subsystem, user="test", purpose="events"))
    return await take_from(client.events(), count, within=within, ack=ack)


async def take_from(stream: AsyncGenerator[Received, None], count: int, *, within: float = 5.0,
                    ack: bool = True) -> list[Received]:
    """The next `count` events of `stream` (closed afterwards), acknowledged unless `ack` is False."""
    got: list[Received] = []
    if count == 0:
        await stream.aclose()
        return got
    async with asyncio.timeout(within), aclosing(stream):
        async for received in stream:
            got.append(received)
            if ack:
                await received.ack()
            if len(got) == count:
                break
    return got


async def nothing_for(transport: Transport, subsystem: str, seconds: float = 0.5) -> bool:
    """True when `subsystem` receives no event for `seconds`."""
    try:
        await take(transport, subsystem, 1, within=seconds, ack=False)
    except TimeoutError:
        return True
    return False
