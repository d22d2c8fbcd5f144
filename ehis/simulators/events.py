"""Events the simulated sources announce: what happens in the synthetic world, on demand or at a rate.

Every event is a change of the world's overlay (`World.register_death`, `register_birth`, ...),
so the sources' answers say the same thing from then on (a death: din reports the person
deceased, edliyye returns the death act). Each change is appended to its source's feed
(`World.feed`); a polled source answers `GetChangesSince` from it (`changes_operation`), a
pushing source's feed is sent to the hub by the pusher (`ehis.simulators.events_push`).

`emit(world, "edliyye.death", {"fin": ...})` makes one happen; every parameter has a sensible
default (a random person for whom the event makes sense, today's date). Each source's
`simulator.py` says how its contract carries an event (`EVENT`: the change -> the payload
elements after id, kind, occurredAt and fin).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ehis.simulators.responders import Operation, invalid
from ehis.simulators.world import DISTRICTS, UNITS, World, world
from ehis.simulators.world.overlay import Change
from ehis.simulators.world.places import ARMENIA_REGIONS, KARABAKH_DISTRICTS
from ehis.simulators.world.units import (
    CHILD_SLOTS,
    MAN,
    MARRIED,
    UNMARRIED,
    WOMAN,
    Member,
    Unit,
)

EventPayload = Callable[[Change], dict[str, Any]]
"""A change -> the elements of the source's contract `Event` that follow id, kind, occurredAt and fin."""

log = logging.getLogger(__name__)

SEARCH_UNITS = 50_000  # units looked at for a random person an event fits, before giving up
_CURSOR = re.compile(r"([0-9a-f]{8})\.([0-9]{1,9})")


class InvalidEvent(ValueError):
    """An event that cannot happen as asked (unknown kind, bad parameter, nobody it fits)."""


# -- how a source's contract carries its events ---------------------------------------------------

@cache
def payload_of(source: str) -> EventPayload:
    """The source's `EVENT` (its `simulator.py`)."""
    found = getattr(importlib.import_module(f"ehis.sources.{source}.simulator"), "EVENT", None)
    if found is None:
        raise RuntimeError(f"ehis/sources/{source}/simulator.py defines no EVENT")
    return found


def contract_event(change: Change) -> dict[str, Any]:
    """The change as its source's contract `Event`, ready for the codec."""
    return {"id": change.id, "kind": change.kind, "occurredAt": change.at, "fin": change.fin,
            **payload_of(change.source)(change)}


def cursor_of(w: World, source: str, seq: int) -> str:
    """The opaque cursor after the `seq`-th change: valid only for this overlay's epoch."""
    return f"{w.overlay.epoch}.{seq}"


def changes_since(w: World, source: str, cursor: str | None, limit: int) -> tuple[tuple[Change, ...], str, bool]:
    """(the changes after `cursor`, at most `limit`; the cursor after them; whether more wait).

    A cursor of another epoch (the simulators restarted, or their events were reset) reads the
    feed from its start: what the source holds now is all new. A malformed one is ValueError.
    """
    position = 0
    if cursor:
        found = _CURSOR.fullmatch(cursor)
        if found is None:
            raise ValueError("not a cursor this source gave")
        position = int(found.group(2)) if found.group(1) == w.overlay.epoch else 0
    feed = w.feed(source)
    page = feed[position:position + limit]
    end = position + len(page)
    return page, cursor_of(w, source, end), end < len(feed)


def changes_operation(source: str) -> Operation:
    """`GetChangesSince` of a polled source, answered from its feed in the shared world (its
    contract's events as the source's `EVENT` carries them)."""

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        try:
            page, cursor, more = changes_since(world(), source, request.get("cursor"), int(request["limit"]))
        except ValueError as exc:
            raise invalid("cursor", str(exc)) from None
        return {"event": [contract_event(c) for c in page], "cursor": cursor, "more": more}

    return Operation("GetChangesSince", handle, subject=None)


# -- making events happen -------------------------------------------------------------------------

Params = Mapping[str, str]
Fits = Callable[[World, Unit, Member, dt.date], bool]
Apply = Callable[[World, str, Params, dt.date, random.Random], object]


@dataclass(frozen=True)
class Kind:
    """One event kind the simulators can make happen: whom it may happen to, and how."""

    key: str  # "<source>.<kind>", the routing key the hub publishes it under
    fits: Fits  # whether it can happen to this member on that day (to pick someone at random)
    apply: Apply  # make it happen to the FIN with the parameters on the day
    params: tuple[str, ...] = ()  # the parameters it takes besides fin and date

    @property
    def source(self) -> str:
        return self.key.split(".", 1)[0]


