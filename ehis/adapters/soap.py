"""The one SOAP adapter: a source's operations as typed async calls, for every source alike.

Per call: the request payload is encoded from the contract (ehis.contracts.codec), wrapped with
X-Road headers, signed by the ministry's operator and serialised; those exact bytes are posted
and hashed for `requestHash`. The answer is read under a byte bound, parsed under shape limits,
and its signature verified against the endpoint's expected signer; from then on only the signed
content is used. The answer must echo every request header in order and carry the request's
hash (faults too), hold exactly one payload, match the contract, and (where the service says
where) be about the subject asked for. Every failure ends as one of the typed errors in
ehis.errors; the guard around the adapter decides about retries and holds the deadline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
from lxml import etree
from pydantic import BaseModel

from ehis.adapters.transfer import BadEncoding, Received, SourceClient, TooLarge, post
from ehis.config import Endpoint
from ehis.contracts import COMMON_NS, xroad
from ehis.contracts.codec import ContractViolation
from ehis.errors import (
    EhisError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)
from ehis.evidence import Evidence
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier, Verified
from ehis.security.xml import MAX_XML_BYTES, UnsafeXml, parse_untrusted
from ehis.sources.spec import Service, Source

COMMON_FAULTS: Mapping[str, type[EhisError]] = {
    f"{{{COMMON_NS}}}NotFound": NotFound,
    f"{{{COMMON_NS}}}InvalidInput": InvalidInput,
    "not_found": NotFound,  # the same outcomes answered in the body (ehis:BodyFault faultCode)
    "invalid_input": InvalidInput,
}
OFFLOAD_BYTES = 64 * 1024  # answers larger than this are verified in a thread, off the event loop
XML_TYPES = ("text/xml", "application/xml", "application/soap+xml")


@dataclass(frozen=True)
class Caller:
    """Who asks, on whose behalf and why: the X-Road client, userId and issue headers."""

    subsystem: str
    user: str = ""
    purpose: str = ""


@dataclass(frozen=True)
class SourceAnswer:
    body: dict[str, Any]  # the decoded response payload
    evidence: Evidence


@dataclass(frozen=True)
class ClientIdentity:
    """The ministry as an X-Road member: the client of every request (the subsystem varies)."""

    instance: str = "AZ"
    member_class: str = "GOV"
    member_code: str = "EMSN"


class SoapAdapter:
    """One endpoint of one source. Build once per process; calls run concurrently."""

    def __init__(
        self,
        source: Source,
        *,
        name: str,
        url: str,
        endpoint: Endpoint,
        http: httpx.AsyncClient | SourceClient,
        signer: EnvelopeSigner,
        verifier: EnvelopeVerifier,
        client: ClientIdentity = ClientIdentity(),
        connect_timeout: float = 2.0,
        max_bytes: int = MAX_XML_BYTES,
    ):
        self.source = source
        self.system = source.code
        self.name = name  # the endpoint's name: the system code, or "<system>-<provider>"
        self.url = url
        self.endpoint = endpoint
        self.http = http
        self.signer = signer
        self.verifier = verifier
        self.client = client
        self.expected_signer = endpoint.signer or name
        self.connect_timeout = connect_timeout
        self.max_bytes = max_bytes
        self.faults = {**COMMON_FAULTS, **source.faults}
        self.codec = source.codec

    async def call(self, service: Service, params: BaseModel, caller: Caller, budget: float) -> SourceAnswer:
        """One signed request and its verified answer, within `budget` seconds of network time."""
        headers = self._headers(service, caller)
        sent = headers.elements()
        try:
            payload = self.codec.encode(service.operation, service.request(params))
        except ContractViolation as exc:  # a defect of the source package, not the caller's input
            raise EhisError(f"{self.system}: the request cannot be encoded: {exc}", source=self.system) from None
        body = xroad.serialize(self.signer.sign(xroad.envelope(sent, payload)))
        received = await self._exchange(service, body, budget)
        if len(received.body) > OFFLOAD_BYTES:
            return await asyncio.to_thread(self._answer, service, params, sent, body, received.body, headers.id)
        return self._answer(service, params, sent, body, received.body, headers.id)

    def _headers(self, service: Service, caller: Caller) -> xroad.RequestHeaders:
        c, e = self.client, self.endpoint
        return xroad.RequestHeaders(
            client=xroad.XRoadId("SUBSYSTEM", c.instance, c.member_class, c.member_code, caller.subsystem),
            service=xroad.XRoadId("SERVICE", c.instance, e.member_class, e.member_code or self.system,
                                  e.subsystem_code, service.operation, e.service_version),
            id=str(uuid.uuid4()),
            user_id=caller.user or None,
            issue=caller.purpose or None,
        )

    async def _exchange(self, service: Service, body: bytes, budget: float) -> Received:
        connect = min(self.connect_timeout, budget)
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
        try:
            if isinstance(self.http, SourceClient):
                received = await self.http.post(self.url, body, headers, timeout=budget, connect=connect,
                                                max_bytes=self.max_bytes)
            else:
                received = await post(self.http, self.url, body, headers, timeout=httpx.Timeout(budget, connect=connect),
                                      max_bytes=self.max_bytes)
        except TooLarge:
            raise SourceFault(f"{self.name} sent an answer larger than {self.max_bytes} bytes", source=self.system,
                              retryable=False) from None
        except BadEncoding as exc:
            raise SourceFault(f"{self.name} sent an unreadable answer: {exc}", source=self.system) from None
        except (httpx.TimeoutException, TimeoutError):  # aiohttp's timeouts are TimeoutErrors
            raise SourceTimeout(f"{self.name} did not answer in time", source=self.system) from None
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:  # refused, reset, closed mid-answer: the source is not there
            raise SourceUnavailable(f"{self.name} cannot be reached: {type(exc).__name__}",
                                    source=self.system) from None
        media = received.content_type.split(";", 1)[0].strip().lower()
        if received.status not in (200, 500) or (media not in XML_TYPES and received.status == 500):
            raise self._http_error(received.status)
        if media not in XML_TYPES:
            raise SourceFault(f"{self.name} answered with content type {media or 'none'!r}, not a SOAP message",
                              source=self.system, retryable=True)
        return received

    def _answer(self, service: Service, params: BaseModel, sent: list[etree._Element], request: bytes,
                answer: bytes, message_id: str) -> SourceAnswer:
        """Everything after the bytes arrived: parse, verify, bind, validate, decode (CPU only)."""
        try:
            root = parse_untrusted(answer)
        except UnsafeXml as exc:
            raise SourceFault(f"{self.name} sent an unreadable answer: {exc}", source=self.system,
                              retryable=True) from None
        if root.tag != xroad.ENVELOPE:
            raise SourceFault(f"{self.name} did not answer with a SOAP 1.1 envelope", source=self.system,
                              retryable=True)
        if _unsigned_fault(root):
            # a security server's technical fault (PR-MESS Annex D.1): unsigned, no headers, no data
            raise SourceFault(f"{self.name} answered with a technical fault: {_fault_string(root.find(xroad.BODY)[0])}",
                              source=self.system, retryable=True)
        verified = self._verify(root)
        evidence = Evidence(signer=verified.signer, digest=verified.digest, fetched_at=datetime.now(UTC),
                            message_id=message_id, endpoint=self.name if self.name != self.system else None,
                            signed=answer)
        payload = self._payload(verified.envelope)
        self._check_binding(verified.envelope, sent, request)
        if payload.tag == xroad.FAULT:
            raise self._fault_error(payload, evidence)
        if payload.tag != self.codec.qname(service.response):
            raise SourceFault(f"{self.name} answered {etree.QName(payload).localname}, not {service.response}",
                              source=self.system)
        try:
            self.codec.validate(payload)
            data = self.codec.decode(payload)
        except ContractViolation as exc:
            raise SourceFault(f"{self.name}'s answer does not match the contract: {exc}", source=self.system) from None
        if isinstance(data.get("fault"), dict):  # a non-technical error in the body (PR-MESS Annex D.2)
            raise self._body_fault_error(data["fault"], evidence)
        self._check_subject(service, params, data)
        return SourceAnswer(data, evidence)

    def _verify(self, root: etree._Element) -> Verified:
        try:
            return self.verifier.verify(root, expected_signer=self.expected_signer, pin=self.endpoint.fingerprint)
        except SignatureInvalid as exc:
            exc.source = self.system
            raise

    def _payload(self, envelope: etree._Element) -> etree._Element:
        """The one element in soap:Body; an empty Body or a second element is refused."""
        body = envelope.find(xroad.BODY)
        children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
        if len(children) != 1 or (body is not None and (body.text or "").strip()):
            raise SourceFault(f"{self.name}'s signed answer holds {len(children)} payload elements, not exactly one",
                              source=self.system)
        return children[0]

    def _check_binding(self, envelope: etree._Element, sent: list[etree._Element], request: bytes) -> None:
        """The answer (a fault too) echoes our headers in order and hashes our very request bytes."""
        problem = xroad.echo_problem(sent, xroad.message_headers(envelope))
        if problem is not None:
            raise SignatureInvalid(f"{self.name}: {problem}: it answers another request", source=self.system)
        hashes = [] if (header := envelope.find(xroad.HEADER)) is None else header.findall(xroad.REQUEST_HASH)
        if len(hashes) != 1 or hashes[0].get("algorithmId") != xroad.SHA512_URI:
            raise SignatureInvalid(f"{self.name}'s answer carries no SHA-512 requestHash", source=self.system)
        if (hashes[0].text or "").split() != [xroad.request_hash(request)]:
            raise SignatureInvalid(f"{self.name}'s answer carries another request's hash", source=self.system)

    def _fault_error(self, fault: etree._Element, evidence: Evidence) -> EhisError:
        string = _fault_string(fault)
        detail = fault.find("detail")
        for child in detail if detail is not None else ():
            kind = self.faults.get(child.tag) if isinstance(child.tag, str) else None
            if kind is not None:
                return kind(string or kind.__name__, source=self.system, evidence=evidence)
        code = (fault.findtext("faultcode") or "").strip()
        if code.split(":")[-1].startswith("Client"):
            # the source refused this request (a header it will not take, say): the caller's to fix,
            # not a sign the source is failing, so it neither retries nor trips the breaker
            return InvalidInput(f"{self.name} refused the request: {string}", source=self.system, evidence=evidence)
        return SourceFault(f"{self.name} answered with a fault: {string}", source=self.system, retryable=True)

    def _body_fault_error(self, fault: dict[str, Any], evidence: Evidence) -> EhisError:
        code, string = str(fault.get("faultCode") or ""), str(fault.get("faultString") or "")
        kind = self.faults.get(code)
        if kind is not None:
            return kind(string or kind.__name__, source=self.system, evidence=evidence)
        return SourceFault(f"{self.name} answered with error {code!r}: {string}", source=self.system,
                           evidence=evidence)

    def _check_subject(self, service: Service, params: BaseModel, data: dict[str, Any]) -> None:
        if service.answer_subject is None or service.subject is None:
            return
        value: Any = data
        for key in service.answer_subject:
            value = value.get(key) if isinstance(value, dict) else None
        if value != service.subject_of(params):
            raise SignatureInvalid(f"{self.name}'s signed answer is about another subject than the one asked for",
                                   source=self.system)

    def _http_error(self, status: int) -> EhisError:
        """An HTTP answer that is not a SOAP message: the source (or a proxy before it) is failing."""
        if status >= 500 or status in (408, 429):
            return SourceUnavailable(f"{self.name} answered HTTP {status}", source=self.system)
        return SourceFault(f"{self.name} answered HTTP {status} with no SOAP message", source=self.system)


def _unsigned_fault(root: etree._Element) -> bool:
    header = root.find(xroad.HEADER)
    signed = header is not None and header.find(xroad.SIGNATURE) is not None
    body = root.find(xroad.BODY)
    return not signed and body is not None and len(body) > 0 and body[0].tag == xroad.FAULT


def _fault_string(fault: etree._Element) -> str:
    return (fault.findtext("faultstring") or "").strip()[:200]

