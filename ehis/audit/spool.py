"""The exchange log's local spool: where records go while the database is down or frozen.

A record must be durable before its reply is sent, and a frozen database must not hold a reply past
the caller's deadline. So an append that the database does not take in time goes to an append-only
file under the data directory, fsynced (group commit: one fsync for whatever queued meanwhile), and
a background task replays the spool into the hash chain, in order, when the database answers again.

Each process writes its own segment file, locked with flock while it is open; a segment nobody
holds (sealed by its writer, or left by a process that died) is replayed by whichever worker gets
its lock first. Replay skips records whose request id the log already holds, so it can be repeated
after a crash mid-replay, and a batch that a frozen database committed late is not written twice.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from ehis.audit.model import ExchangeRecord

log = logging.getLogger(__name__)  # counts and file names only: records carry personal data

SUFFIX = ".spool"


def _tag(record: ExchangeRecord, tag: str) -> ExchangeRecord:
    kinds = [k for k in (record.delivery or "").split(",") if k]
    if tag not in kinds:
        kinds.append(tag)
    return record.model_copy(update={"delivery": ",".join(kinds)})


class Spool:
    """Append-only, fsynced record files in `directory`; `append` returns once the record is on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._serial = 0
        self._size = 0
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._prefix = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    # -- writing -------------------------------------------------------------------------------

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._new_segment()

    def close(self) -> None:
        if self._file is not None:
            empty = self._size == 0
            self._file.close()  # releases the lock: another worker may replay what is left
            if empty and self._path is not None:
                self._path.unlink(missing_ok=True)
            self._file = None

    @property
    def holding(self) -> int:
        """Bytes in this process's open segment (records not replayed yet)."""
        return self._size + sum(len(line) for line, _ in self._queue)

    async def append(self, record: ExchangeRecord) -> None:
        """Write `record` (tagged `spooled`) and fsync; raises OSError if the disk refuses it."""
        if self._file is None:
            raise OSError("the spool is not open")
        line = _tag(record, "spooled").model_dump_json().encode() + b"\n"
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((line, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name="log-spool-flush")
        await asyncio.shield(future)  # a caller that gives up does not unwrite its line

    async def _flush_loop(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            data = b"".join(line for line, _ in batch)
            file = self._file
            try:
                if file is None:
                    raise OSError("the spool is closed")
                await asyncio.to_thread(_write_synced, file, data)
            except OSError as exc:
                log.error("the log spool could not write %d records: %s", len(batch), type(exc).__name__)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(OSError(str(exc)))
                continue
            self._size += len(data)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def drained(self) -> None:
        """Return once nothing queued is still waiting for its fsync."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})

    def _new_segment(self) -> None:
        self._serial += 1
        path = self.directory / f"{self._prefix}-{self._serial:06d}{SUFFIX}"
        file = open(path, "ab", buffering=0)  # noqa: SIM115 - held open for the segment's life
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.chmod(path, 0o600)
        self._file, self._path, self._size = file, path, 0

    async def seal(self) -> bool:
        """Close the open segment if it holds records (so it can be replayed) and start a new one."""
        await self.drained()
        if self._size == 0 or self._file is None:
            return False
        old = self._file
        self._new_segment()
        old.close()
        return True

    # -- replaying -----------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """Segments no process holds open, oldest first (by name within a writer, then by time)."""
        paths = [p for p in self.directory.glob(f"*{SUFFIX}") if p != self._path]
        return sorted(paths, key=lambda p: (p.stat().st_mtime if p.exists() else 0.0, p.name))

    async def replay(self, write: Callable[[list[ExchangeRecord]], object],
                     batch: int = 256) -> int:
        """Hand the records of every free segment to `write` (an async callable taking a list, in
        order), deleting each segment once written; returns how many records were handed over."""
        total = 0
        for path in self.segments():
            try:
                file = open(path, "rb")  # noqa: SIM115, ASYNC230 - a local file, read once
            except FileNotFoundError:
                continue
            with file:
                try:
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer still holds it, or another worker is replaying it
                records = _read(file, path)
                for start in range(0, len(records), batch):
                    await write(records[start:start + batch])  # type: ignore[misc]
                total += len(records)
                path.unlink(missing_ok=True)
        return total


def _write_synced(file: IO[bytes], data: bytes) -> None:
    file.write(data)
    os.fsync(file.fileno())


def _read(file: IO[bytes], path: Path) -> list[ExchangeRecord]:
    records: list[ExchangeRecord] = []
    for number, line in enumerate(file.read().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(ExchangeRecord.model_validate_json(line))
        except ValidationError:  # a line torn by a crash mid-write: its reply was never sent
            log.warning("log spool %s: line %d is unreadable, skipped", path.name, number)
    return records

