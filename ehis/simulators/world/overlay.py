"""The overlay: what happened after the base world was drawn (events the simulators emit).

Kept apart from the cached base so that caches never hold overlay state: every facet reads the
base (cached) and then applies the overlay (a few dictionary look-ups). Writers take a lock;
readers use single dictionary reads, which are atomic in CPython.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from .places import Address


@dataclass(frozen=True)
class IdpChange:
    """A status set by `change_idp_status` for a whole kin group (status None = withdrawn)."""

    status: str | None
    region: str | None
    since: dt.date


class Overlay:
    """In-memory changes: deaths, moves of households, IDP status changes, issued permits."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.deaths: dict[str, dt.date] = {}
        self.addresses: dict[str, Address] = {}  # household id -> current address
        self.moves: dict[str, int] = {}  # household id -> number of moves so far
        self.idp: dict[str, IdpChange] = {}  # kin group id -> change
        self.permits: dict[str, tuple[Any, ...]] = {}  # FIN -> permits issued, oldest first

    def reset(self) -> None:
        with self.lock:
            self.deaths = {}
            self.addresses = {}
            self.moves = {}
            self.idp = {}
            self.permits = {}

    def record_death(self, fin: str, day: dt.date) -> None:
        with self.lock:
            self.deaths = {**self.deaths, fin: day}

    def record_move(self, household_id: str, address: Address) -> None:
        with self.lock:
            self.addresses = {**self.addresses, household_id: address}
            self.moves = {**self.moves, household_id: self.moves.get(household_id, 0) + 1}

    def record_idp(self, kin_id: str, change: IdpChange) -> None:
        with self.lock:
            self.idp = {**self.idp, kin_id: change}

    def record_permit(self, fin: str, permit: Any) -> None:
        with self.lock:
            self.permits = {**self.permits, fin: (*self.permits.get(fin, ()), permit)}