def _living(w: World, unit: Unit, m: Member, day: dt.date) -> bool:
    return w.living(m) and m.birth < day


def _citizen(w: World, unit: Unit, m: Member, day: dt.date) -> bool:
    return _living(w, unit, m, day) and not m.foreign


def _may_give_birth(w: World, unit: Unit, m: Member, day: dt.date) -> bool:
    man = unit.member(0)
    return (m.role == WOMAN and unit.couple == MARRIED and man is not None and not m.foreign
            and w.living(m) and w.living(man) and 18 <= (day - m.birth).days // 365 <= 45
            and any(unit.member(s) is None for s in CHILD_SLOTS)
            and all(abs((day - c.birth).days) >= 300 for c in unit.children))


def _may_marry(w: World, unit: Unit, m: Member, day: dt.date) -> bool:
    other = unit.member(1)
    return (m.slot == 0 and m.role == MAN and unit.couple == UNMARRIED and other is not None and other.sex == "F"
            and not m.foreign and not other.foreign and w.living(m) and w.living(other)
            and min(day - m.birth, day - other.birth).days >= 18 * 366)


def _may_divorce(w: World, unit: Unit, m: Member, day: dt.date) -> bool:
    other = unit.member(1)
    return (m.role == MAN and unit.couple == MARRIED and other is not None and not m.foreign
            and w.living(m) and w.living(other) and unit.marriage is not None and unit.marriage < day)


def _foreigner(w: World, unit: Unit, m: Member, day: dt.date) -> bool:
    return _living(w, unit, m, day) and m.foreign


def _current_permit(w: World, fin: str, day: dt.date) -> str | None:
    """Which of the person's permits is still valid on `day` (work first), if any."""
    works = w.work_permits(fin)
    if works and works[-1].end >= day and works[-1].start < day:
        return "work"
    residence = w.residence_permit(fin)
    return "residence" if residence is not None and residence.end >= day and residence.start < day else None


def _holds_permit(w: World, unit: Unit, m: Member, day: dt.date) -> bool:
    return _foreigner(w, unit, m, day) and _current_permit(w, m.fin, day) is not None


def _with_home(w: World, unit: Unit, m: Member, day: dt.date) -> bool:
    return _living(w, unit, m, day) and w.household(m.fin) is not None


def _move(w: World, fin: str, p: Params, day: dt.date, r: random.Random) -> object:
    person = w.person(fin)
    current = person.address.district_code if person is not None else None
    district = p.get("district") or r.choice([d.code for d in DISTRICTS if d.code != current])
    return w.change_address(fin, district, since=day)


def _idp(w: World, fin: str, p: Params, day: dt.date, r: random.Random) -> object:
    held = w.idp_status(fin)
    status = p.get("status") or ("none" if held is not None else "idp")
    if status not in ("idp", "refugee", "none"):
        raise InvalidEvent("status is idp, refugee or none (withdrawn)")
    if status == "none":
        return w.change_idp_status(fin, None, since=day)
    region = p.get("region") or r.choice(KARABAKH_DISTRICTS if status == "idp" else ARMENIA_REGIONS)
    return w.change_idp_status(fin, status, region, since=day)


def _issue(w: World, fin: str, p: Params, day: dt.date, r: random.Random) -> object:
    kind = p.get("permit") or "work"
    end = _date(p["end"], "end") if p.get("end") else None
    if kind != "work":
        return w.issue_permit(fin, kind, day, end, permanent=p.get("permanent", "") in ("1", "true", "yes"))
    employer = p.get("employer") or w.employer_voen(r.randrange(1 << 30))
    return w.issue_permit(fin, "work", day, end, employer_voen=employer, position=p.get("position"))


def _end(expired: bool) -> Apply:
    def apply(w: World, fin: str, p: Params, day: dt.date, r: random.Random) -> object:
        kind = p.get("permit") or _current_permit(w, fin, day) or "residence"
        return w.end_permit(fin, kind, day, expired=expired)

    return apply


