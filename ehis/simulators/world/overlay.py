"""The overlay: what happened after the base world was drawn (events the simulators emit).

Kept apart from the cached base so that caches never hold overlay state: every facet reads the
base (cached) and then applies the overlay (a few dictionary look-ups). Writers take a lock;
readers use single dictionary reads, which are atomic in CPython.

Every change a source would announce is also appended to that source's FEED (`record_change`):
ordered, numbered from 1 (the cursor), with an id stable for the life of the overlay. `epoch`
is drawn anew at every reset (and in every process), so ids never repeat across resets or
restarts: a hub that deduplicates by id never mistakes a new event for one it already holds.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .places import Address


@dataclass(frozen=True)
class IdpChange:
    """A status set by `change_idp_status` for a whole kin group (status None = withdrawn)."""

    status: str | None
    region: str | None
    since: dt.date


@dataclass(frozen=True)
class UnitChange:
    """What births, marriages and divorces changed in one unit: its couple's fields, and members
    replaced or added (a newborn fills a slot the base world left empty)."""

    fields: dict[str, Any] = field(default_factory=dict)  # couple, marriage, divorce
    slots: dict[int, Any] = field(default_factory=dict)  # slot -> units.Member


@dataclass(frozen=True)
class Change:
    """One entry of a source's feed: an event as the world recorded it.

    `record` is what the world answers about it from then on (a civil act, an address, an IDP
    status or None when withdrawn, a permit, a referral); `day` is the day it took effect.
    """

    source: str  # the source system that announces it, e.g. "edliyye"
    kind: str  # the contract's event kind, e.g. "death"
    seq: int  # position in the source's feed, from 1
    id: str  # the source's event id: stable, unique across resets
    fin: str  # whom it is about (the contract's event fin)
    day: dt.date
    at: dt.datetime  # when it was recorded (UTC)
    record: Any

    @property
    def key(self) -> str:
        return f"{self.source}.{self.kind}"


class Overlay:
    """In-memory changes: deaths, births, unions, moves, IDP statuses, permits, referrals; and the feeds."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._listeners: list[Callable[[Change], None]] = []
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.deaths: dict[str, dt.date] = {}
            self.addresses: dict[str, Address] = {}  # household id -> current address
            self.moves: dict[str, int] = {}  # household id -> number of moves so far
            self.idp: dict[str, IdpChange] = {}  # kin group id -> change
            self.permits: dict[str, tuple[Any, ...]] = {}  # FIN -> permits issued, oldest first
            self.permit_ends: dict[str, dict[str, dt.date]] = {}  # FIN -> permit number -> new last day
            self.units: dict[int, UnitChange] = {}  # unit number -> births, marriage, divorce
            self.born: frozenset[str] = frozenset()  # FINs of the newborns
            self.referrals: dict[str, tuple[Any, ...]] = {}  # FIN -> referrals issued, oldest first
            self.feeds: dict[str, tuple[Change, ...]] = {}  # source -> its changes, oldest first
            self.epoch = uuid.uuid4().hex[:8]

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

    def record_permit_end(self, fin: str, number: str, end: dt.date) -> None:
        with self.lock:
            self.permit_ends = {**self.permit_ends, fin: {**self.permit_ends.get(fin, {}), number: end}}

    def record_unit(self, number: int, fields: dict[str, Any], slots: dict[int, Any]) -> None:
        """Merge `fields` and `slots` into the unit's change (newborns are the slots with new FINs)."""
        with self.lock:
            old = self.units.get(number, UnitChange())
            self.units = {**self.units, number: UnitChange({**old.fields, **fields}, {**old.slots, **slots})}

    def record_birth(self, number: int, child: Any) -> None:
        with self.lock:
            self.record_unit(number, {}, {child.slot: child})
            self.born = self.born | {child.fin}

    def record_referral(self, fin: str, referral: Any) -> None:
        with self.lock:
            self.referrals = {**self.referrals, fin: (*self.referrals.get(fin, ()), referral)}

    # the feeds -------------------------------------------------------------------------------
    def record_change(self, source: str, kind: str, fin: str, day: dt.date, record: Any) -> Change:
        """Append an event to `source`'s feed and tell the listeners (a pusher waiting for work)."""
        with self.lock:
            feed = self.feeds.get(source, ())
            seq = len(feed) + 1
            change = Change(source, kind, seq, f"{source}-{self.epoch}-{seq:06d}", fin, day,
                            dt.datetime.now(dt.UTC).replace(microsecond=0), record)
            self.feeds = {**self.feeds, source: (*feed, change)}
            listeners = list(self._listeners)
        for listener in listeners:
            listener(change)
        return change

    def feed(self, source: str) -> tuple[Change, ...]:
        return self.feeds.get(source, ())

    def listen(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call `listener` after every change recorded from now on; returns what stops it."""
        with self.lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self.lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop
