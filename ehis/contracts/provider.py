"""The provider's side of the X-Road message protocol: as every simulated source plays it, and as
the hub plays it for the events sources push to it (ehis.events.inbound).

Called on the *verified* envelope only (what the operator's signature covers). A request that
breaks the protocol or the contract (a header missing or malformed, a body the schema rejects,
an operation the source does not offer) is a `SoapFault` with faultcode `soap:Client`.

Headers follow PR-MESS §2.2: `client`, `id` and `protocolVersion` are mandatory, `service` too in
a request, `userId` and `issue` optional; headers the provider does not know (an extension's,
such as the security server targeting one) are kept; and the answer echoes them all, in the
order received, with the same values, followed by `requestHash`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from lxml import etree
from starlette.requests import Request

from ehis.contracts import contract_dir, xroad

CONTENT_TYPE = "text/xml; charset=utf-8"
MANDATORY = ("client", "service", "id", "protocolVersion")
CLIENT_TYPES = ("MEMBER", "SUBSYSTEM")


class SoapFault(Exception):
    """A SOAP 1.1 fault to send back: `code` is Client, Server or VersionMismatch."""

    def __init__(self, string: str, *, code: str = "Client", detail: etree._Element | None = None,
                 outcome: str = "invalid"):
        super().__init__(string)
        self.string = string
        self.code = code
        self.detail = detail
        self.outcome = outcome  # how the simulators' journal files it (ehis.simulators.journal.Outcome)


@dataclass(frozen=True)
class Headers:
    """The headers of a verified request: every element in order (to echo) and what they say."""

    elements: tuple[etree._Element, ...]
    message_id: str
    user_id: str | None
    client: xroad.XRoadId
    service: xroad.XRoadId


@cache
def header_schema() -> etree.XMLSchema:
    """xroad.xsd with identifiers.xsd: validates each X-Road header element on its own."""
    return etree.XMLSchema(etree.parse(str(contract_dir() / "xroad.xsd")))


def read_headers(envelope: etree._Element, *, system: str, operation: str) -> Headers:
    """The checked headers of a request to `system` for `operation`, or a Client `SoapFault`."""
    header = envelope.find(xroad.HEADER)
    if header is not None and header.find(xroad.REQUEST_HASH) is not None:
        raise SoapFault("a request must not carry xrd:requestHash")
    elements = tuple(xroad.message_headers(envelope))
    by_name: dict[str, etree._Element] = {}
    for element in elements:
        if etree.QName(element).namespace != xroad.XRD_NS:
            continue  # an extension's header: echoed, not read
        name = etree.QName(element).localname
        if name in by_name:
            raise SoapFault(f"header xrd:{name} appears more than once")
        if not header_schema().validate(element):
            error = header_schema().error_log.last_error
            raise SoapFault(f"header xrd:{name} is invalid: {error.message if error else 'schema'}")
        by_name[name] = element
    missing = [name for name in MANDATORY if name not in by_name]
    if missing:
        raise SoapFault(f"the request lacks header(s) {', '.join('xrd:' + m for m in missing)}")
    if (by_name["protocolVersion"].text or "").strip() != xroad.PROTOCOL_VERSION:
        raise SoapFault(f"protocolVersion must be {xroad.PROTOCOL_VERSION}")
    client = xroad.XRoadId.from_element(by_name["client"])
    if client.object_type not in CLIENT_TYPES:
        raise SoapFault("the client must be a MEMBER or a SUBSYSTEM")
    service = xroad.XRoadId.from_element(by_name["service"])
    if service.object_type != "SERVICE":
        raise SoapFault("header xrd:service is invalid: its objectType is fixed to SERVICE")
    if service.member_code != system:
        raise SoapFault(f"service memberCode {service.member_code!r} is not this system ({system!r})")
    if service.service_code != operation:
        raise SoapFault(f"serviceCode {service.service_code!r} does not match the body element {operation!r}")
    user = by_name.get("userId")
    return Headers(elements, (by_name["id"].text or ""), None if user is None else (user.text or ""), client,
                   service)


def payload_of(envelope: etree._Element) -> etree._Element:
    """The one element in soap:Body, or a Client fault."""
    if envelope.tag != xroad.ENVELOPE:
        raise SoapFault("not a SOAP 1.1 envelope", code="VersionMismatch")
    body = envelope.find(xroad.BODY)
    if body is None:
        raise SoapFault("the envelope has no soap:Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault(f"soap:Body must hold exactly one element, not {len(children)}")
    return children[0]


def fault_element(fault: SoapFault) -> etree._Element:
    """`soap:Fault` with unqualified faultcode, faultstring and (for typed faults) detail."""
    element = etree.Element(xroad.FAULT, nsmap={"soap": xroad.SOAP_NS})
    etree.SubElement(element, "faultcode").text = f"soap:{fault.code}"
    etree.SubElement(element, "faultstring").text = fault.string
    if fault.detail is not None:
        etree.SubElement(element, "detail").append(fault.detail)
    return element


def response_envelope(headers: Sequence[etree._Element], request: bytes | None,
                      payload: etree._Element) -> etree._Element:
    """An unsigned answer: the request's headers echoed in order, then its hash, then the payload."""
    envelope = xroad.envelope(headers, payload)
    if request is not None:
        envelope.find(xroad.HEADER).append(xroad.request_hash_element(request))
    return envelope


async def read_bounded(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes `limit` bytes (never read further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
