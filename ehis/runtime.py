"""Running the hub: a worker until stopped, or one request from the command line.

On `memory://` there is no broker to reach a worker in another process, so `send_request`
runs an embedded worker in its own process: the whole hub in one process, as DESIGN.md says.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ehis import catalogue
from ehis.admin import HubAdmin
from ehis.bootstrap import ConfigurationError, HubParts, open_hub
from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.bus.transport import UNROUTED, Transport, open_transport
from ehis.bus.worker import Worker
from ehis.config import Settings
from ehis.events.wiring import RunningEvents, running_events
from ehis.monitor.server import bind_listen, serve_admin
from ehis.monitor.web import create_admin_app

log = logging.getLogger(__name__)


def is_embedded(url: str) -> bool:
    return urlsplit(url).scheme == "memory"


def redacted(url: str) -> str:
    """The broker URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


@asynccontextmanager
async def running_worker(parts: HubParts, transport: Transport) -> AsyncIterator[Worker]:
    """A worker consuming one queue per source system the hub serves, and the catch-all queue
    (unknown and unserved services), so that every request gets a reply and a record."""
    worker = Worker(transport, parts.hub.handle, parts.recorder)
    by_system: dict[str, list[str]] = defaultdict(list)
    for name in parts.hub.services:  # one queue per source system, and one for the composites
        by_system[catalogue.SERVICES[name].system].append(name)
    for system, services in by_system.items():
        await worker.serve(system, services)
    await worker.serve(UNROUTED, [])
    gauge = asyncio.create_task(_watch_dead_letters(parts, transport), name="dead-letter-gauge")
    try:
        yield worker
    finally:
        gauge.cancel()
        await asyncio.gather(gauge, return_exceptions=True)
        await worker.stop()


async def _watch_dead_letters(parts: HubParts, transport: Transport, every: float = 15.0) -> None:
    """Keep `ehis_dead_letters` current: a growing dead-letter queue means requests expire unanswered."""
    while True:
        try:
            depth = await transport.dead_letters()
        except Exception as exc:  # noqa: BLE001 - the broker is away: the gauge keeps its last value
            log.debug("dead-letter depth not read: %s", type(exc).__name__)
        else:
            if depth is None:
                return
            parts.metrics.dead_letters.set(depth)
        await asyncio.sleep(every)


@dataclass(frozen=True)
class RunningHub:
    transport: Transport  # what callers in this process use
    parts: HubParts
    events: RunningEvents | None = None


@asynccontextmanager
async def embedded_hub(
    settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None, events: bool = True
) -> AsyncIterator[RunningHub]:
    """Transport, hub and worker in this process; with `events`, the pollers, the publisher and
    the inbound endpoint too (a one-shot request needs none of them)."""
    async with AsyncExitStack() as stack:
        transport = await stack.enter_async_context(open_transport(settings.broker_url, namespace=settings.bus_namespace,
                                                                   queue_type=settings.queue_type))
        parts = await stack.enter_async_context(open_hub(settings, http_transport=http_transport))
        await stack.enter_async_context(running_worker(parts, transport))
        running_events_ = await stack.enter_async_context(running_events(settings, parts)) if events else None
        yield RunningHub(transport, parts, running_events_)


class ServeError(Exception):
    """`ehis serve` cannot go on; the message says what is wrong and what to do (one line)."""


def bind_setting(setting: str, listen: str, busy: str) -> socket.socket | None:
    """The socket of `setting` (host:port, '' = none), bound before anything else starts: a
    malformed address, a port in use (`busy` says what to do) or another failure is one plain line."""
    try:
        return bind_listen(listen)
    except ValueError as exc:
        raise ConfigurationError(f"{setting}: {exc}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(busy) from None
        raise ServeError(f"cannot listen on {setting} {listen!r}: {exc.strerror or exc}") from None


def bind_admin(listen: str) -> socket.socket | None:
    """The admin socket (/metrics, /health, /admin)."""
    return bind_setting("admin_listen", listen, (
        f"the admin port {listen} is in use (another `ehis serve` on this host?): give this one another "
        "with --admin-listen 127.0.0.1:8712 (or EHIS_ADMIN_LISTEN; '' for none), or run several workers "
        "behind one admin endpoint with `ehis serve --processes N`"))


def describe_served(services: list[str]) -> str:
    """'20 sources (din, vergiler, …; 45 services, 2 composites)': what a worker's start-up log says it serves."""
    systems = [catalogue.SERVICES[n].system if n in catalogue.SERVICES else n.split(".", 1)[0] for n in services]
    composites = systems.count(catalogue.COMPOSITE)
    codes = [code for code in dict.fromkeys(systems) if code != catalogue.COMPOSITE]
    if not codes and not composites:
        return "no source"
    also = f", {composites} composite{'s' if composites != 1 else ''}" if composites else ""
    return (f"{len(codes)} source{'s' if len(codes) != 1 else ''} ({', '.join(codes)}; "
            f"{len(services) - composites} services{also})")


async def serve_forever(settings: Settings) -> None:
    """A worker, with /metrics, /health and /admin on `admin_listen` unless that is empty."""
    sock = bind_admin(settings.admin_listen)
    async with AsyncExitStack() as stack:
        if sock is not None:
            stack.callback(sock.close)  # serve_admin owns it once started; closing twice is harmless
        running = await stack.enter_async_context(embedded_hub(settings))
        admin = ""
        if sock is not None:
            provider = HubAdmin(running.parts, running.transport, running.events)
            app = create_admin_app(running.parts.metrics, provider, auth=settings.admin_auth)
            url = await stack.enter_async_context(serve_admin(app, sock=sock))
            admin = f"; admin page, metrics and health on {url}/admin"
        log.info("worker serving %s on %s%s", describe_served(running.parts.hub.services),
                 redacted(settings.broker_url), admin)
        try:
            await asyncio.Event().wait()
        finally:
            log.info("worker stopping: finishing the requests in hand")


async def send_request(
    settings: Settings,
    service: str,
    params: dict[str, Any],
    requester: Requester,
    *,
    timeout: float | None = None,
    fresh: bool = False,
) -> Reply:
    async with AsyncExitStack() as stack:
        if is_embedded(settings.broker_url):
            transport = (await stack.enter_async_context(embedded_hub(settings, events=False))).transport
        else:
            transport = await stack.enter_async_context(open_transport(settings.broker_url, namespace=settings.bus_namespace))
        client = BusClient(transport, requester=requester, default_timeout=settings.request_timeout)
        return await client.request(service, params, timeout=timeout, fresh=fresh)
