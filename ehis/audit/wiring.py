"""The evidence parts built from Settings, once, for the hub (bootstrap) and `ehis log` alike."""

from __future__ import annotations

import httpx

from ehis.audit.backend import Backend
from ehis.audit.checkpointer import Checkpointer
from ehis.audit.checkpoints import LogTrust
from ehis.audit.evidence_store import EvidenceKey
from ehis.audit.timestamps import TsaClient, load_roots
from ehis.audit.xmlsig import DocumentSigner
from ehis.config import Settings
from ehis.security.pki import Pki


def evidence_key(settings: Settings) -> EvidenceKey:
    """The configured key, or the data directory's own (made on first use)."""
    if settings.evidence_key is not None:
        return EvidenceKey.parse(settings.evidence_key.get_secret_value())
    return EvidenceKey.in_directory(settings.data_dir)


def log_trust(settings: Settings, pki: Pki) -> LogTrust:
    return LogTrust.from_files(pki.ca_file, settings.tsa_ca_path if settings.tsa_ca_file else None)


def tsa_client(settings: Settings, pki: Pki, transport: httpx.AsyncBaseTransport | None = None) -> TsaClient | None:
    if settings.tsa is None:
        return None
    roots = load_roots(settings.tsa_ca_file or pki.ca_file)
    return TsaClient(settings.tsa, roots, timeout=settings.tsa_timeout, transport=transport)


def checkpointer(settings: Settings, backend: Backend, pki: Pki,
                 transport: httpx.AsyncBaseTransport | None = None) -> Checkpointer:
    """The checkpoint task of a hub (or of one `ehis log` command), signing as the operator."""
    return Checkpointer(backend, DocumentSigner(pki.operator()), tsa=tsa_client(settings, pki, transport),
                        log_name=settings.log_name, interval=settings.checkpoint_interval,
                        records=settings.checkpoint_records, max_unstamped=settings.max_unstamped or None,
                        export_dir=settings.checkpoint_export_dir)
