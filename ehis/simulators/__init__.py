"""Simulators of the source systems: an ASGI app that answers each source's SOAP contract from a
deterministic synthetic population, signing every answer with the source's test key.

`create_app(pki)` for in-process use (httpx.ASGITransport), `serve(host, port, pki)` for a real
socket (`ehis simulators serve`).
"""

from __future__ import annotations

from ehis.simulators.app import create_app, serve
from ehis.simulators.journal import Entry, Journal, Outcome

__all__ = ["Entry", "Journal", "Outcome", "create_app", "serve"]
