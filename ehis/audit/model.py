"""The records the statute asks for, as plain models shared by the stores, the CLI and the admin page."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ExchangeRecord(BaseModel):
    """One exchange: who asked what about whom, why, and what came of it.

    `subject` is the data subject's identifier in full (FIN, VÖEN…): this log, unlike the
    application log, exists to say who accessed whose data.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str
    time: datetime  # UTC, when the hub finished the exchange
    subsystem: str  # the caller, as the broker vouched for it
    user: str = ""  # the official
    purpose: str = ""  # the stated purpose
    service: str
    source: str  # the source system code
    subject: str | None = None
    outcome: str  # "ok" or "error"
    error_code: str | None = None
    cache: str | None = None  # hit, miss, coalesced; None when no source was asked (refused early)
    duration_ms: float = 0.0
    signer: str | None = None  # subject of the certificate that signed the source's answer
    evidence: str | None = None  # SHA-256 digest of the signed source response


class StoredRecord(ExchangeRecord):
    """A record as the chain holds it: `hash` covers `prev_hash` and every field above."""

    seq: int
    prev_hash: str
    hash: str


class LogQuery(BaseModel):
    subject: str | None = None
    subsystem: str | None = None
    service: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(100, ge=1, le=10_000)


class Outage(BaseModel):
    """A period during which a source's breaker was open (or half open): ended_at None = ongoing."""

    source: str
    started_at: datetime
    ended_at: datetime | None = None
    reason: str = ""


class SourceStats(BaseModel):
    """Exchanges with one source over a window, from the log (so across every worker)."""

    source: str
    total: int
    errors: int
    last_ok_at: datetime | None = None
