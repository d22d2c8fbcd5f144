"""Wires the hub from Settings: one place, each dependency a parameter with its production
default, so tests call the same functions with their own parts (cosmicpython's bootstrap)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from ehis.adapters.soap import SoapAdapter
from ehis.catalogue import built_systems
from ehis.config import Settings
from ehis.hub import Hub
from ehis.policy import AccessPolicy
from ehis.security.pki import Pki, ensure_pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The connection pool every adapter shares; sized for the worker's concurrency."""
    size = max(settings.worker_prefetch, 10)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.source_defaults.read_timeout, connect=settings.source_defaults.connect_timeout),
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
    )


def build_hub(settings: Settings, http: httpx.AsyncClient, pki: Pki | None = None) -> Hub:
    pki = pki or ensure_pki(settings.pki_path)
    signer = EnvelopeSigner(pki.operator())
    verifier = EnvelopeVerifier(pki.ca_file)
    adapters = {
        system.code: SoapAdapter(
            system,
            endpoint=settings.source_url(system.code),
            http=http,
            signer=signer,
            verifier=verifier,
            timeout=settings.source_policy(system.code).read_timeout,
        )
        for system in built_systems()
    }
    return Hub(adapters, AccessPolicy(settings.access))


@asynccontextmanager
async def open_hub(
    settings: Settings, *, http: httpx.AsyncClient | None = None, pki: Pki | None = None
) -> AsyncIterator[Hub]:
    """A hub whose HTTP pool is closed on exit (unless the caller passed its own)."""
    owned = http is None
    http = http or http_client(settings)
    try:
        yield build_hub(settings, http, pki)
    finally:
        if owned:
            await http.aclose()
