"""Events in a running worker, from Settings: the store, the bus, the hub's loops, the inbound endpoint."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from ehis.bootstrap import HubParts
from ehis.bus.events import EventBus, open_event_bus
from ehis.config import Settings
from ehis.events.hub import EventHub
from ehis.events.inbound import Inbound, PushSource
from ehis.events.metrics import EventMetrics
from ehis.events.store import EventStore, open_event_store
from ehis.events.wire import Ministry
from ehis.monitor.server import serve_admin
from ehis.policy import AccessPolicy
from ehis.sources import sources

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningEvents:
    hub: EventHub
    store: EventStore
    bus: EventBus
    inbound_url: str | None  # where sources push, when this worker serves the endpoint
    subscribers: list[str]  # the subsystems with an event queue


def receivers(settings: Settings) -> dict[str, list[str]]:
    """Each subsystem's queue bindings: its event_access patterns (a subsystem with none has no queue)."""
    return {subsystem: sorted(patterns) for subsystem, patterns in settings.event_access.items() if patterns}


@asynccontextmanager
async def running_events(settings: Settings, parts: HubParts, *, inbound: bool = True) -> AsyncIterator[RunningEvents]:
    """Pollers for the served sources that are polled, the outbox publisher, and (`inbound`, with
    `events_listen` set) the endpoint the served sources that push send to. Stops them on exit."""
    served = {code: parts.calls.links[code] for code in parts.calls.links}
    feeds = {code: sources()[code] for code in served if sources()[code].events is not None}
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_event_store(settings.database))
        bus = await stack.enter_async_context(open_event_bus(settings.broker_url, namespace=settings.bus_namespace))
        await bus.declare(receivers(settings))
        hub = EventHub(store, bus, AccessPolicy(settings.event_access), parts.recorder,
                       EventMetrics(parts.metrics.registry), cache=parts.calls.cache,
                       poll_interval=settings.event_poll_interval, catch_up_interval=settings.event_catch_up_interval,
                       batch=settings.event_batch, lease_ttl=settings.event_lease)
        hub.start(list(feeds.values()), parts.calls)  # every event source is read; pushing ones to catch up
        stack.push_async_callback(hub.stop)
        pushing = {code: PushSource(s, next(iter(served[code].values())))
                   for code, s in feeds.items() if s.events and s.events.mode == "push"}
        url = None
        if inbound and pushing and (sock := _bind_events(settings.events_listen)) is not None:
            signer = next(iter(pushing.values())).link.adapter.signer
            ministry = Ministry(settings.xroad_instance, settings.client_member_class, settings.client_member_code)
            url = await stack.enter_async_context(serve_admin(Inbound(hub, pushing, signer, ministry).app(), sock=sock))
            log.info("events: %s push to %s/events", ", ".join(pushing), url)
        yield RunningEvents(hub, store, bus, url, list(receivers(settings)))


def _bind_events(listen: str) -> socket.socket | None:
    """The inbound endpoint's socket (ehis.runtime.bind_setting: a problem is one line)."""
    from ehis.runtime import bind_setting

    return bind_setting("events_listen", listen, (
        f"the events port {listen} is in use (another `ehis serve` on this host?): give this one another "
        "with EHIS_EVENTS_LISTEN ('' for none: then it takes no pushes, and other workers do)"))
