"""Per-record proofs: one self-contained file a citizen or an auditor checks offline.

A proof (`ehis-exchange-proof/1`) holds one record as the chain hashed it, its Merkle audit path
to the root its checkpoint signed, that checkpoint and the later ones up to the first one an
RFC 3161 time-stamp covers (each naming the previous one's digest), that time-stamp, and in full
mode the source's signed answer, whose signed content has the digest the record carries. None of
it is another person's data: the path is hashes. Checking needs only the CA certificates.

The file is canonical JSON `{"payload": …, "seal": …}`; the seal is an RFC 3161 time-stamp of
the payload's exact bytes, so a changed byte anywhere (even one a parser or an XML canonical
form would forgive) is refused. A subject report with proofs is the same, with many payloads.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ehis.audit import merkle
from ehis.audit.attest import check_answer
from ehis.audit.chain import canonical, canonical_fields, link
from ehis.audit.checkpoints import CheckpointError, LogTrust, read_document
from ehis.audit.evidence_store import EvidenceError
from ehis.audit.model import Checkpoint, StoredRecord
from ehis.audit.timestamps import TimestampError, check_token
from ehis.errors import SignatureInvalid
from ehis.security.signing import EnvelopeVerifier

PROOF = "ehis-exchange-proof/1"
REPORT = "ehis-subject-report/1"


class ProofError(Exception):
    """The proof is refused: changed, incomplete, or not vouched for by the trusted certificates."""


def dumps(value: Any) -> bytes:
    """The one byte form of a proof: sorted keys, no spaces, ASCII, one newline."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    """Base64 in its one form only (another spelling of the same bytes is a changed file)."""
    try:
        data = base64.b64decode(text, validate=True)
    except (TypeError, ValueError):
        raise ProofError(f"{what} is not base64") from None
    if b64(data) != text:
        raise ProofError(f"{what} is not in its canonical base64 form")
    return data


def record_json(record: StoredRecord) -> dict[str, Any]:
    return {**canonical_fields(record), "seq": record.seq, "prev_hash": record.prev_hash, "hash": record.hash}


def payload(record: StoredRecord, hashes: Sequence[str], chain: Sequence[Checkpoint], answer: bytes | None) -> dict:
    """One record's proof: `hashes` are the chain hashes of its checkpoint's records, `chain` the
    checkpoints from its own to the first time-stamped one (whose token is used)."""
    first = chain[0]
    index = record.seq - first.first_seq
    leaves = [merkle.leaf_hash(bytes.fromhex(h)) for h in hashes]
    stamped = chain[-1]
    if stamped.token is None:
        raise ProofError("the last checkpoint of a proof must be time-stamped")
    return {
        "format": PROOF,
        "record": record_json(record),
        "inclusion": {"index": index, "size": len(leaves),
                      "path": [h.hex() for h in merkle.inclusion_path(index, leaves)]},
        "checkpoints": [b64(c.document) for c in chain],
        "timestamp": b64(stamped.token),
        "answer": None if answer is None else b64(answer),
    }


def sealed(body: dict, seal: bytes) -> bytes:
    return dumps({"payload": body, "seal": b64(seal)})


@dataclass
class Checked:
    """What a valid proof shows."""

    records: list[StoredRecord] = field(default_factory=list)
    stamped_at: list[datetime] = field(default_factory=list)  # when each record's checkpoint was stamped
    answers: int = 0  # signed source answers included and verified
    sealed_at: datetime | None = None
    subject: str | None = None


def check(data: bytes, trust: LogTrust, ca_file: Path) -> Checked:
    """Verify a proof or a subject report with proofs, offline; raise ProofError if anything is off."""
    try:
        outer = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProofError("not a proof file (not JSON)") from None
    if not isinstance(outer, dict) or set(outer) != {"payload", "seal"} or dumps(outer) != data:
        raise ProofError("the file is not in its canonical form: it was changed")
    body = outer["payload"]
    try:
        seal = check_token(unb64(outer["seal"], "the seal"), dumps(body), trust.tsa_roots)
    except TimestampError as exc:
        raise ProofError(f"the seal does not verify: {exc}") from None
    result = Checked(sealed_at=seal.time)
    verifier = EnvelopeVerifier(ca_file)
    if isinstance(body, dict) and body.get("format") == REPORT:
        result.subject = body.get("subject")
        for one in body.get("proofs") or []:
            _check_one(one, trust, verifier, result)
            if result.records[-1].subject != result.subject:
                raise ProofError("a proof in the report is about another subject")
        return result
    _check_one(body, trust, verifier, result)
    return result


def _check_one(body: Any, trust: LogTrust, verifier: EnvelopeVerifier, result: Checked) -> None:
    if not isinstance(body, dict) or body.get("format") != PROOF:
        raise ProofError("not an exchange proof")
    try:
        record = StoredRecord.model_validate(body["record"])
        inclusion = body["inclusion"]
        index, size, path = int(inclusion["index"]), int(inclusion["size"]), [bytes.fromhex(h) for h in inclusion["path"]]
        documents = [unb64(d, "a checkpoint") for d in body["checkpoints"]]
        token = unb64(body["timestamp"], "the time-stamp")
        answer = None if body.get("answer") is None else unb64(body["answer"], "the signed answer")
    except (KeyError, TypeError, ValueError, ValidationError):
        raise ProofError("the proof lacks a part or has a malformed one") from None
    if link(record.prev_hash, canonical(record)) != record.hash:
        raise ProofError(f"record {record.seq} does not match its hash")
    root = merkle.root_from_path(index, size, merkle.leaf_hash(bytes.fromhex(record.hash)), path)
    try:
        chain = [read_document(d, trust) for d in documents]
    except CheckpointError as exc:
        raise ProofError(str(exc)) from None
    if not chain:
        raise ProofError("the proof has no checkpoint")
    first = chain[0]
    if (first.first_seq + index, first.seq - first.first_seq + 1) != (record.seq, size) or root is None \
            or root.hex() != first.root:
        raise ProofError(f"record {record.seq} is not among the records its checkpoint signed")
    for prev, cur in itertools.pairwise(chain):
        if (cur.previous, cur.first_seq, cur.start_hash) != (prev.digest, prev.seq + 1, prev.hash):
            raise ProofError(f"the checkpoint at seq {cur.seq} does not continue from the one at seq {prev.seq}")
    try:
        stamp = check_token(token, chain[-1].document, trust.tsa_roots)
    except TimestampError as exc:
        raise ProofError(f"the checkpoint's time-stamp: {exc}") from None
    if answer is not None:
        if not record.evidence or not record.signer:
            raise ProofError("a signed answer is included but the record names none")
        try:
            check_answer(answer, record.evidence, record.signer, verifier)
        except (EvidenceError, SignatureInvalid) as exc:
            raise ProofError(f"the signed answer: {exc}") from None
        result.answers += 1
    result.records.append(record)
    result.stamped_at.append(stamp.time)


def parts(data: bytes) -> dict[str, bytes]:
    """The files inside a proof, for openssl and xmlsec1 (`ehis log check-proof --extract DIR`)."""
    outer = json.loads(data)
    files: dict[str, bytes] = {"payload.json": dumps(outer["payload"]), "seal.tsr": base64.b64decode(outer["seal"])}
    body = outer["payload"]
    bodies = body.get("proofs", []) if body.get("format") == REPORT else [body]
    for one in bodies:
        name = f"seq-{one['record']['seq']}"
        for i, document in enumerate(one["checkpoints"]):
            files[f"{name}-checkpoint-{i}.xml"] = base64.b64decode(document)
        files[f"{name}-checkpoint-{len(one['checkpoints']) - 1}.tsr"] = base64.b64decode(one["timestamp"])
        if one.get("answer"):
            files[f"{name}-answer.xml"] = base64.b64decode(one["answer"])
    return files


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
