"""Wires the hub from Settings: one place, each dependency a parameter with its production
default, so tests call the same functions with their own parts (cosmicpython's bootstrap)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from ehis.adapters.resilience import SourceGuard
from ehis.adapters.soap import ClientIdentity, SoapAdapter
from ehis.audit import wiring
from ehis.audit.checkpointer import Checkpointer
from ehis.audit.evidence_store import EvidenceStore
from ehis.audit.log import ExchangeLog, open_log
from ehis.audit.outages import OutageStore, open_outages
from ehis.cache import open_cache
from ehis.calls import SourceCalls, SourceLink
from ehis.composites import composite_handlers
from ehis.config import Endpoint, Provider, Settings, SourcePolicy, SourceSettings
from ehis.hub import Hub, ServiceHandler, SourceService
from ehis.monitor.metrics import HubMetrics
from ehis.policy import AccessPolicy
from ehis.recording import Recorder
from ehis.security.pki import Pki, ensure_pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.sources import sources
from ehis.sources.spec import Source

log = logging.getLogger(__name__)


class ConfigurationError(ValueError):
    """The settings ask for something this hub cannot do (a source that is not built, say)."""


@dataclass(frozen=True)
class HubParts:
    """What a worker process runs: the hub, its recorder, and what monitoring reads."""

    hub: Hub
    recorder: Recorder
    metrics: HubMetrics
    log: ExchangeLog | None
    outages: OutageStore
    calls: SourceCalls
    checkpoints: Checkpointer | None = None  # signs and time-stamps the log's head
    evidence: EvidenceStore | None = None  # keeps the signed answers of full-evidence sources


def source_client(policy: SourcePolicy, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """One connection pool per source endpoint, with that source's connect and read timeouts."""
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    limits = httpx.Limits(max_connections=policy.max_concurrency, max_keepalive_connections=policy.max_concurrency)
    return httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport)


def served_sources(settings: Settings) -> list[Source]:
    """The built sources this worker serves: `serve_sources`, or every built one."""
    built = sources()
    if settings.serve_sources is None:
        return list(built.values())
    missing = [code for code in settings.serve_sources if code not in built]
    if missing:
        raise ConfigurationError(f"cannot serve {', '.join(missing)}: no source package is built for it "
                                 f"(built: {', '.join(built)})")
    return [built[code] for code in settings.serve_sources]


def source_settings(settings: Settings, source: Source) -> SourceSettings:
    """The source's settings, with the providers its package names when the deployment names none."""
    config = settings.source(source.code)
    if config.providers or not source.providers:
        return config
    return config.model_copy(update={
        "providers": {name: Provider.model_validate(values) for name, values in source.providers.items()},
        "default_provider": config.default_provider or source.default_provider,
    })


def endpoints(source: Source, config: SourceSettings) -> dict[str, Endpoint]:
    """The endpoints of a source by name: its providers, or the one endpoint named as the source."""
    if config.providers:
        return dict(config.providers)
    return {source.code: config}


@asynccontextmanager
async def open_hub(
    settings: Settings, *, http_transport: httpx.AsyncBaseTransport | None = None, pki: Pki | None = None
) -> AsyncIterator[HubParts]:
    """The hub with everything it owns opened, and closed again on exit.

    `http_transport` replaces the network under every source client (tests and the demo pass
    the simulators' `httpx.ASGITransport`).
    """
    served = served_sources(settings)
    pki = pki or ensure_pki(settings.pki_path)
    signer = EnvelopeSigner(pki.operator())
    verifier = EnvelopeVerifier(pki.ca_file)
    client = ClientIdentity(settings.xroad_instance, settings.client_member_class, settings.client_member_code)
    configs = {source.code: source_settings(settings, source) for source in served}
    async with AsyncExitStack() as stack:
        checkpoints, store = None, None
        if settings.exchange_log:  # the log's own outage store shares its connections
            log_ = await stack.enter_async_context(open_log(settings.database))
            outages = log_.outages
            checkpoints = wiring.checkpointer(settings, log_.backend, pki, http_transport)
            await checkpoints.start()
            stack.push_async_callback(checkpoints.stop)  # a last checkpoint when the hub stops
            if any(config.evidence == "full" for config in configs.values()):
                store = EvidenceStore(log_.backend, wiring.evidence_key(settings))
                await store.start()
                stack.push_async_callback(store.stop)
        else:
            log_, outages = None, await stack.enter_async_context(open_outages(settings.database))
        cache = open_cache(settings.cache_url, max_entries=settings.cache_max_entries,
                           negative_ttl=settings.negative_ttl)
        stack.push_async_callback(cache.close)
        links: dict[str, dict[str, SourceLink]] = {}
        for source in served:
            config = configs[source.code]
            links[source.code] = {}
            for name, endpoint in endpoints(source, config).items():
                http = source_client(config, http_transport)
                stack.push_async_callback(http.aclose)
                adapter = SoapAdapter(source, name=name, url=settings.source_url(name, endpoint), endpoint=endpoint,
                                      http=http, signer=signer, verifier=verifier, client=client,
                                      connect_timeout=config.connect_timeout)
                guard = SourceGuard(name, config, on_change=outages.breaker_changed, system=source.code)
                links[source.code][name] = SourceLink(adapter, guard, store if config.evidence == "full" else None)

        def statuses():
            return [link.guard.status() for endpoints in links.values() for link in endpoints.values()]

        metrics = HubMetrics(sources=statuses, callers=settings.access.keys())
        if checkpoints is not None:
            metrics.watch_checkpoints(checkpoints)
        calls = SourceCalls(links, cache, metrics)
        handlers: dict[str, ServiceHandler] = {
            service.name: (service.handler or SourceService)(service, calls, configs[source.code])
            for source in served for service in source.services
        }
        policy = AccessPolicy(settings.access)
        handlers |= composite_handlers(handlers, policy)
        recorder = Recorder(log_, metrics, settings.broker_user_prefix,
                            overdue=checkpoints.overdue if checkpoints is not None else None)
        hub = Hub(handlers, policy, metrics, statuses, recorder.record_part, settings.broker_user_prefix)
        log.info("hub serves %s", ", ".join(s.code for s in served) or "no source")
        yield HubParts(hub, recorder, metrics, log_, outages, calls, checkpoints, store)
