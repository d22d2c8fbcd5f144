"""`ehis log verify` against the checkpoints: what the chain alone cannot find.

After the chain walk (ehis.audit.chain, .archive), one more pass in one read snapshot:
- every checkpoint's signature (the operator's, chaining to the CA), that the database's columns
  say what the signed document says, that each names the previous one's digest and starts where
  it ended, and every time-stamp token (over the exact document bytes, by a TSA under its CA);
- the records reach each checkpoint: the record at its seq has its hash (else the chain was
  recomputed: "rewritten"), the Merkle root of its records matches, and the log does not end
  before the newest one ("truncated": its newest records were deleted);
- checkpoints exported to files (kept elsewhere) likewise, so deleting the database's newest
  checkpoints with its newest records is found too;
- every kept signed answer opens under the key (AES-GCM: any changed byte fails), verifies as
  its source's signature, and has the digest it is filed under (in the archives too).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography import x509

from ehis.audit import merkle
from ehis.audit.archive import ArchiveFile, BrokenArchive, archive_files
from ehis.audit.backend import SELECT_EVIDENCE, Backend, Snapshot
from ehis.audit.chain import bad, parse_time
from ehis.audit.checkpoints import CheckpointError, LogTrust, read_document, same_head
from ehis.audit.evidence_store import EvidenceError, EvidenceKey, KeptAnswer
from ehis.audit.model import Checkpoint, StoredRecord, VerifyReport
from ehis.audit.timestamps import TimestampError, check_token
from ehis.errors import SignatureInvalid
from ehis.security.signing import EnvelopeVerifier


class Broken(Exception):
    def __init__(self, report: VerifyReport) -> None:
        super().__init__(report.detail)
        self.report = report


def signer_name(subject: str) -> str:
    """The common name in an RFC 4514 subject: whom an answer must be signed by."""
    names = x509.Name.from_rfc4514_string(subject).get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else subject


def check_answer(raw: bytes, digest: str, signer: str, verifier: EnvelopeVerifier) -> None:
    """`raw` is a signed answer of `signer` whose signed content has `digest` (what the record says)."""
    verified = verifier.verify(raw, expected_signer=signer_name(signer))
    if verified.digest != digest:
        raise EvidenceError(f"the kept answer {digest[:16]}… verifies but its signed content has another digest")


async def _checkpoints(snapshot: Snapshot, trust: LogTrust) -> tuple[list[Checkpoint], int]:
    """Every checkpoint, verified and linked, without its document; and how many a token covers."""
    found: list[Checkpoint] = []
    prev: Checkpoint | None = None
    covered = 0
    after = 0
    while chunk := await snapshot.checkpoints(after):
        for stored in chunk:
            after = stored.seq
            try:
                signed = read_document(stored.document, trust)
            except CheckpointError as exc:
                raise Broken(bad(0, stored.seq, "checkpoint", f"checkpoint at seq {stored.seq}: {exc}")) from None
            if not same_head(stored, signed):
                raise Broken(bad(0, stored.seq, "checkpoint",
                                 f"checkpoint at seq {stored.seq}: the database's copy differs from the signed one"))
            if prev is not None and (signed.previous != prev.digest or signed.first_seq != prev.seq + 1
                                     or signed.start_hash != prev.hash):
                raise Broken(bad(0, stored.seq, "checkpoint", f"checkpoint at seq {stored.seq} does not continue "
                                 f"from the one at seq {prev.seq}: a checkpoint was removed or replaced"))
            if prev is None and signed.previous is not None:
                raise Broken(bad(0, stored.seq, "checkpoint",
                                 f"the checkpoints before seq {stored.seq} were removed"))
            if stored.token is not None:
                try:
                    check_token(stored.token, stored.document, trust.tsa_roots)
                except TimestampError as exc:
                    raise Broken(bad(0, stored.seq, "timestamp", f"checkpoint at seq {stored.seq}: {exc}")) from None
                covered = len(found) + 1
            found.append(signed.model_copy(update={"document": b""}))
            prev = signed
    return found, covered


def _externals(files: list[bytes], trust: LogTrust, known: dict[int, Checkpoint]) -> list[Checkpoint]:
    """Exported checkpoints not in the database (each must match the database's where it has one)."""
    extra = []
    for data in files:
        try:
            signed = read_document(data, trust)
        except CheckpointError as exc:
            raise Broken(bad(0, None, "checkpoint", f"exported checkpoint: {exc}")) from None
        mine = known.get(signed.seq)
        if mine is None:
            extra.append(signed)
        elif mine.digest != signed.digest:
            raise Broken(bad(0, signed.seq, "checkpoint", f"the exported checkpoint at seq {signed.seq} is not "
                             "the database's: the checkpoints were replaced"))
    return extra


async def _records(snapshot: Snapshot, archive_dir: Path | None, answers: list[dict]) -> AsyncIterator[StoredRecord]:
    if archive_dir is not None:
        for path in archive_files(archive_dir):
            file = ArchiveFile(path)
            async for record in file.records():
                yield record
            answers.extend(file.answers)
    async for record in snapshot.records():
        yield record


async def _reach(records: AsyncIterator[StoredRecord], targets: list[Checkpoint], start: int) -> int:
    """Walk the records (seq order) against the checkpoints (by seq); returns how many were checked.

    Only the hashes since the next checkpoint's first record are held: memory is one batch.
    """
    pending = [c for c in targets if c.seq > start]
    window: list[str] = []
    window_first = start + 1  # the seq of window[0]
    last_seq, i = start, 0
    async for record in records:
        last_seq = record.seq
        if record.seq <= start or i >= len(pending):
            continue
        window.append(record.hash)
        while i < len(pending) and record.seq == pending[i].seq:
            target = pending[i]
            if record.hash != target.hash:
                raise Broken(bad(0, record.seq, "rewritten", f"record {record.seq} is not the one the checkpoint of "
                                 f"{target.time:%Y-%m-%d %H:%M:%S} signed: the log was rewritten up to it"))
            if target.first_seq >= window_first:
                leaves = _leaves(window[target.first_seq - window_first:])
                if merkle.root(leaves).hex() != target.root:
                    raise Broken(bad(0, record.seq, "rewritten", f"records {target.first_seq}..{target.seq} are not "
                                     "those the checkpoint signed (Merkle root): records were rewritten"))
            i += 1
        if i < len(pending):
            drop = min(max(0, pending[i].first_seq - window_first), len(window))
            del window[:drop]
            window_first += drop
    if i < len(pending):
        missing = pending[i]
        raise Broken(bad(0, last_seq + 1, "truncated", f"the log ends at seq {last_seq} but a checkpoint of "
                         f"{missing.time:%Y-%m-%d %H:%M:%S} vouches for seq {missing.seq}: its newest records "
                         "were removed"))
    return len(targets)


def _leaves(hashes: list[str]) -> list[bytes]:
    return [merkle.leaf_hash(bytes.fromhex(h)) for h in hashes]


async def _answers(snapshot: Snapshot, archived: list[dict], key: EvidenceKey, verifier: EnvelopeVerifier) -> int:
    count = 0
    for line in archived:
        answer = KeptAnswer(line["digest"], line["source"], line["signer"], parse_time(line["fetched_at"]),
                            line["key_id"], base64.b64decode(line["sealed"]))
        _check_kept(answer, key, verifier, archive=True)
        count += 1
    after = ""
    while rows := await snapshot.fetch(f"{SELECT_EVIDENCE} WHERE digest > ? ORDER BY digest LIMIT 200", (after,)):
        for row in rows:
            _check_kept(KeptAnswer(row[0], row[1], row[2], snapshot.backend.time_value(row[3]), row[4],
                                   bytes(row[5])), key, verifier)
            count += 1
        after = rows[-1][0]
    return count


def _check_kept(answer: KeptAnswer, key: EvidenceKey, verifier: EnvelopeVerifier, archive: bool = False) -> None:
    where = " (archived)" if archive else ""
    try:
        check_answer(answer.open(key), answer.digest, answer.signer, verifier)
    except (EvidenceError, SignatureInvalid) as exc:
        raise Broken(bad(0, None, "evidence", f"kept answer {answer.digest}{where}: {exc}")) from None


async def verify_against_checkpoints(backend: Backend, chain: VerifyReport, trust: LogTrust, *,
                                     archive_dir: Path | None = None, exported: list[bytes] | None = None,
                                     key: EvidenceKey | None = None, ca_file: Path | None = None) -> VerifyReport:
    """`chain` (the chain walk's report) completed by the checkpoint and kept-answer checks."""
    if not chain.ok:
        return chain
    try:
        async with backend.snapshot() as snapshot:
            checkpoints, covered = await _checkpoints(snapshot, trust)
            known = {c.seq: c for c in checkpoints}
            targets = sorted([*checkpoints, *_externals(exported or [], trust, known)], key=lambda c: c.seq)
            answers: list[dict] = []
            start = 0 if archive_dir is not None else snapshot.anchor.seq
            reached = await _reach(_records(snapshot, archive_dir, answers), targets, start)
            kept = 0
            if key is not None and ca_file is not None:
                kept = await _answers(snapshot, answers, key, EnvelopeVerifier(ca_file))
    except Broken as exc:
        return exc.report.model_copy(update={"checked": chain.checked})
    except BrokenArchive as exc:
        return bad(chain.checked, exc.seq, "broken_archive", str(exc))
    return chain.model_copy(update={"checkpoints": reached, "stamped": covered, "answers": kept})
