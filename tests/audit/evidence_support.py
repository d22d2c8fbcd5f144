"""What the checkpoint, time-stamp and kept-answer tests share: a TSA in process, signed answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from lxml import etree

from ehis.audit.attest import verify_against_checkpoints
from ehis.audit.checkpointer import Checkpointer
from ehis.audit.checkpoints import LogTrust
from ehis.audit.evidence_store import EvidenceKey
from ehis.audit.log import ExchangeLog
from ehis.audit.model import VerifyReport
from ehis.audit.timestamps import TsaClient, load_roots
from ehis.audit.xmlsig import DocumentSigner
from ehis.evidence import Evidence
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.simulators.tsa import TimeStamper

KEY = EvidenceKey(bytes(range(32)))


@dataclass
class Tsa:
    """The simulators' time-stamper behind an httpx transport that can be cut off."""

    stamper: TimeStamper
    up: bool = True
    requests: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("the TSA is down", request=request)
        self.requests += 1
        return httpx.Response(200, content=self.stamper.reply(request.content))

    def client(self, pki: Pki) -> TsaClient:
        return TsaClient("http://tsa.test/tsa", load_roots(pki.ca_file), transport=httpx.MockTransport(self.handle))


def checkpointer(log: ExchangeLog, pki: Pki, tsa: Tsa | None, **options: object) -> Checkpointer:
    return Checkpointer(log.backend, DocumentSigner(pki.operator()), tsa=tsa.client(pki) if tsa else None,
                        **options)  # type: ignore[arg-type]


async def verify(log: ExchangeLog, pki: Pki, **options: object) -> VerifyReport:
    """`ehis log verify` as the command runs it: the chain, then the checkpoints and kept answers."""
    chain = await log.verify()
    return await verify_against_checkpoints(log.backend, chain, LogTrust.from_files(pki.ca_file),
                                            ca_file=pki.ca_file, **options)  # type: ignore[arg-type]


def signed_answer(pki: Pki, text: str = "42", system: str = "din") -> Evidence:
    """A SOAP answer signed by `system`, as the adapter hands it on (with its bytes)."""
    envelope = etree.fromstring(
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/><soap:Body>'
        f'<x:Answer xmlns:x="urn:test">{text}</x:Answer></soap:Body></soap:Envelope>')
    raw = etree.tostring(EnvelopeSigner(pki.identity(system)).sign(envelope), xml_declaration=True, encoding="UTF-8")
    verified = EnvelopeVerifier(pki.ca_file).verify(raw, expected_signer=system)
    return Evidence(signer=verified.signer, digest=verified.digest, fetched_at=datetime.now(UTC), message_id="m-1",
                    signed=raw)
