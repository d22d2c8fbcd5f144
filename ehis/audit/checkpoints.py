"""Signed checkpoints: what vouches for the log's head from outside the database.

A chain finds a record changed in the middle, never a cut-off tail or a chain recomputed from
some record on: nothing outside the database says where the head was. A checkpoint does: the
operator signs (enveloped XML signature) the head's seq and hash, the Merkle root of the records
added since the previous checkpoint, and that checkpoint's digest, so the checkpoints form a
chain of their own. Whoever rewrites the log after a checkpoint cannot sign a new one without
the operator's key. A checkpoint exported to a file and kept elsewhere still catches the log's
owner deleting the checkpoints as well.

The checkpoint document (namespace CP_NS, root `Checkpoint`):
Log, FirstSeq, StartHash (what record FirstSeq links to), Seq, Hash, Root, Previous, Time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from lxml import etree

from ehis.audit import merkle
from ehis.audit.backend import Backend
from ehis.audit.chain import canonical, format_time, link, parse_time
from ehis.audit.model import Checkpoint
from ehis.audit.xmlsig import DocumentSigner, verify_document
from ehis.errors import SignatureInvalid
from ehis.security.pki import OPERATOR_CN
from ehis.security.trust import TrustStore

CP_NS = "urn:az:gov:ehis:checkpoint:v1"
FIELDS = ("Log", "FirstSeq", "StartHash", "Seq", "Hash", "Root", "Previous", "Time")


class CheckpointError(Exception):
    """No checkpoint was made (the log is broken where it would cover), or one does not verify."""


@dataclass(frozen=True)
class LogTrust:
    """Whom a verifier trusts: the CA of the operator's certificate, its common name, the TSA's CA."""

    trust: TrustStore
    tsa_roots: list[x509.Certificate]
    operator: str = OPERATOR_CN

    @classmethod
    def from_files(cls, ca_file: Path, tsa_ca_file: Path | None = None, operator: str = OPERATOR_CN) -> LogTrust:
        roots = x509.load_pem_x509_certificates((tsa_ca_file or ca_file).read_bytes())
        return cls(TrustStore(ca_file), roots, operator)


def leaves(hashes: list[str]) -> list[bytes]:
    """The Merkle leaves of records with these chain hashes (hex)."""
    return [merkle.leaf_hash(bytes.fromhex(h)) for h in hashes]


def document(fields: dict[str, str]) -> etree._Element:
    root = etree.Element(f"{{{CP_NS}}}Checkpoint", nsmap={"cp": CP_NS})
    for name in FIELDS:
        etree.SubElement(root, f"{{{CP_NS}}}{name}").text = fields.get(name, "")
    return root


def sign(signer: DocumentSigner, *, log: str, first_seq: int, start_hash: str, seq: int, head: str, root: str,
         previous: str | None, time: datetime) -> Checkpoint:
    """A checkpoint over records `first_seq`..`seq`, signed now."""
    signed = signer.sign(document({
        "Log": log, "FirstSeq": str(first_seq), "StartHash": start_hash, "Seq": str(seq), "Hash": head,
        "Root": root, "Previous": previous or "", "Time": format_time(time)}))
    return Checkpoint(seq=seq, first_seq=first_seq, start_hash=start_hash, hash=head, root=root, previous=previous,
                      time=time, log=log, document=signed, digest=hashlib.sha256(signed).hexdigest())


def read_document(data: bytes, trust: LogTrust) -> Checkpoint:
    """The checkpoint `data` vouches for, read only from what the operator's signature covers."""
    try:
        signed, _ = verify_document(data, trust.operator, trust.trust)
    except SignatureInvalid as exc:
        raise CheckpointError(f"checkpoint signature: {exc.message}") from None
    if signed.tag != f"{{{CP_NS}}}Checkpoint":
        raise CheckpointError("not a checkpoint document")
    values = {etree.QName(child).localname: (child.text or "") for child in signed if isinstance(child.tag, str)}
    try:
        return Checkpoint(seq=int(values["Seq"]), first_seq=int(values["FirstSeq"]), start_hash=values["StartHash"],
                          hash=values["Hash"], root=values["Root"], previous=values["Previous"] or None,
                          time=parse_time(values["Time"]), log=values["Log"], document=data,
                          digest=hashlib.sha256(data).hexdigest())
    except (KeyError, ValueError):
        raise CheckpointError("the checkpoint document lacks a field or has a malformed one") from None


def same_head(stored: Checkpoint, signed: Checkpoint) -> bool:
    """The database's columns say what the signed document says (they are only an index of it)."""
    keys = ("seq", "first_seq", "start_hash", "hash", "root", "previous", "time", "digest")
    return all(getattr(stored, k) == getattr(signed, k) for k in keys)


async def make_checkpoint(backend: Backend, signer: DocumentSigner, log: str = "ehis") -> Checkpoint | None:
    """Sign the head if records came after the last checkpoint; None if none did (or another worker
    signed meanwhile). The records it covers are checked first: a broken chain is never signed."""
    async with backend.snapshot() as snapshot:
        rows = await snapshot.fetch("SELECT seq, hash, digest FROM exchange_checkpoint ORDER BY seq DESC LIMIT 1")
        last_seq, last_hash, last_digest = rows[0] if rows else (0, None, None)
        anchor = snapshot.anchor
        # records archived before any checkpoint covered them (a log older than checkpoints) are
        # vouched for by their archives only: the first checkpoint then starts at the anchor
        start_seq, start_hash = (last_seq, last_hash) if last_hash and last_seq >= anchor.seq else (anchor.seq,
                                                                                                   anchor.hash)
        hashes: list[str] = []
        prev = start_hash
        async for record in snapshot.records(after=start_seq):
            if record.prev_hash != prev or record.seq != start_seq + len(hashes) + 1:
                raise CheckpointError(f"not signed: the log is broken at seq {record.seq}")
            if link(record.prev_hash, canonical(record)) != record.hash:
                raise CheckpointError(f"not signed: record {record.seq} does not match its hash")
            hashes.append(record.hash)
            prev = record.hash
    if not hashes:
        return None
    checkpoint = sign(signer, log=log, first_seq=start_seq + 1, start_hash=start_hash, seq=start_seq + len(hashes),
                      head=hashes[-1], root=merkle.root(leaves(hashes)).hex(), previous=last_digest,
                      time=datetime.now(UTC))
    return checkpoint if await backend.commit_checkpoint(last_seq, checkpoint) else None


def export(checkpoint: Checkpoint, directory: Path) -> Path:
    """Write the signed document as `checkpoint-<seq>.xml` in `directory`: a copy kept elsewhere."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"checkpoint-{checkpoint.seq:012d}.xml"
    partial = path.with_suffix(".partial")
    partial.write_bytes(checkpoint.document)
    partial.replace(path)
    return path
