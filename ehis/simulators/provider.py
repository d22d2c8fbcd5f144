"""A simulated source's request pipeline, independent of HTTP: body bytes in, signed answer out.

Everything costly is done once per source (key loaded, contract compiled, WSDL read). Per
request: parse with the hardened parser, verify that the ministry's operator signed it, and
from then on read only the verified envelope; check the headers and the contract, let the
responder answer with a dict, encode it with the contract's codec, echo the headers, add the
request hash of the bytes received, and sign. Every answer, faults included, is signed by the
source and bound to the request, as real providers must do. Faults on demand (a `FaultBoard`)
may delay, damage or withhold the answer; the request is still journaled.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from lxml import etree

from ehis.contracts import xroad
from ehis.contracts.codec import ContractViolation
from ehis.contracts.provider import (
    CONTENT_TYPE,
    Headers,
    SoapFault,
    fault_element,
    payload_of,
    read_headers,
    response_envelope,
)
from ehis.errors import SignatureInvalid
from ehis.identifiers import mask
from ehis.security.pki import OPERATOR_CN, Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.security.xml import UnsafeXml, parse_untrusted
from ehis.simulators import metaservices
from ehis.simulators.faults import (
    MALFORMED_BODY,
    NO_FAULT,
    PROXY_PAGES,
    SIMULATED_FAULT_STRING,
    Decision,
    FaultBoard,
    FaultKind,
    FaultRule,
    expired_identity,
    other_identity,
    revoked_identity,
    tamper,
)
from ehis.simulators.journal import Entry, Journal, Outcome
from ehis.simulators.responders import BodyFault, BusinessFault, Responder, responders
from ehis.sources import sources
from ehis.sources.spec import Source

log = logging.getLogger(__name__)

# the faults that sign with another identity than the endpoint's own, and where that comes from
IMPOSTORS = {
    FaultKind.WRONG_SIGNER: other_identity,
    FaultKind.EXPIRED_CERT: expired_identity,
    FaultKind.REVOKED_CERT: revoked_identity,
}


@dataclass(frozen=True)
class SimulatedSource:
    """One simulated endpoint with everything it needs per request, prepared once."""

    name: str  # the endpoint's name: its URL path and its certificate's common name
    source: Source
    responder: Responder
    signer: EnvelopeSigner

    @property
    def system(self) -> str:
        return self.source.code


@dataclass(frozen=True)
class Reply:
    """What to send back for one request, and what to do first (wait) or instead (reset, hang)."""

    content: bytes
    status: int
    media_type: str = CONTENT_TYPE
    delay_s: float = 0.0
    action: FaultKind | None = None  # RESET or HANG: the content is never sent


class Provider:
    def __init__(self, pki: Pki, journal: Journal):
        self.pki = pki
        self.journal = journal
        self.verifier = EnvelopeVerifier(pki.ca_file)
        self.sources: dict[str, SimulatedSource] = {}  # by endpoint name (the URL path)
        self._impostors: dict[tuple[str, FaultKind], EnvelopeSigner] = {}
        built = sources()
        for name, (code, responder) in responders().items():
            self.sources[name] = SimulatedSource(name, built[code], responder, EnvelopeSigner(pki.identity(name)))

    def handle(self, sim: SimulatedSource, body: bytes, board: FaultBoard | None = None) -> Reply:
        """The reply to one request; `board` (None when no fault rule is set) may damage it."""
        try:
            root = parse_untrusted(body)
        except UnsafeXml as exc:
            return self.reject(sim, body, None, f"request rejected: {exc}", str(exc), board)
        try:
            verified = self.verifier.verify(root, expected_signer=OPERATOR_CN)
        except SignatureInvalid as exc:
            return self.reject(sim, body, root, f"signature rejected: {exc.message}", exc.message, board)
        envelope = verified.envelope
        decision = board.pick(sim.system, _operation_name(envelope), sim.name) if board is not None else NO_FAULT
        headers: Headers | None = None
        request: dict | None = None
        attachment: bytes | None = None
        try:
            payload = payload_of(envelope)
            operation = etree.QName(payload).localname
            headers = read_headers(envelope, system=sim.system, operation=operation)
            if metaservices.is_meta(payload):
                meta = metaservices.answer(payload, headers, sim.responder.operation_names, sim.source.wsdl.read_bytes())
                answer, attachment, outcome = meta.payload, meta.attachment, Outcome.OK
            else:
                answer, request, outcome = self._answer(sim, operation, payload)
            fault = None
        except SoapFault as exc:
            fault = exc
        except Exception:  # every failure must still become a signed fault
            log.exception("simulator %s failed on a request", sim.name)
            fault = SoapFault("internal error in the simulator", code="Server", outcome=Outcome.ERROR)
        echoed = headers.elements if headers is not None else tuple(xroad.message_headers(envelope))
        if decision.failure is FaultKind.SOAP_FAULT:
            message, status = response_envelope(echoed, body, fault_element(_simulated_fault())), 500
        elif fault is None:
            message, status = response_envelope(echoed, body, answer), 200
        else:
            message, status = response_envelope(echoed, body, fault_element(fault)), 500
        outcome, detail = (outcome, None) if fault is None else (Outcome(fault.outcome), fault.string)
        self.journal.record(_entry(sim, headers, request, outcome, verified.signer, detail, decision.label))
        reply = self.deliver(sim, message, status, decision)
        if attachment is None or fault is not None or decision.failure is not None:
            return reply
        content, media_type = metaservices.multipart(reply.content, attachment)
        return Reply(content, reply.status, media_type, reply.delay_s)

    def _answer(self, sim: SimulatedSource, operation: str,
                payload: etree._Element) -> tuple[etree._Element, dict, Outcome]:
        """The response element for a request payload (with what it says: ok, or a business outcome
        answered in the body), or a SoapFault (contract or business)."""
        codec = sim.source.codec
        op = sim.responder.operation(operation)
        if op is None or payload.tag != codec.qname(operation):
            raise SoapFault(f"{sim.name} offers no operation {etree.QName(payload).text!r}")
        try:
            codec.validate(payload)
        except ContractViolation as exc:
            raise SoapFault(f"body is invalid: {exc}") from None
        request = codec.decode(payload)
        try:
            return codec.encode(f"{operation}Response", op.handle(request)), request, Outcome.OK
        except BodyFault as exc:
            return codec.encode(f"{operation}Response", {"fault": exc.fault}), request, exc.outcome
        except BusinessFault as exc:
            detail = codec.encode(exc.detail, exc.data)
            raise SoapFault(exc.string, detail=detail, outcome=exc.outcome) from None

    def reject(self, sim: SimulatedSource, body: bytes, root: etree._Element | None, string: str, reason: str,
               board: FaultBoard | None = None) -> Reply:
        """A signed Client fault for a request that cannot be trusted, still bound to its bytes
        (and echoing what headers it has), so the hub can tell it answers its request."""
        decision = board.pick(sim.system, None, sim.name) if board is not None else NO_FAULT
        fault = (_simulated_fault() if decision.failure is FaultKind.SOAP_FAULT
                 else SoapFault(string, outcome=Outcome.REJECTED))
        echoed = xroad.message_headers(root) if root is not None and root.tag == xroad.ENVELOPE else []
        self.journal.record(Entry(sim.name, Outcome.REJECTED, reason, False, detail=string, fault=decision.label))
        return self.deliver(sim, response_envelope(echoed, body, fault_element(fault)), 500, decision)

    def deliver(self, sim: SimulatedSource, envelope: etree._Element, status: int, decision: Decision) -> Reply:
        """The answer signed by the source, unless `decision` says to damage or withhold it."""
        kind, delay = decision.failure, decision.delay_s
        if kind is None or kind is FaultKind.SOAP_FAULT:
            return Reply(xroad.serialize(sim.signer.sign(envelope)), status, delay_s=delay)
        if kind in PROXY_PAGES:
            code, page = PROXY_PAGES[kind]
            return Reply(page, code, "text/html", delay)
        if kind is FaultKind.MALFORMED:
            return Reply(MALFORMED_BODY, 200, delay_s=delay)
        if kind is FaultKind.EMPTY:
            return Reply(b"", 200, delay_s=delay)
        if kind in (FaultKind.RESET, FaultKind.HANG):
            return Reply(b"", 0, delay_s=delay, action=kind)
        if kind is FaultKind.UNSIGNED:
            return Reply(xroad.serialize(envelope), status, delay_s=delay)
        if kind in IMPOSTORS:
            return Reply(xroad.serialize(self.impostor(sim.name, kind).sign(envelope)), status, delay_s=delay)
        signed = sim.signer.sign(envelope)
        if kind is FaultKind.BAD_SIGNATURE:
            return Reply(xroad.serialize(tamper(signed)), status, delay_s=delay)
        content = xroad.serialize(signed)  # TRUNCATED: a transfer cut off; 200, like a healthy answer that broke
        return Reply(content[: len(content) // 2], 200, delay_s=delay)

    def impostor(self, name: str, kind: FaultKind) -> EnvelopeSigner:
        """The signer of a `wrong_signer`, `expired_cert` or `revoked_cert` answer from `name`, made once."""
        signer = self._impostors.get((name, kind))
        if signer is None:
            signer = self._impostors[(name, kind)] = EnvelopeSigner(IMPOSTORS[kind](self.pki, name))
        return signer

    def prepare(self, rules: Collection[FaultRule]) -> None:
        """Make the impostor keys the rules need now, not while a request waits (RSA key generation)."""
        for rule in rules:
            if rule.kind in IMPOSTORS:
                for name in [rule.system] if rule.system is not None else list(self.sources):
                    self.impostor(name, rule.kind)


def _simulated_fault() -> SoapFault:
    return SoapFault(SIMULATED_FAULT_STRING, code="Server", outcome=Outcome.ERROR)


def _operation_name(envelope: etree._Element) -> str | None:
    """The local name of the body's element: the operation asked for, before any contract check."""
    body = envelope.find(xroad.BODY)
    child = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    return etree.QName(child).localname if child is not None else None


def _entry(sim: SimulatedSource, headers: Headers | None, request: dict | None, outcome: Outcome, signer: str,
           detail: str | None, fault: str | None = None) -> Entry:
    if headers is None:
        return Entry(sim.name, outcome, signer, True, detail=detail, fault=fault)
    operation = sim.responder.operation(headers.service.service_code or "")
    subject = None
    if operation is not None and operation.subject and request is not None and request.get(operation.subject):
        subject = mask(str(request[operation.subject]).strip())
    return Entry(sim.name, outcome, signer, True, operation=headers.service.service_code, message_id=headers.message_id,
                 client=headers.client.subsystem_code, user_id=headers.user_id, subject=subject, detail=detail,
                 fault=fault)
