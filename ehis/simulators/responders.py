"""What a source package's simulator (`ehis/sources/<code>/simulator.py`) provides: `RESPONDER`.

A responder answers its contract's operations from the synthetic world with plain dicts; the
simulator decodes the request and encodes the answer with the contract's codec (compiled from
the XSD), so a responder never builds XML and its answers match the schema the hub validates.
Business outcomes are raised as `BusinessFault`s, signed like answers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from ehis.contracts import COMMON_NS
from ehis.identifiers import FIN_PATTERN, VOEN_PATTERN
from ehis.simulators.journal import Outcome
from ehis.simulators.world import world

INVALID_FIN = "a FIN is 7 characters: digits and Latin capital letters except I and O"
INVALID_VOEN = "a VÖEN is 10 digits, the last one 1 (legal entity) or 2 (natural person)"

Handler = Callable[[dict[str, Any]], dict[str, Any]]
"""The decoded request payload -> the response payload (the `<operation>Response` element's content)."""


class BusinessFault(Exception):
    """A business outcome answered as a signed SOAP fault with a typed detail element.

    `detail` is the Clark name of the detail element (the common ones by default) and `data`
    its content, encoded by the contract's codec.
    """

    def __init__(self, string: str, detail: str, data: dict[str, Any], outcome: Outcome):
        super().__init__(string)
        self.string = string
        self.detail = detail
        self.data = data
        self.outcome = outcome


class BodyFault(Exception):
    """A business outcome answered in the response body (PR-MESS Annex D.2: the response element's
    `fault`, of type ehis:BodyFault) instead of as a SOAP fault, for contracts that do so."""

    CODES: ClassVar[dict[Outcome, str]] = {Outcome.NOT_FOUND: "not_found", Outcome.INVALID: "invalid_input"}

    def __init__(self, fault: BusinessFault):
        super().__init__(fault.string)
        self.outcome = fault.outcome
        self.fault = {"faultCode": self.CODES.get(fault.outcome, "error"), "faultString": fault.string}


def not_found(subject: str, reason: str) -> BusinessFault:
    return BusinessFault(reason, f"{{{COMMON_NS}}}NotFound", {"subject": subject, "reason": reason},
                         Outcome.NOT_FOUND)


def invalid(field_name: str, reason: str) -> BusinessFault:
    return BusinessFault(f"invalid {field_name}", f"{{{COMMON_NS}}}InvalidInput",
                         {"field": field_name, "reason": reason}, Outcome.INVALID)


def fin_of(payload: dict[str, Any], name: str = "fin") -> str:
    """The request's FIN, trimmed; the contract's InvalidInput fault when it is not well formed."""
    fin = str(payload.get(name) or "").strip()
    if not FIN_PATTERN.fullmatch(fin):
        raise invalid(name, INVALID_FIN)
    return fin


def held_fin(payload: dict[str, Any], register: str) -> str:
    """The request's FIN, of a person the world holds; InvalidInput when malformed, NotFound
    (`register` says where nobody was found) when nobody holds it."""
    fin = fin_of(payload)
    if world().person(fin) is None:
        raise not_found(fin, register)
    return fin


def voen_of(payload: dict[str, Any], name: str = "voen") -> str:
    voen = str(payload.get(name) or "").strip()
    if not VOEN_PATTERN.fullmatch(voen):
        raise invalid(name, INVALID_VOEN)
    return voen


@dataclass(frozen=True)
class Operation:
    name: str  # the WSDL operation: the serviceCode and the request element's local name
    handle: Handler
    subject: str | None = "fin"  # the request field naming whom it is about (journaled masked)


@dataclass(frozen=True)
class Responder:
    """One simulated source's operations."""

    operations: tuple[Operation, ...]

    def operation(self, name: str) -> Operation | None:
        return next((op for op in self.operations if op.name == name), None)

    @property
    def operation_names(self) -> frozenset[str]:
        return frozenset(op.name for op in self.operations)


@cache
def responders() -> dict[str, tuple[str, Responder]]:
    """Every simulated endpoint: its name -> (its source's code, its responder).

    A source with one endpoint is named as the source and its `simulator.py` defines `RESPONDER`;
    a source with providers (credit bureaus, district authorities) has an endpoint per provider,
    named as the provider, and its `simulator.py` defines `responder_for(provider)`.
    """
    from ehis.sources import sources

    found: dict[str, tuple[str, Responder]] = {}
    for code, source in sources().items():
        module = importlib.import_module(f"ehis.sources.{code}.simulator")
        if source.providers:
            for name in source.providers:
                found[name] = (code, module.responder_for(name))
            continue
        responder = getattr(module, "RESPONDER", None)
        if not isinstance(responder, Responder):
            raise RuntimeError(  # noqa: TRY004 - a broken source package, not a caller's wrong type
                f"ehis/sources/{code}/simulator.py defines no RESPONDER")
        found[code] = (code, responder)
    return found
