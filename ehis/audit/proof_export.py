"""Making proofs from the log (live or archived): `ehis log proof` and `ehis log report --with-proofs`.

A record newer than the last checkpoint gets one made on demand, and an unstamped checkpoint is
stamped first; without a time-stamp no proof is written (it would prove nothing about time).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from ehis.audit.archive import ArchiveFile, archive_files
from ehis.audit.backend import SELECT, SELECT_EVIDENCE, Backend
from ehis.audit.chain import parse_time
from ehis.audit.checkpointer import Checkpointer
from ehis.audit.evidence_store import EvidenceKey, EvidenceStore, KeptAnswer
from ehis.audit.model import StoredRecord
from ehis.audit.proofs import PROOF, REPORT, ProofError, dumps, payload, sealed


class Exporter:
    """Proofs of records of one log, sealed by its TSA."""

    def __init__(self, backend: Backend, checkpoints: Checkpointer, archive_dir: Path,
                 key: EvidenceKey | None) -> None:
        self.backend = backend
        self.checkpoints = checkpoints
        self.archive_dir = archive_dir
        self.key = key

    async def record(self, request_id: str) -> StoredRecord | None:
        rows = await self.backend.fetch(f"{SELECT} WHERE request_id = ? ORDER BY seq LIMIT 1", (request_id,))
        if rows:
            return self.backend.record(rows[0])
        async for record in self._archived():
            if record.request_id == request_id:
                return record
        return None

    async def subject_records(self, subject: str) -> list[StoredRecord]:
        """Every record about `subject`, archived ones first (they are older)."""
        found = [r async for r in self._archived() if r.subject == subject]
        return found + await self.backend.subject_records(subject, None, None)

    async def proof(self, record: StoredRecord) -> dict:
        """The unsealed proof of one record."""
        checkpoint = await self.backend.covering_checkpoint(record.seq)
        if checkpoint is None:
            await self.checkpoints.checkpoint()
            checkpoint = await self.backend.covering_checkpoint(record.seq)
        stamped = await self.backend.stamped_after(record.seq)
        if stamped is None:
            await self.checkpoints.stamp()
            stamped = await self.backend.stamped_after(record.seq)
        if checkpoint is None or stamped is None:
            raise ProofError("no time-stamped checkpoint covers this record yet: the TSA is not answering"
                             f" ({self.checkpoints.last_error or 'no TSA configured'})")
        chain = await self.backend.checkpoint_range(checkpoint.seq, stamped.seq)
        hashes = await self._hashes(checkpoint.first_seq, checkpoint.seq)
        return payload(record, hashes, chain, await self._answer(record))

    async def seal(self, body: dict) -> bytes:
        """The proof file: `body` sealed by an RFC 3161 time-stamp of its exact bytes."""
        if self.checkpoints.tsa is None:
            raise ProofError("a proof is sealed by the TSA, and none is configured (tsa_url)")
        return sealed(body, (await self.checkpoints.tsa.stamp(dumps(body))).token)

    async def report(self, subject: str) -> bytes:
        proofs = [await self.proof(r) for r in await self.subject_records(subject)]
        body = {"format": REPORT, "subject": subject, "generated_at": datetime.now(UTC).isoformat(), "proofs": proofs}
        return await self.seal(body)

    async def single(self, request_id: str) -> bytes:
        record = await self.record(request_id)
        if record is None:
            raise ProofError(f"no record of request {request_id} in the log or its archives")
        body = await self.proof(record)
        assert body["format"] == PROOF
        return await self.seal(body)

    async def _archived(self) -> AsyncIterator[StoredRecord]:
        for path in archive_files(self.archive_dir):
            async for record in ArchiveFile(path).records():
                yield record

    async def _hashes(self, first: int, last: int) -> list[str]:
        rows = await self.backend.fetch("SELECT seq, hash FROM exchange_log WHERE seq >= ? AND seq <= ? ORDER BY seq",
                                        (first, last))
        found = {seq: digest for seq, digest in rows}
        if len(found) < last - first + 1:
            async for record in self._archived():
                if first <= record.seq <= last:
                    found[record.seq] = record.hash
        if sorted(found) != list(range(first, last + 1)):
            raise ProofError(f"the records {first}..{last} of the checkpoint are not all in the log or its archives")
        return [found[seq] for seq in range(first, last + 1)]

    async def _answer(self, record: StoredRecord) -> bytes | None:
        """The kept signed answer of `record`, opened; None in metadata mode (or none kept)."""
        if not record.evidence or self.key is None:
            return None
        rows = await self.backend.fetch(f"{SELECT_EVIDENCE} WHERE digest = ?", (record.evidence,))
        if rows:
            return EvidenceStore.backend_answer(self.backend, rows[0]).open(self.key)
        for path in archive_files(self.archive_dir):
            file = ArchiveFile(path)
            async for _ in file.records():
                pass
            for line in file.answers:
                if line["digest"] == record.evidence:
                    return KeptAnswer(line["digest"], line["source"], line["signer"], parse_time(line["fetched_at"]),
                                      line["key_id"], base64.b64decode(line["sealed"])).open(self.key)
        return None
