"""X-Road 4.0 message headers (PR-MESS §2.1–2.2) and the SOAP envelope around them.

Shared by the adapter (the client side) and the simulators (the provider side), so both read the
same rules: headers in the specification's order, `userId` and `issue` optional, a response that
copies every request header in the same sequence with the same values and adds `requestHash`,
the base64 SHA-512 of the exact bytes of the request's HTTP body (see contracts/schemas/xroad.xsd).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XRD_NS = "http://x-road.eu/xsd/xroad.xsd"
ID_NS = "http://x-road.eu/xsd/identifiers"
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"
PROTOCOL_VERSION = "4.0"
NSMAP = {"soap": SOAP_NS, "xrd": XRD_NS, "id": ID_NS}

ENVELOPE, HEADER, BODY, FAULT = (f"{{{SOAP_NS}}}{n}" for n in ("Envelope", "Header", "Body", "Fault"))
SIGNATURE = f"{{{DS_NS}}}Signature"
REQUEST_HASH = f"{{{XRD_NS}}}requestHash"
OBJECT_TYPE = f"{{{ID_NS}}}objectType"
HEADER_ORDER = ("client", "service", "id", "userId", "issue", "protocolVersion")
_ID_FIELDS = (
    ("instance", "xRoadInstance"), ("member_class", "memberClass"), ("member_code", "memberCode"),
    ("subsystem_code", "subsystemCode"), ("service_code", "serviceCode"), ("service_version", "serviceVersion"),
)


def xrd(name: str) -> str:
    return f"{{{XRD_NS}}}{name}"


@dataclass(frozen=True)
class XRoadId:
    """A client (MEMBER or SUBSYSTEM) or service identifier, as in PR-MESS §1.3."""

    object_type: str
    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None = None
    service_code: str | None = None
    service_version: str | None = None

    def element(self, tag: str) -> etree._Element:
        element = etree.Element(tag, {OBJECT_TYPE: self.object_type}, nsmap=NSMAP)
        for attr, name in _ID_FIELDS:
            value = getattr(self, attr)
            if value is not None:
                etree.SubElement(element, f"{{{ID_NS}}}{name}").text = value
        return element

    @classmethod
    def from_element(cls, element: etree._Element) -> XRoadId:
        found = {attr: element.findtext(f"{{{ID_NS}}}{name}") for attr, name in _ID_FIELDS}
        return cls(object_type=element.get(OBJECT_TYPE, ""), instance=found.pop("instance") or "",
                   member_class=found.pop("member_class") or "", member_code=found.pop("member_code") or "",
                   **found)


@dataclass(frozen=True)
class RequestHeaders:
    """The headers of one request; `user_id` and `issue` are left out when None."""

    client: XRoadId
    service: XRoadId
    id: str
    user_id: str | None = None
    issue: str | None = None
    protocol_version: str = PROTOCOL_VERSION

    def elements(self) -> list[etree._Element]:
        """The header elements in the order of PR-MESS Table 1 and its Annex E example.

        The client and service elements are built once per identifier and shared: read them or
        copy them (`envelope` does), never change or append them."""
        out = [_shared_element(self.client, xrd("client")), _shared_element(self.service, xrd("service"))]
        for name, value in (("id", self.id), ("userId", self.user_id), ("issue", self.issue),
                            ("protocolVersion", self.protocol_version)):
            if value is not None:
                element = etree.Element(xrd(name), nsmap=NSMAP)
                element.text = value
                out.append(element)
        return out


@lru_cache(maxsize=4096)
def _shared_element(identifier: XRoadId, tag: str) -> etree._Element:
    """`identifier.element(tag)`, made once: a hub sends the same few identifiers all day."""
    return identifier.element(tag)


def envelope(headers: Iterable[etree._Element], payload: etree._Element) -> etree._Element:
    """A SOAP 1.1 envelope with `headers` (copied) in soap:Header and `payload` in soap:Body."""
    root = etree.Element(ENVELOPE, nsmap=NSMAP)
    header = etree.SubElement(root, HEADER)
    for element in headers:
        header.append(deepcopy(element))
    etree.SubElement(root, BODY).append(payload)
    return root


def serialize(root: etree._Element) -> bytes:
    """The bytes that go on the wire (and that the request hash is computed over)."""
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def request_hash(body: bytes) -> str:
    """PR-MESS §2.2: base64 SHA-512 of the byte contents of the SOAP request message."""
    return base64.b64encode(hashlib.sha512(body).digest()).decode("ascii")


def request_hash_element(body: bytes) -> etree._Element:
    element = etree.Element(REQUEST_HASH, {"algorithmId": SHA512_URI}, nsmap=NSMAP)
    element.text = request_hash(body)
    return element


def message_headers(root: etree._Element) -> list[etree._Element]:
    """The header elements of a message in order: everything in soap:Header except the
    signature and the request hash (which a response adds and does not echo)."""
    header = root.find(HEADER)
    if header is None:
        return []
    return [el for el in header if isinstance(el.tag, str) and el.tag not in (SIGNATURE, REQUEST_HASH)]


def header_value(headers: Sequence[etree._Element], name: str) -> str | None:
    element = next((el for el in headers if el.tag == xrd(name)), None)
    return None if element is None else (element.text or "")


def echo_problem(sent: Sequence[etree._Element], received: Sequence[etree._Element]) -> str | None:
    """Why `received` is not an exact copy of `sent` (same headers, same order, same values), or None."""
    if len(received) != len(sent):
        return f"the answer echoes {len(received)} headers; the request had {len(sent)}"
    for mine, theirs in zip(sent, received, strict=True):
        if not same_content(mine, theirs):
            return f"the answer does not echo header {etree.QName(mine).localname!r} as sent"
    return None


def same_content(a: etree._Element, b: etree._Element) -> bool:
    """Same name, attributes, text and children; namespace prefixes and indentation do not count."""
    if a.tag != b.tag or dict(a.attrib) != dict(b.attrib):
        return False
    kids_a = [c for c in a if isinstance(c.tag, str)]
    kids_b = [c for c in b if isinstance(c.tag, str)]
    if not kids_a and not kids_b:
        return (a.text or "") == (b.text or "")
    if (a.text or "").strip() or (b.text or "").strip() or len(kids_a) != len(kids_b):
        return False
    return all(same_content(x, y) for x, y in zip(kids_a, kids_b, strict=True))
