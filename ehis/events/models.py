"""An event as the hub delivers it to a subsystem: what happened, to whom, and its evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ehis.sources.spec import EventKind

#: The longest event a subscriber accepts (bytes of JSON); an event is a few hundred bytes.
MAX_EVENT_BYTES = 64 * 1024


class Event(BaseModel):
    """One event, the same for every subscriber that receives it.

    `id` is `<system>:<the source's event id>`: stable across redeliveries and unique across
    sources, so a subscriber deduplicates by it (delivery is at least once). `data` is the
    kind's canonical model as JSON (`typed()` gives the model itself); `evidence` is the SHA-256
    digest of the signed message it came in (a push, or the answer to a poll), as the exchange
    log keeps it, and `signed_by` the certificate that verified it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(max_length=130)
    key: str = Field(max_length=64)  # "<system>.<kind>": the routing key, e.g. "edliyye.death"
    source_event_id: str = Field(max_length=64)
    subject: str = Field(max_length=16)  # the FIN the event is about
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    via: Literal["push", "poll"]
    signed_by: str
    evidence: str
    data: dict[str, Any]

    @property
    def system(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def kind(self) -> str:
        return self.key.split(".", 1)[1]

    def typed(self) -> BaseModel:
        """`data` as the kind's canonical model (`ehis.mapping`/`ehis.sources.<code>.models`)."""
        return event_kind(self.key).model.model_validate(self.data)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, body: bytes) -> Event:
        return cls.model_validate_json(body)


def event_kind(key: str) -> EventKind:
    """The kind a routing key names, from the source package that sends it; KeyError if none."""
    from ehis.sources import sources

    system, _, kind = key.partition(".")
    feed = sources()[system].events if system in sources() else None
    found = feed.kind(kind) if feed is not None else None
    if found is None:
        raise KeyError(f"no source sends {key!r} events")
    return found


def event_id(system: str, source_event_id: str) -> str:
    return f"{system}:{source_event_id}"


def received_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
