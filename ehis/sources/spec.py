"""What a source package declares: its contract and, for each service, how the hub calls it.

A source package (`ehis/sources/<code>/`) holds its WSDL and XSD, a `SOURCE = Source(...)` in its
`__init__.py` (its services, and the events it sends if any), and its simulator responder in
`simulator.py`. Everything else (transport,
signatures, headers, request hash, validation, retries, cache, exchange log) is the hub's and
the same for every source, so a source package is declarations and two small functions per
service: what the request carries (`request`) and how the answer maps into the canonical model
(`mapper`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from ehis.contracts.codec import Codec
from ehis.errors import EhisError

if TYPE_CHECKING:
    from ehis.calls import SourceCalls
    from ehis.config import SourceSettings
    from ehis.hub import ServiceHandler

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0

Mapper = Callable[[dict[str, Any]], BaseModel]
"""The decoded response payload (a dict, see ehis.contracts.codec) -> the canonical model."""

HandlerFactory = Callable[["Service", "SourceCalls", "SourceSettings"], "ServiceHandler"]
"""Builds how a service is answered when one call to one endpoint is not enough (ehis.routing)."""


def dump_params(params: BaseModel) -> dict[str, Any]:
    """The default request payload: the params model's fields by alias (the XSD's names)."""
    return params.model_dump(by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class Service:
    """One bus service of a source: `<system>.<name>`, answered by one SOAP operation."""

    name: str  # the bus name, e.g. "din.person"
    operation: str  # the WSDL operation: the request element's local name and the X-Road serviceCode
    params: type[BaseModel]  # what a caller sends, validated before anything reaches the source
    model: type[BaseModel]  # the canonical answer
    mapper: Mapper
    cache_ttl: float | None  # seconds an answer may be reused; None = always ask the source
    subject: str | None = "fin"  # the params field naming the data subject; None for statistics
    # Where the answer names its subject (a path of keys in the decoded payload), checked against
    # the request's: a signed answer about someone else is refused. None when it does not say.
    answer_subject: tuple[str, ...] | None = None
    request: Callable[[BaseModel], dict[str, Any]] = dump_params
    # Params the simulated source answers with a record, and params it holds no record for
    # (None: it always answers): what tests, the demo and `ehis catalogue` show a caller.
    example: Mapping[str, Any] = field(default_factory=dict)
    missing: Mapping[str, Any] | None = None
    handler: HandlerFactory | None = None  # None: one call to the source's one endpoint

    @property
    def system(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def response(self) -> str:
        """The response element's local name (document/literal wrapped: `<operation>Response`)."""
        return f"{self.operation}Response"

    def subject_of(self, params: BaseModel) -> str | None:
        value = getattr(params, self.subject) if self.subject else None
        return str(value) if value is not None else None


EventMapper = Callable[[dict[str, Any]], BaseModel]
"""One decoded `Event` of the source's contract (id, kind, occurredAt, fin, its payload) -> the kind's model."""


@dataclass(frozen=True)
class EventKind:
    """One kind of event a source sends: `<system>.<name>` is its routing key (ehis.catalogue.EVENTS)."""

    name: str  # the contract's EventKind value, e.g. "death"
    model: type[BaseModel]  # the canonical data a subscriber receives
    mapper: EventMapper
    # services (taking a FIN) whose stored answers about the event's subject it makes stale: dropped
    invalidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventFeed:
    """How a source's events reach the hub (ehis/contracts/schemas/events.xsd): it pushes them to
    the hub's inbound endpoint (`PushEvents`), or the hub polls it (`GetChangesSince`). Every
    event source answers `GetChangesSince`: the hub also reads a pushing source's changes, less
    often, to catch up with what a push did not bring (the same event ids: stored once)."""

    mode: Literal["push", "poll"]
    kinds: tuple[EventKind, ...]

    def kind(self, name: str) -> EventKind | None:
        return next((k for k in self.kinds if k.name == name), None)


@dataclass(frozen=True)
class Source:
    """A source system as the hub knows it: its contract and its services.

    `faults` maps the Clark names of fault detail elements this contract declares beyond the
    common ones (ehis:NotFound, ehis:InvalidInput) to the typed errors they mean. `providers`
    names the endpoints of a source that is several services behind one contract (credit
    bureaus, district authorities) as the simulators play them, with their settings (each has a
    certificate of its own); a deployment configures its own under `[sources.<code>.providers]`.
    """

    code: str
    wsdl: Path
    services: tuple[Service, ...]
    faults: Mapping[str, type[EhisError]] = field(default_factory=dict)
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_provider: str | None = None
    events: EventFeed | None = None  # the events it sends, if any

    @classmethod
    def of(cls, package_file: str, services: tuple[Service, ...], **rest: Any) -> Source:
        """The source whose package `package_file` is: its code is the folder's name and its
        contract `<code>.wsdl` (and `.xsd`) beside it, as every source folder has them."""
        code = Path(package_file).parent.name
        return cls(code, contract(package_file, f"{code}.wsdl"), services, **rest)

    @property
    def xsd(self) -> Path:
        return self.wsdl.with_suffix(".xsd")

    @cached_property
    def codec(self) -> Codec:
        """The contract's messages, compiled on first use (once per process)."""
        return Codec(self.xsd)

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    def operation(self, operation: str) -> Service | None:
        return next((s for s in self.services if s.operation == operation), None)


def contract(package_file: str, name: str) -> Path:
    """The path of a contract file next to a source package's `__init__.py`."""
    return Path(package_file).with_name(name)
