"""The hub's inbound endpoint: `POST /events/<system>`, where sources that push send their events.

A push is checked as strictly as an answer: bounded size, hardened parsing, the signature
verified against *that* source's certificate (its configured signer and pin, never a name the
message chooses), X-Road headers (the client is that source's member, the service the
ministry's PushEvents), the payload against the source's contract. Only then are the events
recorded and stored, and only once stored does the hub answer `PushEventsResponse`, signed by
the operator with the request hash, naming the events it now holds: a source sends again
whatever was not acknowledged. Every refusal is a signed SOAP fault (Client: the source must
fix the message; Server: try again later) and is recorded in the exchange log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ehis.calls import SourceLink
from ehis.contracts import COMMON_NS, xroad
from ehis.contracts.codec import ContractViolation
from ehis.contracts.provider import (
    CONTENT_TYPE,
    SoapFault,
    fault_element,
    payload_of,
    read_bounded,
    read_headers,
    response_envelope,
)
from ehis.errors import SignatureInvalid
from ehis.events.hub import EventHub
from ehis.events.reader import read
from ehis.events.wire import PUSH, PUSH_PATH, PUSH_SUBSYSTEM, Ministry
from ehis.evidence import Evidence
from ehis.security.signing import EnvelopeSigner
from ehis.security.xml import MAX_XML_BYTES, UnsafeXml, parse_untrusted
from ehis.sources.spec import Source

log = logging.getLogger(__name__)

OFFLOAD_BYTES = 64 * 1024  # a larger push is verified off the event loop, as an answer is


@dataclass(frozen=True)
class PushSource:
    """A source that pushes, as this hub is configured to trust it (its adapter's settings)."""

    source: Source
    link: SourceLink

    @property
    def member_code(self) -> str:
        return self.link.adapter.endpoint.member_code or self.source.code


@dataclass(frozen=True)
class _Checked:
    headers: tuple[etree._Element, ...]
    events: list[dict]
    evidence: Evidence


class Inbound:
    def __init__(self, events: EventHub, sources: Mapping[str, PushSource], signer: EnvelopeSigner,
                 ministry: Ministry, *, max_bytes: int = MAX_XML_BYTES) -> None:
        self.events = events
        self.sources = sources
        self.signer = signer  # the operator's: the hub's answers are signed as the hub
        self.ministry = ministry
        self.max_bytes = max_bytes

    def app(self) -> Starlette:
        return Starlette(routes=[Route(f"{PUSH_PATH}/{{system}}", self.push, methods=["POST"])])

    async def push(self, request: Request) -> Response:
        system = request.path_params["system"]
        pushing = self.sources.get(system)
        if pushing is None:
            return self._fault(None, None, SoapFault(f"this hub takes no events from {system[:40]!r}"), status=404)
        body = await read_bounded(request, self.max_bytes)
        try:
            if body is None:
                raise _Refused("invalid_input", SoapFault(f"a push is at most {self.max_bytes} bytes"))
            checked = (await asyncio.to_thread(self._check, pushing, body) if len(body) > OFFLOAD_BYTES
                       else self._check(pushing, body))
            reads = [read(pushing.source, e) for e in checked.events]
            problems = [r for r in reads if r.problem is not None]
            if problems:  # the whole push is refused: the source must fix what it sends
                raise _Refused("invalid_input", _invalid(pushing.source, "; ".join(r.problem or "" for r in problems)),
                               checked.headers, checked.evidence)
        except _Refused as refused:
            await self.events.refused(system, refused.code, refused.evidence)
            return self._fault(refused.headers, body if refused.headers else None, refused.fault)
        try:
            if pushing.link.evidence is not None:  # full evidence: the signed push is kept as an answer is
                await pushing.link.evidence.keep(system, checked.evidence)
            await self.events.accept(pushing.source, reads, via="push", evidence=checked.evidence.without_bytes())
        except Exception as exc:  # noqa: BLE001 - not stored: the source must push again
            log.warning("a push from %s could not be stored (%s); the source will push it again",
                        system, type(exc).__name__)
            return self._fault(checked.headers, body, SoapFault("the events could not be stored now; push them "
                                                                "again later", code="Server"))
        answer = pushing.source.codec.encode("PushEventsResponse", {"accepted": [r.source_event_id for r in reads]})
        envelope = response_envelope(checked.headers, body, answer)
        return Response(xroad.serialize(self.signer.sign(envelope)), media_type=CONTENT_TYPE)

    def _check(self, pushing: PushSource, body: bytes) -> _Checked:
        """Parse, verify, read the headers and validate the payload (CPU only: may run in a thread)."""
        adapter = pushing.link.adapter
        try:
            root = parse_untrusted(body)
        except UnsafeXml as exc:
            raise _Refused("invalid_input", SoapFault(f"unreadable XML: {exc}")) from None
        try:
            verified = adapter.verifier.verify(root, expected_signer=adapter.expected_signer,
                                               pin=adapter.endpoint.fingerprint)
        except SignatureInvalid as exc:
            raise _Refused("signature_invalid", SoapFault(f"the push's signature was refused: {exc.message}")) from None
        try:
            headers = read_headers(verified.envelope, system=self.ministry.member_code, operation=PUSH)
            client = headers.client
            if (client.instance, client.member_code, client.subsystem_code) != (
                    self.ministry.instance, pushing.member_code, PUSH_SUBSYSTEM):
                raise SoapFault(f"the client header must be {pushing.member_code}'s {PUSH_SUBSYSTEM!r} subsystem "
                                "in this instance")
            payload = payload_of(verified.envelope)
        except SoapFault as fault:
            raise _Refused("invalid_input", fault) from None
        evidence = Evidence(signer=verified.signer, digest=verified.digest, fetched_at=datetime.now(UTC),
                            message_id=headers.message_id, signed=body)
        codec = pushing.source.codec
        if payload.tag != codec.qname(PUSH):
            raise _Refused("invalid_input", SoapFault(f"the body must be {PUSH}"), headers.elements, evidence)
        try:
            codec.validate(payload)
            events = codec.decode(payload)["event"]
        except ContractViolation as exc:
            raise _Refused("invalid_input", _invalid(pushing.source, str(exc)), headers.elements, evidence) from None
        return _Checked(headers.elements, events, evidence)

    def _fault(self, headers: tuple[etree._Element, ...] | None, body: bytes | None, fault: SoapFault, *,
               status: int = 500) -> Response:
        envelope = response_envelope(headers or (), body if headers else None, fault_element(fault))
        return Response(xroad.serialize(self.signer.sign(envelope)), status_code=status, media_type=CONTENT_TYPE)


class _Refused(Exception):
    def __init__(self, code: str, fault: SoapFault, headers: tuple[etree._Element, ...] | None = None,
                 evidence: Evidence | None = None) -> None:
        super().__init__(fault.string)
        self.code, self.fault, self.headers, self.evidence = code, fault, headers, evidence


def _invalid(source: Source, reason: str) -> SoapFault:
    """A Client fault with the common InvalidInput detail: the source is told not to send it again as is."""
    detail = source.codec.encode(f"{{{COMMON_NS}}}InvalidInput", {"field": "event", "reason": reason[:500]})
    return SoapFault(f"invalid events: {reason[:200]}", detail=detail)
