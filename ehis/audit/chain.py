"""The hash chain: one canonical form of a record, one way to link it, one walk to check it.

Both databases and the archive files use these functions, so a record hashes the same wherever
it is read from. `hash = sha256(prev_hash + canonical JSON)`; the canonical JSON has sorted
keys, no spaces, UTF-8, the time as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, and leaves out
fields that are None (so adding an optional field to ExchangeRecord keeps old hashes valid).
`seq` is not hashed: the position is bound by `prev_hash`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterable, Awaitable, Callable
from datetime import UTC, datetime

from ehis.audit.model import ExchangeRecord, Problem, StoredRecord, VerifyReport

GENESIS = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_FIELDS = tuple(ExchangeRecord.model_fields)

#: Where a hash is found in the same log, to tell a reordering from a removal.
Locate = Callable[[str], Awaitable[int | None]]


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive time is taken to be UTC already (the hub records UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """Fixed width, so the text sorts like the time (SQLite stores and compares it as text)."""
    return utc(moment).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def canonical_fields(record: ExchangeRecord) -> dict[str, object]:
    """The hashed fields as JSON values (None left out, time as fixed text)."""
    fields: dict[str, object] = {}
    for name in _FIELDS:
        value = getattr(record, name)
        if value is None:
            continue
        if name == "time":
            value = format_time(value)
        elif name == "duration_ms":
            value = float(value)
        fields[name] = value
    return fields


def canonical(record: ExchangeRecord) -> bytes:
    return json.dumps(canonical_fields(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def bad(checked: int, seq: int | None, problem: Problem, detail: str, archive: str | None = None) -> VerifyReport:
    return VerifyReport(ok=False, checked=checked, first_bad_seq=seq, problem=problem, detail=detail, archive=archive)


async def check_chain(
    records: AsyncIterable[StoredRecord], start_seq: int, start_hash: str, locate: Locate
) -> VerifyReport:
    """Walk `records` (in seq order) from the anchor (`start_seq`, `start_hash`); stop at the first break.

    A record whose own hash does not match was changed; a missing seq means records were
    removed; a record that links to a record found elsewhere in the log was moved (reordered);
    a record that links to nothing known follows a record that was removed or rewritten.
    """
    expected, prev, checked = start_seq + 1, start_hash, 0
    async for record in records:
        if record.seq > expected:
            return bad(checked, expected, "removed", f"records {expected}..{record.seq - 1} are missing")
        if record.seq < expected:
            return bad(checked, record.seq, "reordered", f"record {record.seq} appears after record {expected - 1}")
        if link(record.prev_hash, canonical(record)) != record.hash:
            return bad(checked, record.seq, "changed", f"record {record.seq} does not match its hash: it was changed")
        if record.prev_hash != prev:
            found = await locate(record.prev_hash)
            if found is not None and found != record.seq - 1:
                detail = f"record {record.seq} links to the record now at seq {found}: records were reordered"
                return bad(checked, record.seq, "reordered", detail)
            detail = f"record {record.seq} does not link to record {record.seq - 1}: a record was removed or rewritten"
            return bad(checked, record.seq, "removed", detail)
        prev, expected, checked = record.hash, expected + 1, checked + 1
    return VerifyReport(ok=True, checked=checked, last_seq=expected - 1, last_hash=prev)
