"""Checkpoints, time-stamps and kept answers on both databases: the tampering the chain alone misses."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from ehis.audit import ExchangeLog, open_log
from ehis.audit.chain import GENESIS, canonical, link
from ehis.audit.evidence_store import EvidenceStore

from .evidence_support import KEY, Tsa, checkpointer, signed_answer, verify
from .support import NOW, Raw, record


class EvidenceContract:
    @pytest.fixture
    def tsa(self, pki) -> Tsa:
        from ehis.simulators.tsa import TimeStamper

        return Tsa(TimeStamper(pki.tsa()))

    async def test_checkpoints_chain_and_verify_reaches_them(self, log: ExchangeLog, pki, tsa: Tsa) -> None:
        cp = checkpointer(log, pki, tsa)
        for n in range(5):
            await log.append(record(n))
        first = await cp.checkpoint()
        assert first is not None and (first.first_seq, first.seq, first.start_hash) == (1, 5, GENESIS)
        assert await cp.checkpoint() is None  # nothing new to sign
        for n in range(5, 7):
            await log.append(record(n))
        second = await cp.checkpoint()
        assert second is not None and (second.first_seq, second.previous, second.start_hash) == (6, first.digest,
                                                                                              first.hash)
        report = await verify(log, pki)
        assert (report.ok, report.checkpoints, report.stamped, report.checked) == (True, 2, 2, 7)

    async def test_deleting_the_newest_records_is_found(self, log: ExchangeLog, raw: Raw, pki, tsa: Tsa) -> None:
        for n in range(5):
            await log.append(record(n))
        await checkpointer(log, pki, tsa).checkpoint()
        await raw.execute("DELETE FROM exchange_log WHERE seq >= 4")
        assert (await log.verify()).ok  # the chain alone cannot tell
        report = await verify(log, pki)
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "truncated", 4)

    async def test_a_rewritten_record_with_a_recomputed_chain_is_found(self, log: ExchangeLog, pki,
                                                                        tsa: Tsa) -> None:
        stored = [await log.append(record(n)) for n in range(5)]
        await checkpointer(log, pki, tsa).checkpoint()
        prev = stored[1].hash
        for r in stored[2:]:  # rewrite record 3, then every hash after it, as the log's owner could
            r = r.model_copy(update={"purpose": "forged"} if r.seq == 3 else {})
            digest = link(prev, canonical(r))
            await log.backend.execute("UPDATE exchange_log SET purpose = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                                      (r.purpose, prev, digest, r.seq))
            prev = digest
        assert (await log.verify()).ok
        report = await verify(log, pki)
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "rewritten", 5)

    async def test_a_changed_checkpoint_is_refused(self, log: ExchangeLog, raw: Raw, pki, tsa: Tsa) -> None:
        for n in range(3):
            await log.append(record(n))
        made = await checkpointer(log, pki, tsa).checkpoint()
        assert made is not None
        await raw.execute(f"UPDATE exchange_checkpoint SET hash = '{'0' * 64}'")
        assert (await verify(log, pki)).problem == "checkpoint"
        await raw.execute(f"UPDATE exchange_checkpoint SET hash = '{made.hash}'")
        assert (await verify(log, pki)).ok
        forged = made.document.replace(b"<cp:Seq>3<", b"<cp:Seq>2<")
        await log.backend.execute("UPDATE exchange_checkpoint SET document = ?", (forged,))
        report = await verify(log, pki)
        assert (report.ok, report.problem) == (False, "checkpoint") and "signature" in report.detail

    async def test_deleted_checkpoints_are_found_with_an_exported_copy(self, log: ExchangeLog, raw: Raw, pki,
                                                                        tsa: Tsa, tmp_path: Path) -> None:
        cp = checkpointer(log, pki, tsa, export_dir=tmp_path / "kept")
        for n in range(6):
            await log.append(record(n))
            if n in (2, 5):
                await cp.checkpoint()
        kept = sorted((tmp_path / "kept").iterdir())
        assert [p.name for p in kept] == ["checkpoint-000000000003.xml", "checkpoint-000000000006.xml"]
        await raw.execute("DELETE FROM exchange_log WHERE seq > 3")
        await raw.execute("DELETE FROM exchange_checkpoint WHERE seq > 3")
        assert (await verify(log, pki)).ok  # the database alone now agrees with itself
        report = await verify(log, pki, exported=[p.read_bytes() for p in kept])
        assert (report.ok, report.problem, report.first_bad_seq) == (False, "truncated", 4)

    async def test_unreachable_tsa_delays_then_one_stamp_covers_the_batch(self, log: ExchangeLog, pki,
                                                                           tsa: Tsa) -> None:
        cp = checkpointer(log, pki, tsa, max_unstamped=0.05)
        tsa.up = False
        for n in range(4):
            await log.append(record(n))
            if n % 2:
                await cp.checkpoint()
        assert cp.unstamped_since is not None and cp.last_error and "cannot be reached" in cp.last_error
        await asyncio.sleep(0.1)
        assert cp.delay() > 0.05 and cp.overdue()
        assert (await verify(log, pki)).stamped == 0
        tsa.up, tsa.requests = True, 0
        stamped = await cp.stamp()
        assert stamped is not None and stamped.seq == 4 and tsa.requests == 1  # one request for the batch
        assert (cp.delay(), cp.overdue()) == (0.0, False)
        report = await verify(log, pki)
        assert (report.ok, report.checkpoints, report.stamped) == (True, 2, 2)

    async def test_two_workers_keep_one_chain_of_checkpoints(self, database_url: str, pki, tsa: Tsa) -> None:
        async with open_log(database_url) as first, open_log(database_url) as second:
            signers = [checkpointer(first, pki, None), checkpointer(second, pki, None)]
            for n in range(6):
                await asyncio.gather(first.append(record(2 * n)), second.append(record(2 * n + 1)))
                await asyncio.gather(*(s.checkpoint() for s in signers))
            report = await verify(first, pki)
        assert report.ok and report.checkpoints == 6, report

    async def test_kept_answers_open_and_a_changed_one_is_found(self, log: ExchangeLog, pki, tsa: Tsa) -> None:
        store = EvidenceStore(log.backend, KEY)
        await store.start()
        answers = [signed_answer(pki, str(n)) for n in range(2)]
        try:
            await asyncio.gather(*(store.keep("din", a) for a in answers))
        finally:
            await store.stop()
        for n, a in enumerate(answers):
            await log.append(record(n, evidence=a.digest, signer=a.signer))
        kept = await store.get(answers[0].digest)
        assert kept is not None and kept.open(KEY) == answers[0].signed and kept.sealed != answers[0].signed
        assert (await verify(log, pki, key=KEY)).answers == 2
        tampered = bytearray(kept.sealed)
        tampered[40] ^= 1
        await log.backend.execute("UPDATE exchange_evidence SET sealed = ? WHERE digest = ?",
                                  (bytes(tampered), kept.digest))
        report = await verify(log, pki, key=KEY)
        assert (report.ok, report.problem) == (False, "evidence") and kept.digest in report.detail
        other = await store.get(answers[1].digest)
        assert other is not None
        await log.backend.execute("UPDATE exchange_evidence SET sealed = ? WHERE digest = ?",
                                  (other.sealed, kept.digest))  # another answer filed under this digest
        assert (await verify(log, pki, key=KEY)).problem == "evidence"

    async def test_archives_carry_kept_answers_and_retention_removes_them(self, log: ExchangeLog, raw: Raw, pki,
                                                                          tsa: Tsa, archive_dir: Path) -> None:
        store = EvidenceStore(log.backend, KEY)
        await store.start()
        old, live = signed_answer(pki, "old"), signed_answer(pki, "live")
        await store.keep("din", old)
        await store.keep("din", live)
        await store.stop()
        past = NOW - timedelta(days=10)
        await log.append(record(1, time=past, evidence=old.digest, signer=old.signer))
        await log.append(record(2, time=past, evidence=live.digest, signer=live.signer))
        await log.append(record(3, evidence=live.digest, signer=live.signer))  # a cache hit of the same answer
        await checkpointer(log, pki, tsa).checkpoint()
        result = await log.archive(NOW - timedelta(days=1), archive_dir)
        assert result.count == 2
        assert await raw.scalar("SELECT COUNT(*) FROM exchange_evidence") == 1  # the live record's answer stays
        chain = await log.verify_archives(archive_dir)
        from ehis.audit.attest import verify_against_checkpoints
        from ehis.audit.checkpoints import LogTrust

        report = await verify_against_checkpoints(log.backend, chain, LogTrust.from_files(pki.ca_file),
                                                  archive_dir=archive_dir, key=KEY, ca_file=pki.ca_file)
        assert (report.ok, report.checkpoints, report.answers) == (True, 1, 3), report  # 2 archived, 1 live

    async def test_a_swapped_archive_is_found(self, log: ExchangeLog, raw: Raw, pki, tsa: Tsa,
                                              archive_dir: Path, tmp_path: Path) -> None:
        past = NOW - timedelta(days=10)
        for n in range(3):
            await log.append(record(n, time=past + timedelta(seconds=n)))
        await log.append(record(9))
        await checkpointer(log, pki, tsa).checkpoint()
        made = await log.archive(NOW - timedelta(days=1), archive_dir)
        assert made.path is not None
        other_url = f"sqlite:///{tmp_path / 'other.db'}"
        async with open_log(other_url) as other:  # the same records with another purpose, as a forger makes them
            for n in range(3):
                await other.append(record(n, time=past + timedelta(seconds=n), purpose="forged"))
            forged = await other.archive(NOW - timedelta(days=1), tmp_path / "forged")
        assert forged.path is not None
        shutil.copyfile(forged.path, made.path)
        await raw.execute(f"UPDATE exchange_anchor SET digest = '{forged.digest}', hash = '{forged.anchor}'")
        chain = await log.verify_archives(archive_dir)
        assert not chain.ok  # the live log no longer follows the archive
