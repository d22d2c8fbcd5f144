"""SOAP 1.1 plumbing every simulated source shares: request checks, response and fault envelopes.

The app calls these on the *verified* envelope only (what the signature covers). A request that
breaks the contract (headers missing or wrong, a body the schema rejects, an operation the
source does not offer) becomes a `SoapFault` with faultcode `soap:Client`; responders raise the
same exception with the contract's typed detail element for business outcomes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ehis.contracts import contract_dir, xsd_path
from ehis.contracts.xroad import ID_NS, PROTOCOL_VERSION, XRD_NS
from ehis.security.signing import SHA512_URI, SOAP_NS
from ehis.simulators.journal import Outcome

REQUEST_HEADERS = ("client", "service", "id", "userId", "protocolVersion", "issue")
CONTENT_TYPE = "text/xml; charset=utf-8"
NSMAP = {"soap": SOAP_NS, "xrd": XRD_NS, "id": ID_NS}

_ENVELOPE = f"{{{SOAP_NS}}}Envelope"
_HEADER = f"{{{SOAP_NS}}}Header"
_BODY = f"{{{SOAP_NS}}}Body"
_OBJECT_TYPE = f"{{{ID_NS}}}objectType"


class SoapFault(Exception):
    """A SOAP 1.1 fault to send back: `code` is Client, Server or VersionMismatch."""

    def __init__(
        self,
        string: str,
        *,
        code: str = "Client",
        detail: etree._Element | None = None,
        outcome: Outcome = Outcome.INVALID,
    ):
        super().__init__(string)
        self.string = string
        self.code = code
        self.detail = detail
        self.outcome = outcome


@dataclass(frozen=True)
class Headers:
    """The X-Road headers of a verified request, kept as elements so they echo unchanged."""

    elements: tuple[etree._Element, ...]
    message_id: str
    user_id: str
    client_subsystem: str
    service_member: str
    service_code: str


@dataclass(frozen=True)
class SoapRequest:
    headers: Headers
    payload: etree._Element  # the one element in soap:Body

    @property
    def operation(self) -> str:
        return etree.QName(self.payload).localname


def contract_schema(system: str) -> etree.XMLSchema:
    """One schema for the system's messages and the X-Road headers; build once at start-up.

    The system's XSD imports nothing and xroad.xsd imports identifiers.xsd, so a small wrapper
    that imports both (by local file URI) validates headers and bodies alike.
    """
    target = etree.parse(str(xsd_path(system))).getroot().get("targetNamespace")
    xs = "http://www.w3.org/2001/XMLSchema"
    wrapper = etree.Element(f"{{{xs}}}schema", nsmap={"xs": xs})
    for namespace, path in ((target, xsd_path(system)), (XRD_NS, contract_dir() / "xroad.xsd")):
        etree.SubElement(wrapper, f"{{{xs}}}import", namespace=namespace, schemaLocation=Path(path).as_uri())
    return etree.XMLSchema(wrapper)


def parse_request(
    envelope: etree._Element, *, system: str, schema: etree.XMLSchema, operations: Collection[str]
) -> SoapRequest:
    """The checked headers and body payload of a verified envelope, or a Client `SoapFault`."""
    if envelope.tag != _ENVELOPE:
        raise SoapFault("not a SOAP 1.1 envelope", code="VersionMismatch")
    payload = _payload(envelope)
    _validate(schema, payload, "body")
    headers = _headers(envelope, schema)
    operation = etree.QName(payload).localname
    if headers.service_member != system:
        raise SoapFault(f"service memberCode {headers.service_member!r} is not this system ({system!r})")
    if headers.service_code != operation:
        raise SoapFault(f"serviceCode {headers.service_code!r} does not match the body element {operation!r}")
    if operation not in operations:
        raise SoapFault(f"{system} offers no operation {operation!r}")
    return SoapRequest(headers, payload)


def echoable_headers(envelope: etree._Element) -> tuple[etree._Element, ...]:
    """Whatever request headers can be echoed in a fault when the headers themselves are wrong."""
    header = envelope.find(_HEADER)
    if header is None:
        return ()
    return tuple(el for name in REQUEST_HEADERS if (el := header.find(f"{{{XRD_NS}}}{name}")) is not None)


def response_envelope(
    headers: Sequence[etree._Element], request_hash: str | None, payload: etree._Element
) -> etree._Element:
    """An unsigned response: the request's headers echoed, `xrd:requestHash`, then the payload."""
    envelope = etree.Element(_ENVELOPE, nsmap=NSMAP)
    header = etree.SubElement(envelope, _HEADER)
    for element in headers:
        header.append(deepcopy(element))
    if request_hash is not None:
        etree.SubElement(header, f"{{{XRD_NS}}}requestHash", algorithmId=SHA512_URI).text = request_hash
    etree.SubElement(envelope, _BODY).append(payload)
    return envelope


