"""Running the hub: a worker until stopped, or one request from the command line.

On `memory://` there is no broker to reach a worker in another process, so `send_request`
runs an embedded worker in its own process: the whole hub in one process, as DESIGN.md says.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ehis.admin import HubAdmin
from ehis import catalogue
from ehis.bootstrap import HubParts, open_hub
from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.bus.transport import UNROUTED, Transport, open_transport
from ehis.bus.worker import Worker
from ehis.config import Settings
from ehis.monitor.server import parse_listen, serve_admin
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
    try:
        yield worker
    finally:
        await worker.stop()


@dataclass(frozen=True)
class RunningHub:
    transport: Transport  # what callers in this process use
    parts: HubParts


@asynccontextmanager
async def embedded_hub(
    settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[RunningHub]:
    """Transport, hub and worker in this process."""
    async with AsyncExitStack() as stack:
        transport = await stack.enter_async_context(open_transport(settings.broker_url, namespace=settings.bus_namespace))
        parts = await stack.enter_async_context(open_hub(settings, http_transport=http_transport))
        await stack.enter_async_context(running_worker(parts, transport))
        yield RunningHub(transport, parts)


async def serve_forever(settings: Settings) -> None:
    """A worker, with /metrics, /health and /admin on `admin_listen` unless that is empty."""
    async with AsyncExitStack() as stack:
        running = await stack.enter_async_context(embedded_hub(settings))
        listen = parse_listen(settings.admin_listen)
        if listen is not None:
            admin = HubAdmin(running.parts, running.transport)
            app = create_admin_app(running.parts.metrics, admin, auth=settings.admin_auth)
            url = await stack.enter_async_context(serve_admin(app, *listen))
            log.info("admin page, metrics and health on %s/admin", url)
        log.info("worker serving %s on %s", ", ".join(running.parts.hub.services) or "nothing",
                 redacted(settings.broker_url))
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
            transport = (await stack.enter_async_context(embedded_hub(settings))).transport
        else:
            transport = await stack.enter_async_context(open_transport(settings.broker_url, namespace=settings.bus_namespace))
        client = BusClient(transport, requester=requester, default_timeout=settings.request_timeout)
        return await client.request(service, params, timeout=timeout, fresh=fresh)
