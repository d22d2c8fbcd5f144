"""The built source systems, discovered: every sub-package here that defines `SOURCE`.

Adding a source is one folder `ehis/sources/<code>/` (contract, `SOURCE`, simulator responder)
plus the access-policy rows of the callers that need it; nothing here lists sources by hand.
Each source and service must be in the statute's table (ehis.catalogue), and the registry
refuses a package that is not, so a typo cannot create a service the statute does not name.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from ehis import catalogue
from ehis.errors import UnknownService
from ehis.sources.spec import Service, Source


class SourceRegistryError(RuntimeError):
    """A source package contradicts the statute's table or another package."""


@cache
def sources() -> dict[str, Source]:
    """Every built source, keyed by system code, in the statute's order."""
    found: dict[str, Source] = {}
    for module in pkgutil.iter_modules(__path__):
        if not module.ispkg:
            continue
        source = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SOURCE", None)
        if not isinstance(source, Source):
            continue
        if source.code != module.name:
            raise SourceRegistryError(f"ehis/sources/{module.name} declares source {source.code!r}")
        if source.code not in catalogue.SYSTEMS_BY_CODE:
            raise SourceRegistryError(f"source {source.code!r} is not a system of the statute (ehis/catalogue.py)")
        for service in source.services:
            if service.name not in catalogue.SERVICES or service.system != source.code:
                raise SourceRegistryError(f"{source.code}: {service.name!r} is not a service of {source.code} "
                                          "in the statute (ehis/catalogue.py)")
        found[source.code] = source
    return {code: found[code] for code in catalogue.SYSTEMS_BY_CODE if code in found}


def source(code: str) -> Source:
    try:
        return sources()[code]
    except KeyError:
        raise UnknownService(f"no built source system {code!r}") from None


def services() -> dict[str, Service]:
    """Every built service by bus name."""
    return {s.name: s for src in sources().values() for s in src.services}


def service(name: str) -> Service | None:
    """The built service `name`, or None (unknown to the statute, or not built)."""
    return services().get(name)
