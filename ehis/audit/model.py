"""The records the statute asks for, as plain models shared by the stores, the CLI and the admin page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

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
    parent_id: str | None = None  # a part of another exchange (a composite's, a routing lookup): its request id
    endpoint: str | None = None  # the provider that answered, for sources with several (a bureau, an authority)
    # how the record reached the log when not the ordinary way: "redelivered" (the broker handed the
    # request over again, a worker having died with it) and/or "spooled" (kept in the local spool while
    # the database was away, then replayed into the chain), comma-separated
    delivery: str | None = None


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
    error_code: str | None = None
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
    errors: int  # the source failing (ehis.errors.SOURCE_FAILURES): its error rate
    last_ok_at: datetime | None = None
    caller_errors: int = 0  # callers' mistakes and not-found answers (ehis.errors.CALLER_ERRORS)
    other_errors: int = 0  # deadline_exceeded, internal: neither the source's nor the caller's for sure


Problem = Literal["changed", "removed", "reordered", "broken_archive",
                  "truncated", "rewritten", "checkpoint", "timestamp", "evidence"]


class VerifyReport(BaseModel):
    """What a walk along the chain found: `ok`, or the first record (or archive) that breaks it.

    `last_seq`/`last_hash` are the head seen when ok: noting them elsewhere is what catches a
    cut-off tail, which no chain can detect on its own.
    """

    ok: bool
    checked: int = 0
    first_bad_seq: int | None = None
    problem: Problem | None = None
    detail: str = ""
    archive: str | None = None  # the archive file the problem is in, if any
    last_seq: int | None = None
    last_hash: str | None = None
    checkpoints: int = 0  # signed checkpoints checked against the records
    stamped: int = 0  # of which covered by a verified RFC 3161 time-stamp
    answers: int = 0  # kept signed source answers decrypted and verified


class Checkpoint(BaseModel):
    """The log's head signed by the operator: records `first_seq`..`seq`, their Merkle `root`,
    the chain hash at `seq`, and the digest of the previous checkpoint's document.

    `document` is the signed XML exactly as stored, stamped and exported; `digest` its SHA-256.
    `token` (an RFC 3161 TimeStampResp) is kept on the newest checkpoint of each stamped batch:
    it covers the earlier ones through their `previous` digests.
    """

    seq: int
    first_seq: int
    start_hash: str  # the chain hash the first record links to
    hash: str
    root: str
    previous: str | None = None
    time: datetime
    log: str = "ehis"
    document: bytes
    digest: str
    token: bytes | None = None
    stamped_at: datetime | None = None


class ArchiveResult(BaseModel):
    """One archive run: `path` None (and count 0) when no record was old enough."""

    path: Path | None = None
    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    anchor: str | None = None  # hash of the last archived record: the live log continues from it
    digest: str | None = None  # sha256 of the archive file, carried by the next archive's header
    prev_digest: str | None = None


class SubjectAccess(BaseModel):
    """One line of a subject access report: who looked at the person's data, when, why, and the result."""

    seq: int
    request_id: str
    time: datetime
    subsystem: str
    user: str
    purpose: str
    service: str
    source: str
    outcome: str
    error_code: str | None = None


class SubjectReport(BaseModel):
    """Everything the live log holds on one data subject, oldest first (the citizen's right of access)."""

    subject: str
    since: datetime | None = None
    until: datetime | None = None
    generated_at: datetime
    accesses: list[SubjectAccess]
