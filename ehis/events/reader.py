"""A source's event, as its contract decodes it, made into what subscribers receive.

The same for a push and a poll: the kind's mapper (the source package's) turns the payload into
the canonical model; an event its mapper refuses (the wrong payload for its kind, a payload
about someone else) is kept apart as a problem: recorded and counted, never delivered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ValidationError

from ehis.events.models import Event, event_id
from ehis.events.payload import MalformedEvent
from ehis.evidence import Evidence
from ehis.sources.spec import Service, Source


class Read(BaseModel):
    """One event of a source, mapped but not yet attributed to the message it came in."""

    source_event_id: str
    key: str
    subject: str
    occurred_at: AwareDatetime
    data: dict[str, Any] | None = None
    problem: str | None = None  # why it cannot be delivered (then data is None)


class ChangesPage(BaseModel):
    """A polled source's answer to GetChangesSince: its events, where to go on from, whether more wait."""

    events: list[Read]
    cursor: str
    more: bool


class ChangesQuery(BaseModel):
    cursor: str | None = None
    limit: int


def read(source: Source, raw: dict[str, Any]) -> Read:
    """A decoded `Event` of `source`'s contract, mapped by its kind (a problem instead when it cannot be)."""
    assert source.events is not None
    occurred: datetime = raw["occurredAt"]
    if occurred.tzinfo is None:  # xs:dateTime without a zone: the source's clock, taken as UTC
        occurred = occurred.replace(tzinfo=UTC)
    head = {"source_event_id": raw["id"], "key": f"{source.code}.{raw['kind']}", "subject": raw["fin"],
            "occurred_at": occurred}
    kind = source.events.kind(raw["kind"])
    if kind is None:
        return Read(**head, problem=f"{source.code} sends no {raw['kind']!r} events")
    try:
        data = kind.mapper(raw).model_dump(mode="json")
    except (MalformedEvent, ValidationError, KeyError, TypeError, ValueError) as exc:
        return Read(**head, problem=f"the {head['key']} event {raw['id']} is malformed: {_short(exc)}")
    return Read(**head, data=data)


def attribute(read_: Read, *, via: Literal["push", "poll"], evidence: Evidence) -> Event:
    """The event subscribers receive: `read_` with the signed message it came in."""
    assert read_.data is not None, "an event with a problem is never delivered"
    system = read_.key.split(".", 1)[0]
    return Event(id=event_id(system, read_.source_event_id), key=read_.key, source_event_id=read_.source_event_id,
                 subject=read_.subject, occurred_at=read_.occurred_at, received_at=datetime.now(UTC), via=via,
                 signed_by=evidence.signer, evidence=evidence.digest, data=read_.data)


def changes_service(source: Source) -> Service:
    """How the hub asks a source for its changes: never cached, about no one in particular."""
    assert source.events is not None

    def page(body: dict[str, Any]) -> ChangesPage:
        return ChangesPage(events=[read(source, e) for e in body["event"]], cursor=body["cursor"], more=body["more"])

    return Service(f"{source.code}.changes", "GetChangesSince", params=ChangesQuery, model=ChangesPage, mapper=page,
                   cache_ttl=None, subject=None)


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)[:200]
