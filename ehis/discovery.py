"""The hub's metaservices on the bus, after X-Road's service metadata protocol (PR-META):
`meta.list-methods` (every service of the statute: served or not, its parameters),
`meta.allowed-methods` (those the calling subsystem may use, by the access policy) and
`meta.wsdl` (a served service's contract: its WSDL and every schema it needs).

Anyone may ask (they reveal the statute and the caller's own rights, nothing about a person),
and each is answered by a worker and recorded like any other request.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ehis import catalogue
from ehis.composites import COMPOSITES
from ehis.contracts import contract_dir
from ehis.errors import NotServed, UnknownService
from ehis.inventory import params_of
from ehis.policy import AccessPolicy
from ehis.sources import sources

METASERVICES = catalogue.METASERVICES
LIST, ALLOWED, WSDL = METASERVICES


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WsdlQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=128)


PARAMS: dict[str, type[BaseModel]] = {LIST: NoParams, ALLOWED: NoParams, WSDL: WsdlQuery}


def methods(served: set[str], policy: AccessPolicy | None = None, caller: str = "") -> dict[str, Any]:
    """The statute's services (only those `caller` may use, given a policy), each with what a caller needs."""
    out = []
    for name, entry in catalogue.SERVICES.items():
        if policy is not None and not (name in served and policy.allows(caller, name)):
            continue
        spec = sources().get(entry.system)
        service = spec.service(name) if spec is not None else None
        model = service.params if service else COMPOSITES[name].params if name in COMPOSITES else None
        out.append({"name": name, "system": entry.system, "summary": entry.summary, "served": name in served,
                    "operation": service.operation if service else None,
                    "params": params_of(model) if model is not None else []})
    return {"services": out}


def contract(name: str, served: set[str]) -> dict[str, Any]:
    """A served service's WSDL and the schema files it imports (relative locations kept)."""
    catalogue.service(name)
    if name not in served:
        raise NotServed(f"{name} is not served by this hub, so it has no contract here", source=name.split(".")[0])
    spec = sources()[name.split(".")[0]]
    service = spec.service(name)
    if service is None:
        raise UnknownService(f"no service {name!r}")
    files = {p.name: p.read_text(encoding="utf-8") for p in (spec.xsd, *sorted(contract_dir().iterdir()))
             if p.suffix in (".xsd", ".wsdl")}
    return {"service": name, "operation": service.operation, "wsdl": spec.wsdl.read_text(encoding="utf-8"),
            "schemas": files}


def answer(name: str, params: BaseModel, caller: str, served: set[str], policy: AccessPolicy) -> dict[str, Any]:
    if name == LIST:
        return methods(served)
    if name == ALLOWED:
        return methods(served, policy, caller)
    return contract(params.service, served)
