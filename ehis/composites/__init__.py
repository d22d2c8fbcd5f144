"""Composite services: answers the hub puts together from several sources at once.

Each composite asks its parts through the hub's own service handlers (ehis.composites.gather),
so a part is answered, cached, guarded, policed and recorded exactly as a request for it would
be. A composite is served when the services it cannot answer without are served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ehis.composites.means_test import MeansTest, MeansTestHandler, MeansTestQuery
from ehis.composites.prefill import (
    ContractPrefill,
    ContractPrefillHandler,
    PrefillQuery,
)
from ehis.policy import AccessPolicy


@dataclass(frozen=True)
class Composite:
    handler: Callable[[dict[str, Any], AccessPolicy], Any]
    params: type[BaseModel]
    model: type[BaseModel]
    subject: str  # the params field naming whom it is about, for the exchange log
    needs: tuple[str, ...]  # the services without which it means nothing
    example: Mapping[str, Any]


COMPOSITES: dict[str, Composite] = {
    "emek.contract-prefill": Composite(ContractPrefillHandler, PrefillQuery, ContractPrefill, "employee_fin",
                                       ("din.person",), {"employer_voen": "1402345671", "employee_fin": "5GXM4DZ"}),
    "vemtas.means-test": Composite(MeansTestHandler, MeansTestQuery, MeansTest, "fin", ("din.person", "yih.household"),
                                   {"fin": "P9TCV69", "from": "2024-01-01", "to": "2024-12-31"}),
}


def composite_handlers(handlers: Mapping[str, Any], policy: AccessPolicy) -> dict[str, Any]:
    """The composites `handlers` (the hub's source services) can answer, by name."""
    shared = dict(handlers)
    return {name: c.handler(shared, policy) for name, c in COMPOSITES.items() if all(n in shared for n in c.needs)}
