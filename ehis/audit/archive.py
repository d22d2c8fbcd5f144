"""Retention: old records move to archive files that chain to each other and to the live log.

An archive is JSON lines (gzip by default): a header (first and last seq, the hash the first
record links to, the previous archive's sha256), the records as the chain holds them, and a
footer (count, last seq, the anchor = last record's hash). The database keeps every anchor
(seq, hash, file, digest), so the live log verifies from the last one and `verify_archives`
can tell a replaced file even when its inner chain was recomputed.

The file is written as `<name>.partial`, the records are deleted and the anchor recorded in one
transaction, then the file is renamed; a crash after the commit is finished by the next run.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ehis.audit.backend import SELECT_EVIDENCE, Anchor, Backend, Snapshot
from ehis.audit.chain import GENESIS, bad, canonical_fields, check_chain, format_time
from ehis.audit.model import ArchiveResult, StoredRecord, VerifyReport

FORMAT = "ehis-exchange-archive/1"
PREFIX = "exchange-log-"


class ArchiveError(RuntimeError):
    """The archive was not made: the log is broken, or another archive ran at the same time."""


class BrokenArchive(Exception):
    def __init__(self, detail: str, seq: int | None = None) -> None:
        super().__init__(detail)
        self.seq = seq


def archive_name(first_seq: int, last_seq: int, compress: bool) -> str:
    return f"{PREFIX}{first_seq:012d}-{last_seq:012d}.jsonl" + (".gz" if compress else "")


def archive_files(directory: Path) -> list[Path]:
    """The archives in chain order (zero-padded seqs sort as text)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(PREFIX) and p.name.endswith((".jsonl", ".gz")))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _record_line(record: StoredRecord) -> bytes:
    return _line({**canonical_fields(record), "seq": record.seq, "prev_hash": record.prev_hash, "hash": record.hash})


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish_rename(directory: Path, anchor: Anchor) -> None:
    """Complete an archive whose commit happened but whose rename did not (a crash in between)."""
    if anchor.file is None or (directory / anchor.file).exists():
        return
    partial = directory / f"{anchor.file}.partial"
    if partial.exists() and file_digest(partial) == anchor.digest:
        partial.rename(directory / anchor.file)
        _fsync_dir(directory)


async def _export(snapshot: Snapshot, cutoff: int, partial: Path, compress: bool) -> tuple[VerifyReport, set[str]]:
    """Write records up to `cutoff` to `partial`, checking the chain on the way, then the kept
    answers they refer to (full evidence); returns the digests those records refer to."""
    anchor = snapshot.anchor
    header = {"kind": "header", "format": FORMAT, "first_seq": anchor.seq + 1, "last_seq": cutoff,
              "prev_hash": anchor.hash, "prev_archive_digest": anchor.digest,
              "created_at": datetime.now(UTC).isoformat()}
    with partial.open("wb") as raw:
        out = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw
        out.write(_line(header))

        digests: set[str] = set()

        async def written() -> AsyncIterator[StoredRecord]:
            async for record in snapshot.records(upto=cutoff):
                out.write(_record_line(record))
                if record.evidence:
                    digests.add(record.evidence)
                yield record

        report = await check_chain(written(), anchor.seq, anchor.hash, snapshot.seq_of_hash)
        for answer in await _kept_answers(snapshot, sorted(digests)):
            out.write(_line(answer))
        out.write(_line({"kind": "footer", "count": report.checked, "last_seq": report.last_seq,
                         "anchor": report.last_hash}))
        if compress:
            out.close()
        raw.flush()
        os.fsync(raw.fileno())
    return report, digests


async def _kept_answers(snapshot: Snapshot, digests: list[str]) -> list[dict[str, Any]]:
    """The sealed answers (still encrypted) the archived records refer to, as archive lines."""
    lines = []
    for start in range(0, len(digests), 500):
        chunk = digests[start:start + 500]
        rows = await snapshot.fetch(f"{SELECT_EVIDENCE} WHERE digest IN ({', '.join('?' for _ in chunk)})"
                                    " ORDER BY digest", chunk)
        for digest, source, signer, fetched_at, key_id, sealed in rows:
            lines.append({"kind": "evidence", "digest": digest, "source": source, "signer": signer,
                          "fetched_at": format_time(snapshot.backend.time_value(fetched_at)), "key_id": key_id,
                          "sealed": base64.b64encode(bytes(sealed)).decode()})
    return lines


async def _expired_answers(snapshot: Snapshot, before: datetime, cutoff: int, archived: set[str]) -> list[str]:
    """Kept answers retention removes: those of archived records, and those no record refers to
    that are older than `before`; never one a record still in the live log refers to."""
    rows = await snapshot.fetch("SELECT DISTINCT evidence FROM exchange_log WHERE seq > ? AND evidence IS NOT NULL",
                                (cutoff,))
    live = {row[0] for row in rows}
    rows = await snapshot.fetch("SELECT digest FROM exchange_evidence WHERE fetched_at < ?",
                                (snapshot.backend.time_param(before),))
    return sorted((archived | {row[0] for row in rows}) - live)


