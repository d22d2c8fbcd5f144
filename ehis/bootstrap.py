"""Wires the hub from Settings: one place, each dependency a parameter with its production
default, so tests call the same functions with their own parts (cosmicpython's bootstrap)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from ehis.adapters.resilience import SourceGuard
from ehis.adapters.soap import SoapAdapter
from ehis.audit.log import ExchangeLog, open_log
from ehis.audit.outages import OutageStore, open_outages
from ehis.cache import open_cache
from ehis.catalogue import built_systems
from ehis.config import Settings, SourcePolicy
from ehis.hub import Hub, SourceLink
from ehis.monitor.metrics import HubMetrics
from ehis.policy import AccessPolicy
from ehis.recording import Recorder
from ehis.security.pki import Pki, ensure_pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier


@dataclass(frozen=True)
class HubParts:
    """What a worker process runs: the hub, its recorder, and what monitoring reads."""

    hub: Hub
    recorder: Recorder
    metrics: HubMetrics
    log: ExchangeLog | None
    outages: OutageStore


def source_client(policy: SourcePolicy, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """One connection pool per source, with that source's connect and read timeouts."""
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    limits = httpx.Limits(max_connections=policy.max_concurrency, max_keepalive_connections=policy.max_concurrency)
    return httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport)


@asynccontextmanager
async def open_hub(
    settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None, pki: Pki | None = None
) -> AsyncIterator[HubParts]:
    """The hub with everything it owns opened, and closed again on exit.

    `http_transport` replaces the network under every source client (tests and the demo pass
    the simulators' `httpx.ASGITransport`).
    """
    pki = pki or ensure_pki(settings.pki_path)
    signer = EnvelopeSigner(pki.operator())
    verifier = EnvelopeVerifier(pki.ca_file)
    async with AsyncExitStack() as stack:
        if settings.exchange_log:  # the log's own outage store shares its connections
            log = await stack.enter_async_context(open_log(settings.database))
            outages = log.outages
        else:
            log, outages = None, await stack.enter_async_context(open_outages(settings.database))
        cache = open_cache(settings.cache_url, max_entries=settings.cache_max_entries,
                           negative_ttl=settings.negative_ttl)
        stack.push_async_callback(cache.close)
        sources: dict[str, SourceLink] = {}
        for system in built_systems():
            policy = settings.source_policy(system.code)
            http = source_client(policy, http_transport)
            stack.push_async_callback(http.aclose)
            adapter = SoapAdapter(system, endpoint=settings.source_url(system.code), http=http, signer=signer,
                                  verifier=verifier, timeout=policy.read_timeout)
            guard = SourceGuard(system.code, policy, on_change=outages.breaker_changed)
            sources[system.code] = SourceLink(adapter, guard)
        metrics = HubMetrics(sources=lambda: [link.guard.status() for link in sources.values()],
                             callers=settings.access.keys())
        hub = Hub(sources, AccessPolicy(settings.access), cache, metrics)
        yield HubParts(hub, Recorder(log, metrics), metrics, log, outages)