KINDS: dict[str, Kind] = {k.key: k for k in (
    Kind("edliyye.birth", _may_give_birth, lambda w, fin, p, day, r: w.register_birth(fin, day, p.get("sex")),
         ("sex",)),
    Kind("edliyye.death", _living, lambda w, fin, p, day, r: w.register_death(fin, day)),
    Kind("edliyye.marriage", _may_marry, lambda w, fin, p, day, r: w.register_marriage(fin, day)),
    Kind("edliyye.divorce", _may_divorce, lambda w, fin, p, day, r: w.register_divorce(fin, day)),
    Kind("din.address-changed", _with_home, _move, ("district",)),
    Kind("qmkdk.status-changed", _citizen, _idp, ("status", "region")),
    Kind("dmx.permit-issued", _foreigner, _issue, ("permit", "employer", "position", "end", "permanent")),
    Kind("dmx.permit-expiring", _holds_permit, _end(expired=False), ("permit",)),
    Kind("dmx.permit-expired", _holds_permit, _end(expired=True), ("permit",)),
    Kind("sehiyye.referral-issued", _living,
         lambda w, fin, p, day, r: w.issue_referral(fin, day, p.get("type"), p.get("icd10")), ("type", "icd10")),
)}


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def emit(w: World, key: str, params: Params | None = None, *, rng: random.Random | None = None) -> list[Change]:
    """Make a `key` event happen (`params`: fin, date and the kind's own; strings, as typed) and
    return every change it made, its own first (a marriage also moves the bride: a din event).

    InvalidEvent says why it cannot happen as asked.
    """
    kind = KINDS.get(key)
    if kind is None:
        raise InvalidEvent(f"no event kind {key!r}; the kinds are {', '.join(KINDS)}")
    params = {k: str(v).strip() for k, v in (params or {}).items() if v is not None and str(v).strip()}
    unknown = sorted(set(params) - {"fin", "date", *kind.params})
    if unknown:
        raise InvalidEvent(f"{key} takes fin, date{''.join(', ' + p for p in kind.params)}; not {', '.join(unknown)}")
    r = rng or random.Random()
    day = _date(params["date"], "date") if "date" in params else today()
    with w.overlay.lock:  # nobody else's changes between the two counts
        before = {source: len(w.feed(source)) for source in _sources()}
        fin = params.get("fin") or pick(w, kind.fits, day, r)
        try:
            kind.apply(w, fin, params, day, r)
        except InvalidEvent:
            raise
        except ValueError as exc:
            raise InvalidEvent(f"{key} for this person: {exc}") from None
        made = [c for source in _sources() for c in w.feed(source)[before[source]:]]
    return sorted(made, key=lambda c: (c.key != key, c.at, c.source, c.seq))


def pick(w: World, fits: Fits, day: dt.date, r: random.Random) -> str:
    """A random person an event fits on `day`."""
    for _ in range(SEARCH_UNITS):
        unit = w.unit(r.randrange(UNITS))
        members = list(unit.members)
        r.shuffle(members)
        for m in members:
            if fits(w, unit, m, day):
                return m.fin
    raise InvalidEvent("found nobody in the synthetic world this event fits; give a fin")


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{name} must be a date, YYYY-MM-DD") from None


@cache
def _sources() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k.source for k in KINDS.values()))


class EventRate:
    """Random events of random kinds at `per_minute` (`ehis simulators serve --event-rate`), in a
    thread of its own; a kind that fits nobody this time is skipped."""

    def __init__(self, w: World, per_minute: float, *, rng: random.Random | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("an event rate is a positive number of events per minute")
        self.world, self.interval, self.rng = w, 60.0 / per_minute, rng or random.Random()
        self.emitted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulators-event-rate", daemon=True)

    def start(self) -> EventRate:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.rng.expovariate(1.0 / self.interval)):
            key = self.rng.choice(list(KINDS))
            try:
                emit(self.world, key, rng=self.rng)
                self.emitted += 1
            except InvalidEvent as exc:
                log.debug("no %s event this time: %s", key, exc)
            except Exception as exc:  # noqa: BLE001 - the next one may do
                log.warning("emitting a %s event failed (%s)", key, type(exc).__name__)


def listing(w: World, delivery: Callable[[Change], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every source's feed as the admin API shows it: its mode, its cursor, its events (with their
    delivery to the hub, for pushing sources, when `delivery` says)."""
    from ehis.sources import sources

    out: dict[str, Any] = {}
    for code in _sources():
        mode = sources()[code].events.mode  # type: ignore[union-attr]
        feed = w.feed(code)
        events = []
        for change in feed:
            shown = {"seq": change.seq, "key": change.key, **_json(contract_event(change))}
            if mode == "push" and delivery is not None:
                shown["delivery"] = delivery(change)
            events.append(shown)
        out[code] = {"mode": mode, "cursor": cursor_of(w, code, len(feed)), "events": events}
    return {"epoch": w.overlay.epoch, "sources": out}


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
