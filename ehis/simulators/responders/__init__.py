"""The registry of simulated sources: one module per system, each exposing `RESPONDER`.

Adding a source is one module here (plus its contract pair under ehis/contracts/wsdl/): the
registry finds every module of this package that defines `RESPONDER`, so nothing else is edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from lxml import etree

Handler = Callable[[etree._Element], etree._Element]
"""Takes the validated request payload, returns the response payload or raises `SoapFault`."""


@dataclass(frozen=True)
class Operation:
    name: str  # the WSDL operation: the serviceCode and the request element's local name
    handle: Handler
    subject: str | None = "fin"  # the request child naming who the request is about (journaled masked)


@dataclass(frozen=True)
class Responder:
    """One simulated source: its system code, its contract namespace and its operations."""

    system: str
    namespace: str
    operations: tuple[Operation, ...]

    def operation(self, name: str) -> Operation | None:
        return next((op for op in self.operations if op.name == name), None)

    @property
    def operation_names(self) -> frozenset[str]:
        return frozenset(op.name for op in self.operations)


@cache
def responders() -> dict[str, Responder]:
    """Every responder in this package, keyed by system code."""
    found: dict[str, Responder] = {}
    for module in pkgutil.iter_modules(__path__):
        responder = getattr(importlib.import_module(f"{__name__}.{module.name}"), "RESPONDER", None)
        if isinstance(responder, Responder):
            if responder.system in found:
                raise RuntimeError(f"two responders for {responder.system!r}")
            found[responder.system] = responder
    return found
