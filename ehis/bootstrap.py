"""Wires the hub from Settings: one place, each dependency a parameter with its production
default, so tests call the same functions with their own parts (cosmicpython's bootstrap)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ehis.adapters.resilience import SourceGuard
from ehis.adapters.soap import ClientIdentity, SoapAdapter
from ehis.adapters.transfer import SourceClient
from ehis.audit import wiring
from ehis.audit.checkpointer import Checkpointer
from ehis.audit.durable import DurableLog
from ehis.audit.evidence_store import EvidenceStore
from ehis.audit.log import ExchangeLog, open_log
from ehis.audit.outages import OutageStore, open_outages
from ehis.audit.spool import Spool
from ehis.cache import open_cache
from ehis.cache.secret import configured_secret, stored_secret
from ehis.calls import SourceCalls, SourceLink
from ehis.composites import composite_handlers
from ehis.config import Endpoint, Provider, Settings, SourcePolicy, SourceSettings
from ehis.hub import Hub, ServiceHandler, SourceService
from ehis.monitor.metrics import HubMetrics
from ehis.policy import AccessPolicy
from ehis.recording import Recorder
from ehis.security.pki import CRL_PATH, Pki, ensure_pki
from ehis.security.revocation import (
    CrlSources,
    RevocationChecker,
    RevocationCollector,
    RevocationMode,
    keep_fresh,
)
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.security.tls import client_context
from ehis.security.trust import TrustStore
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


def source_client(policy: SourcePolicy, transport: httpx.AsyncBaseTransport | None = None,
                  tls: ssl.SSLContext | None = None, *, traced: bool = False) -> httpx.AsyncClient | SourceClient:
    """One connection pool per source endpoint, with that source's connect and read timeouts;
    `tls` (`source_tls`) verifies https:// sources and presents the operator's client certificate.
    On the network it is aiohttp's (about a tenth of httpx's CPU per call, see ehis.adapters.transfer);
    httpx's when a `transport` replaces the network or the calls are `traced` (its instrumentation)."""
    if transport is None and not traced:
        return SourceClient(max_connections=policy.max_concurrency, tls=tls)
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    limits = httpx.Limits(max_connections=policy.max_concurrency, max_keepalive_connections=policy.max_concurrency)
    # cookies refused, as aiohttp's client does: one pool serves every caller
    no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport, verify=tls or True, cookies=no_cookies)


def source_tls(settings: Settings) -> ssl.SSLContext | None:
    """One verifying context for every https:// source (None: httpx's default, the system's CAs and
    no client certificate): `tls_ca_file`, and `source_client_cert`/`source_client_key` for mutual TLS."""
    if settings.tls_ca_file is None and settings.source_client_cert is None:
        return None
    return client_context(settings.tls_ca_file, settings.source_client_cert, settings.source_client_key)


def trust_store(settings: Settings, pki: Pki) -> TrustStore:
    """Trust in signers: the PKI's CA, and revocation as `revocation*` and `crl_urls` say."""
    tls = client_context(settings.tls_ca_file) if settings.tls_ca_file is not None else True
    crls = CrlSources(freshness=settings.revocation_freshness, timeout=settings.revocation_timeout, verify=tls)
    mode = RevocationMode(settings.revocation)
    checker = (RevocationChecker(settings.crl_urls, mode=mode, crls=crls) if settings.crl_urls is not None
               else RevocationChecker.beside(pki.ca_file, mode=mode, crls=crls))
    return TrustStore(pki.ca_file, revocation=checker)


def cache_secret(settings: Settings) -> bytes:
    """`cache_key_secret`, or the one kept in the data directory (warned about when Redis is shared)."""
    if settings.cache_key_secret is not None:
        return configured_secret(settings.cache_key_secret.get_secret_value())
    if urlsplit(settings.cache_url).scheme != "memory":
        log.warning("cache_key_secret is not set: the cache's key names use the secret in %s; every worker "
                    "sharing this Redis must use the same one", settings.data_dir / "cache-key")
    return stored_secret(settings.data_dir)


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
    pki = pki or ensure_pki(settings.pki_path, crl_url=settings.simulator_url.rstrip("/") + CRL_PATH)
    signer = EnvelopeSigner(pki.operator())
    trust = trust_store(settings, pki)
    verifier = EnvelopeVerifier(pki.ca_file, trust=trust)
    tls = source_tls(settings)
    client = ClientIdentity(settings.xroad_instance, settings.client_member_class, settings.client_member_code)
    configs = {source.code: source_settings(settings, source) for source in served}
    async with AsyncExitStack() as stack:
        checkpoints, store, durable = None, None, None
        refresher = asyncio.create_task(keep_fresh(trust.revocation), name="crl-refresh")
        stack.push_async_callback(_cancelled, refresher)
        if settings.exchange_log:  # the log's own outage store shares its connections
            log_ = await stack.enter_async_context(open_log(settings.database, commit_delay=settings.log_commit_delay))
            outages = log_.outages
            durable = DurableLog(log_, Spool(settings.spool_path), timeout=settings.log_append_timeout)
            await durable.start()
            stack.push_async_callback(durable.stop)
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
                           negative_ttl=settings.negative_ttl, key_secret=cache_secret(settings),
                           ca_file=settings.tls_ca_file)
        stack.push_async_callback(cache.close)
        links: dict[str, dict[str, SourceLink]] = {}
        for source in served:
            config = configs[source.code]
            links[source.code] = {}
            for name, endpoint in endpoints(source, config).items():
                http = source_client(config, http_transport, tls, traced=settings.tracing_endpoint is not None)
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
        metrics.registry.register(RevocationCollector(trust.revocation))
        calls = SourceCalls(links, cache, metrics)
        handlers: dict[str, ServiceHandler] = {
            service.name: (service.handler or SourceService)(service, calls, configs[source.code])
            for source in served for service in source.services
        }
        policy = AccessPolicy(settings.access)
        handlers |= composite_handlers(handlers, policy)
        recorder = Recorder(log_, metrics, settings.broker_user_prefix,
                            overdue=checkpoints.overdue if checkpoints is not None else None, durable=durable)
        hub = Hub(handlers, policy, metrics, statuses, recorder.record_part, settings.broker_user_prefix)
        log.info("hub serves %s", ", ".join(s.code for s in served) or "no source")
        yield HubParts(hub, recorder, metrics, log_, outages, calls, checkpoints, store)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
