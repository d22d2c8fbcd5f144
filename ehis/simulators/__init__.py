"""Simulators of the source systems: an ASGI app that answers each built source's SOAP contract
from one deterministic, linked synthetic world (`ehis.simulators.world`), signing every answer
with the source's test key and binding it to the request, as an X-Road provider does.

`create_app(pki)` for in-process use (httpx.ASGITransport), `serve(host, port, pki)` for a real
socket (`ehis simulators serve`), `make_server(app, host, port)` to embed one in a test. Faults on
demand (`FaultRule`, `FaultBoard`, `load_faults`) make a source slow, down or untrustworthy.
"""

from __future__ import annotations

from ehis.simulators.app import create_app, make_server, serve
from ehis.simulators.faults import (
    FaultBoard,
    FaultKind,
    FaultRule,
    InvalidFaults,
    load_faults,
)
from ehis.simulators.journal import Entry, Journal, Outcome

__all__ = [
    "Entry",
    "FaultBoard",
    "FaultKind",
    "FaultRule",
    "InvalidFaults",
    "Journal",
    "Outcome",
    "create_app",
    "load_faults",
    "make_server",
    "serve",
]
