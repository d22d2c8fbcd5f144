"""The push message both sides build the same way: a source (or its simulator) sending events to
the hub's inbound endpoint, and the hub reading them (ehis/contracts/schemas/events.xsd).

A push is an X-Road request whose client is the source (its member, subsystem `events`) and
whose service is the ministry's `PushEvents`; the hub's answer echoes the headers, adds the
request hash, and is signed by the operator. A poll is an ordinary request of the hub to the
source's `GetChangesSince`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ehis.contracts import xroad

PUSH = "PushEvents"
CHANGES = "GetChangesSince"
PUSH_SUBSYSTEM = "events"  # the source's subsystem that sends events
HUB_SUBSYSTEM = "ehis"  # the ministry's subsystem that receives them
PUSH_PATH = "/events"  # the inbound endpoint: <events_listen>/events/<system>
MAX_PUSH = 100  # events in one push (the contracts' PushEvents maxOccurs)
SERVICE_VERSION = "v1"


@dataclass(frozen=True)
class Ministry:
    """The hub's X-Road identity, to which sources push (Settings.xroad_instance, client_member_*)."""

    instance: str = "AZ"
    member_class: str = "GOV"
    member_code: str = "EMSN"


def push_headers(system: str, ministry: Ministry, *, member_class: str = "GOV",
                 member_code: str | None = None) -> xroad.RequestHeaders:
    """The headers of one push from `system` (its X-Road member code, by default the system code)."""
    return xroad.RequestHeaders(
        client=xroad.XRoadId("SUBSYSTEM", ministry.instance, member_class, member_code or system, PUSH_SUBSYSTEM),
        service=xroad.XRoadId("SERVICE", ministry.instance, ministry.member_class, ministry.member_code,
                              HUB_SUBSYSTEM, PUSH, SERVICE_VERSION),
        id=str(uuid.uuid4()),
    )


def push_url(base: str, system: str) -> str:
    """Where `system` pushes, given the hub's events URL (Settings.hub_events_url)."""
    return f"{base.rstrip('/')}/{system}"
