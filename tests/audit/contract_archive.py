"""The retention half of the log contract: archives, their chain, and tampering with them.

A mixin of `LogContract` (whose fixtures it uses), kept apart to keep each module short.
"""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from ehis.audit import ExchangeLog, ExchangeRecord
from ehis.audit.chain import canonical, link

from .support import NOW, Raw, record


def rewrite_archive(path: Path, change: Any, rechain: bool = False) -> None:
    """Edit the records of an archive file; with `rechain`, recompute every hash and the footer like a forger."""
    lines = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    header, records, footer = lines[0], lines[1:-1], lines[-1]
    change(records)
    prev = header["prev_hash"]
    for obj in records if rechain else []:
        body = {k: v for k, v in obj.items() if k not in ("seq", "prev_hash", "hash")}
        obj["prev_hash"], obj["hash"] = prev, link(prev, canonical(ExchangeRecord(**body)))
        prev = obj["hash"]
    if rechain:
        footer["anchor"] = prev
    path.write_bytes(gzip.compress(b"".join(json.dumps(o).encode() + b"\n" for o in [header, *records, footer])))


class ArchiveContract:
    async def test_archive_exports_the_prefix_and_the_log_continues_from_the_anchor(
            self, log: ExchangeLog, raw: Raw, archive_dir: Path) -> None:
        old = NOW - timedelta(days=10)
        times = [old, old, NOW, old, NOW, NOW]  # seq 3 is newer, but inside the prefix up to seq 4
        stored = [await log.append(record(n, time=t)) for n, t in enumerate(times)]
        result = await log.archive(NOW - timedelta(days=1), archive_dir)
        assert (result.count, result.first_seq, result.last_seq) == (4, 1, 4)
        assert result.anchor == stored[3].hash and result.prev_digest is None
        assert result.path is not None and result.path.exists()
        assert [p.name for p in archive_dir.iterdir()] == [result.path.name]  # no .partial left
        assert await raw.scalar("SELECT MIN(seq) FROM exchange_log") == 5

        live = await log.verify()
        assert (live.ok, live.checked, live.last_seq) == (True, 2, 6)
        assert (await log.append(record(9))).prev_hash == stored[5].hash
        full = await log.verify_archives(archive_dir)
        assert (full.ok, full.checked) == (True, 7)

        await raw.execute("DELETE FROM exchange_log WHERE seq = 5")  # the first record after the anchor
        report = await log.verify()
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "removed", 5)

    async def test_archive_of_an_emptied_log_continues_the_chain(self, log: ExchangeLog, archive_dir: Path) -> None:
        last = [await log.append(record(n, time=NOW - timedelta(days=5))) for n in range(3)][-1]
        await log.archive(NOW, archive_dir)
        assert (await log.verify()).checked == 0
        nxt = await log.append(record(7))
        assert (nxt.seq, nxt.prev_hash) == (4, last.hash)
        assert (await log.verify()).ok

    async def test_nothing_to_archive(self, log: ExchangeLog, archive_dir: Path) -> None:
        await log.append(record())
        result = await log.archive(NOW - timedelta(days=1), archive_dir)
        assert (result.path, result.count) == (None, 0)
        assert (await log.verify()).checked == 1

    async def test_a_second_archive_chains_to_the_first(self, log: ExchangeLog, archive_dir: Path) -> None:
        for n in range(3):
            await log.append(record(n, time=NOW - timedelta(days=20)))
        first = await log.archive(NOW - timedelta(days=15), archive_dir)
        for n in range(3, 5):
            await log.append(record(n, time=NOW - timedelta(days=10)))
        await log.append(record(5))
        second = await log.archive(NOW - timedelta(days=5), archive_dir, compress=False)
        assert (second.first_seq, second.last_seq, second.prev_digest) == (4, 5, first.digest)
        assert second.path is not None
        header = json.loads(second.path.read_text().splitlines()[0])
        assert (header["prev_archive_digest"], header["prev_hash"]) == (first.digest, first.anchor)
        report = await log.verify_archives(archive_dir)
        assert (report.ok, report.checked, report.last_seq) == (True, 6, 6)

    async def _two_archives(self, log: ExchangeLog, archive_dir: Path) -> tuple[Path, Path]:
        for n in range(6):
            await log.append(record(n, time=NOW - timedelta(days=20 - 2 * n)))
        first = await log.archive(NOW - timedelta(days=15), archive_dir)
        second = await log.archive(NOW - timedelta(days=5), archive_dir)
        assert first.path and second.path and (await log.verify_archives(archive_dir)).ok
        return first.path, second.path

    async def test_a_changed_archive_record_is_detected(self, log: ExchangeLog, archive_dir: Path) -> None:
        first, _ = await self._two_archives(log, archive_dir)

        def change(records: list[dict]) -> None:
            records[1]["purpose"] = "forged"

        rewrite_archive(first, change)
        report = await log.verify_archives(archive_dir)
        assert (report.ok, report.problem, report.first_bad_seq, report.archive) == (False, "changed", 2, first.name)

    async def test_a_rechained_archive_is_caught_by_the_digest_chain(self, log: ExchangeLog, archive_dir: Path) -> None:
        first, second = await self._two_archives(log, archive_dir)

        def change(records: list[dict]) -> None:
            records[0]["purpose"] = "forged"

        rewrite_archive(first, change, rechain=True)  # the first file is consistent in itself…
        report = await log.verify_archives(archive_dir)
        assert (report.ok, report.problem, report.archive) == (False, "broken_archive", second.name)
        assert "digest" in report.detail  # …but the next archive recorded its digest

    async def test_a_rechained_last_archive_is_caught_by_the_recorded_anchor(
            self, log: ExchangeLog, archive_dir: Path) -> None:
        for n in range(3):
            await log.append(record(n, time=NOW - timedelta(days=3)))
        result = await log.archive(NOW, archive_dir)
        assert result.path is not None

        def change(records: list[dict]) -> None:
            records[2]["subsystem"] = "someone-else"

        rewrite_archive(result.path, change, rechain=True)
        report = await log.verify_archives(archive_dir)
        assert (report.ok, report.problem, report.archive) == (False, "broken_archive", result.path.name)

    async def test_a_removed_archive_is_detected(self, log: ExchangeLog, archive_dir: Path) -> None:
        first, second = await self._two_archives(log, archive_dir)
        first.unlink()
        report = await log.verify_archives(archive_dir)
        assert (report.ok, report.problem, report.archive) == (False, "broken_archive", second.name)