def fault_element(fault: SoapFault) -> etree._Element:
    """`soap:Fault` with unqualified faultcode, faultstring and (for typed faults) detail."""
    element = etree.Element(f"{{{SOAP_NS}}}Fault", nsmap={"soap": SOAP_NS})
    etree.SubElement(element, "faultcode").text = f"soap:{fault.code}"
    etree.SubElement(element, "faultstring").text = fault.string
    if fault.detail is not None:
        etree.SubElement(element, "detail").append(fault.detail)
    return element


def fault_envelope(
    fault: SoapFault, headers: Sequence[etree._Element] = (), request_hash: str | None = None
) -> etree._Element:
    return response_envelope(headers, request_hash, fault_element(fault))


def serialize(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _payload(envelope: etree._Element) -> etree._Element:
    body = envelope.find(_BODY)
    if body is None:
        raise SoapFault("the envelope has no soap:Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault(f"soap:Body must hold exactly one element, not {len(children)}")
    return children[0]


def _headers(envelope: etree._Element, schema: etree.XMLSchema) -> Headers:
    header = envelope.find(_HEADER)
    if header is None:
        raise SoapFault("the envelope has no soap:Header with the X-Road headers")
    found: dict[str, etree._Element] = {}
    for name in REQUEST_HEADERS:
        matches = header.findall(f"{{{XRD_NS}}}{name}")
        if len(matches) != 1:
            raise SoapFault(f"header xrd:{name} must appear once, not {len(matches)} times")
        _validate(schema, matches[0], f"header xrd:{name}")
        found[name] = matches[0]
    if found["protocolVersion"].text != PROTOCOL_VERSION:
        raise SoapFault(f"protocolVersion must be {PROTOCOL_VERSION}")
    if found["client"].get(_OBJECT_TYPE) != "SUBSYSTEM":
        raise SoapFault("the client must be a SUBSYSTEM")
    if found["service"].get(_OBJECT_TYPE) != "SERVICE":
        raise SoapFault("the service must be a SERVICE")
    user_id = (found["userId"].text or "").strip()
    if not user_id:
        raise SoapFault("header xrd:userId is empty: every request names the official who makes it")
    service = found["service"]
    return Headers(
        elements=tuple(found[name] for name in REQUEST_HEADERS),
        message_id=found["id"].text or "",
        user_id=user_id,
        client_subsystem=found["client"].findtext(f"{{{ID_NS}}}subsystemCode") or "",
        service_member=service.findtext(f"{{{ID_NS}}}memberCode") or "",
        service_code=service.findtext(f"{{{ID_NS}}}serviceCode") or "",
    )


def _validate(schema: etree.XMLSchema, element: etree._Element, what: str) -> None:
    if not schema.validate(element):
        error = schema.error_log.last_error
        message = error.message if error is not None else "does not match the contract"
        raise SoapFault(f"{what} is invalid: {message}")