async def archive(backend: Backend, before: datetime, directory: Path, *, compress: bool = True) -> ArchiveResult:
    """Archive the chain's prefix up to the last record older than `before`, then delete it from the log."""
    directory.mkdir(parents=True, exist_ok=True)
    async with backend.snapshot() as snapshot:
        anchor = snapshot.anchor
        _finish_rename(directory, anchor)
        rows = await snapshot.fetch("SELECT MAX(seq) FROM exchange_log WHERE time < ?", (backend.time_param(before),))
        cutoff = rows[0][0]
        if cutoff is None:
            return ArchiveResult(prev_digest=anchor.digest)
        name = archive_name(anchor.seq + 1, cutoff, compress)
        partial = directory / f"{name}.partial"
        report, digests = await _export(snapshot, cutoff, partial, compress)
        expired = await _expired_answers(snapshot, before, cutoff, digests)
    if not report.ok or report.last_seq != cutoff:
        partial.unlink()
        raise ArchiveError(f"not archived: the log is broken at seq {report.first_bad_seq} ({report.problem})")
    new = Anchor(cutoff, report.last_hash or GENESIS, name, file_digest(partial))
    if not await backend.commit_archive(anchor, new, datetime.now(UTC), expired):
        partial.unlink()
        raise ArchiveError("not archived: another archive ran at the same time")
    partial.rename(directory / name)
    _fsync_dir(directory)
    return ArchiveResult(path=directory / name, count=report.checked, first_seq=anchor.seq + 1, last_seq=cutoff,
                         anchor=new.hash, digest=new.digest, prev_digest=anchor.digest)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            for number, line in enumerate(file, 1):
                try:
                    yield json.loads(line)
                except ValueError:
                    raise BrokenArchive(f"line {number} is not JSON") from None
    except (OSError, EOFError) as exc:
        raise BrokenArchive(f"unreadable: {type(exc).__name__}") from None


class ArchiveFile:
    """One archive read line by line: its header, its records (as a chain walk wants them), the
    kept answers after them (`answers`, filled as they are read), its footer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines = _lines(path)
        self.header = next(self._lines, {})
        if self.header.get("kind") != "header" or self.header.get("format") != FORMAT:
            raise BrokenArchive("no archive header")
        self.footer: dict[str, Any] | None = None
        self.answers: list[dict[str, Any]] = []

    async def records(self) -> AsyncIterator[StoredRecord]:
        for obj in self._lines:
            if self.footer is not None:
                raise BrokenArchive("lines after the footer")
            if obj.get("kind") == "footer":
                self.footer = obj
                continue
            if obj.get("kind") == "evidence":
                self.answers.append(obj)
                continue
            if self.answers:
                raise BrokenArchive("a record after the kept answers", obj.get("seq"))
            try:
                yield StoredRecord.model_validate(obj)
            except ValidationError:
                raise BrokenArchive("a record line is not a record", obj.get("seq")) from None

    async def locate(self, digest: str) -> int | None:
        for obj in _lines(self.path):
            if obj.get("hash") == digest and "kind" not in obj:
                return obj.get("seq")
        return None


async def _check_file(path: Path, prev: Anchor) -> tuple[VerifyReport, Anchor]:
    """Check one archive against the end of the previous one; return its own end as an anchor."""
    file = ArchiveFile(path)
    header = file.header
    if header.get("prev_archive_digest") != prev.digest:
        raise BrokenArchive("the previous archive's digest does not match: an archive was replaced or removed")
    if header.get("prev_hash") != prev.hash or header.get("first_seq") != prev.seq + 1:
        raise BrokenArchive("does not continue from the previous archive", header.get("first_seq"))
    report = await check_chain(file.records(), prev.seq, prev.hash, file.locate)
    if not report.ok:
        return report, prev
    footer = file.footer or {}
    if (footer.get("count"), footer.get("last_seq"), footer.get("anchor")) != (
            report.checked, report.last_seq, report.last_hash) or header.get("last_seq") != report.last_seq:
        raise BrokenArchive("header or footer does not match the records (truncated or edited)")
    return report, Anchor(report.last_seq or 0, report.last_hash or GENESIS, path.name, file_digest(path))


async def verify_archives(backend: Backend, directory: Path) -> VerifyReport:
    """Every archive's chain, the digest chain between archives, the anchors the log recorded, the live log."""
    prev, checked, ends = Anchor(), 0, []
    for path in archive_files(directory):
        try:
            report, prev = await _check_file(path, prev)
        except BrokenArchive as exc:
            return bad(checked, exc.seq, "broken_archive", str(exc), archive=path.name)
        if not report.ok:
            return report.model_copy(update={"checked": checked + report.checked, "archive": path.name})
        checked += report.checked
        ends.append(prev)
    async with backend.snapshot() as snapshot:
        anchors = await snapshot.anchors()
        for recorded, found in zip_longest(anchors, ends):
            if recorded != found:
                name = (recorded or found).file
                detail = "the archive does not match the anchor the log recorded for it (replaced, removed or extra)"
                return bad(checked, None, "broken_archive", detail, archive=name)
        live = await check_chain(snapshot.records(), snapshot.anchor.seq, snapshot.anchor.hash, snapshot.seq_of_hash)
    return live.model_copy(update={"checked": checked + live.checked})


async def archived_records(directory: Path, subject: str, since: datetime | None = None,
                           until: datetime | None = None) -> list[StoredRecord]:
    """The archived records about `subject` (in the window), oldest first: a subject report reads them too."""
    found = []
    for path in archive_files(directory):
        try:
            async for record in ArchiveFile(path).records():
                if record.subject == subject and (since is None or record.time >= since) and (
                        until is None or record.time < until):
                    found.append(record)
        except BrokenArchive:
            continue  # `ehis log verify --archives` says what is wrong with it
    return found
