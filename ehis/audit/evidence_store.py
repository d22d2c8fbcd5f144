"""Full evidence: each signed source answer kept beside the exchange log, compressed and encrypted.

For a source in `full` mode (`[sources.<code>] evidence = "full"`), the exact bytes the source
signed and sent are kept, keyed by the digest the log's records carry (`evidence`), so a cached
answer's records point at the one answer they came from. The bytes are zlib-compressed, then
sealed with AES-256-GCM (cryptography's AESGCM) under the configured key, with the digest and
the source as associated data: a changed byte, or an answer moved under another digest, fails
to open. Answers are written before the source call returns, so a record never precedes its
answer; concurrent answers share one transaction, as the log's records do.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import secrets
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ehis.audit.backend import INSERT_EVIDENCE, SELECT_EVIDENCE, Backend
from ehis.evidence import Evidence

log = logging.getLogger(__name__)  # digests and counts only

KEY_FILE = "evidence.key"
NONCE = 12


class EvidenceError(Exception):
    """A kept answer cannot be opened (another key, or it was changed) or does not verify."""


@dataclass(frozen=True)
class EvidenceKey:
    """An AES-256 key; `id` (a digest prefix, not secret) names it beside each sealed answer."""

    secret: bytes

    @property
    def id(self) -> str:
        return hashlib.sha256(b"ehis-evidence-key" + self.secret).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str) -> EvidenceKey:
        """A key as configured: 32 bytes in base64 (`ehis log evidence-key` prints a new one)."""
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except ValueError:
            raise ValueError("evidence_key is not base64") from None
        if len(secret) != 32:
            raise ValueError("evidence_key must be 32 bytes (base64 of an AES-256 key)")
        return cls(secret)

    @classmethod
    def in_directory(cls, directory: Path) -> EvidenceKey:
        """The embedded default: a key made on first use in the data directory (mode 0600)."""
        path = directory / KEY_FILE
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            try:
                os.link(path.with_suffix(".tmp"), path)  # another process may have made one first: keep it
            except FileExistsError:
                pass
            path.with_suffix(".tmp").unlink(missing_ok=True)
        return cls.parse(path.read_text())


def seal(key: EvidenceKey, digest: str, source: str, raw: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE)
    return nonce + AESGCM(key.secret).encrypt(nonce, zlib.compress(raw, 6), f"{digest}|{source}".encode())


def unseal(key: EvidenceKey, digest: str, source: str, sealed: bytes) -> bytes:
    try:
        packed = AESGCM(key.secret).decrypt(sealed[:NONCE], sealed[NONCE:], f"{digest}|{source}".encode())
        return zlib.decompress(packed)
    except (InvalidTag, ValueError, zlib.error):
        raise EvidenceError(f"the kept answer {digest[:16]}… does not open: changed, moved, or sealed "
                            "under another key") from None


@dataclass(frozen=True)
class KeptAnswer:
    """One kept answer as stored (still sealed) with what it is filed under."""

    digest: str
    source: str
    signer: str
    fetched_at: datetime
    key_id: str
    sealed: bytes

    def open(self, key: EvidenceKey) -> bytes:
        if key.id != self.key_id:
            raise EvidenceError(f"the kept answer {self.digest[:16]}… is sealed under key {self.key_id}, not {key.id}")
        return unseal(key, self.digest, self.source, self.sealed)


class EvidenceStore:
    """Kept answers in the exchange log's database (`exchange_evidence`)."""

    def __init__(self, backend: Backend, key: EvidenceKey, *, max_batch: int = 256) -> None:
        self.backend = backend
        self.key = key
        self.kept = 0
        self._max_batch = max_batch
        self._pending: deque[tuple[tuple, asyncio.Future[None]]] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="evidence-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None

    async def keep(self, source: str, evidence: Evidence) -> None:
        """Seal and store the signed bytes `evidence` carries; returns once committed."""
        if evidence.signed is None:
            return
        row = (evidence.digest, source, evidence.signer, self.backend.time_param(evidence.fetched_at), self.key.id,
               seal(self.key, evidence.digest, source, evidence.signed))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wakeup.set()
        await future

    async def get(self, digest: str) -> KeptAnswer | None:
        rows = await self.backend.fetch(f"{SELECT_EVIDENCE} WHERE digest = ?", (digest,))
        return self.backend_answer(self.backend, rows[0]) if rows else None

    @staticmethod
    def backend_answer(backend: Backend, row: tuple) -> KeptAnswer:
        digest, source, signer, fetched_at, key_id, sealed = row
        return KeptAnswer(digest, source, signer, backend.time_value(fetched_at), key_id, bytes(sealed))

    async def _write_loop(self) -> None:
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))]
            try:
                await self.backend.insert_many(INSERT_EVIDENCE, [row for row, _ in batch])
            except Exception as exc:  # noqa: BLE001 - the callers get it; the writer carries on
                log.warning("%d signed answers not kept: %s", len(batch), type(exc).__name__)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.kept += len(batch)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
