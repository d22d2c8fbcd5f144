"""The X-Road service metadata protocol (PR-META §3–4) as every simulated endpoint answers it.

A tester discovers a simulated source the way they would a real one: `listMethods` lists the
endpoint's services, `allowedMethods` those the calling client may invoke (the simulators
allow every service to members of class GOV, the ministry among them, and none to others),
and `getWsdl` returns a service's WSDL as a SOAP attachment (multipart/related), its endpoint
address replaced by `http://example.org/xroad-endpoint` as a security server does. Requests are
signed and carry the X-Road headers like any other; answers are signed and bound alike.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from ehis.contracts import xroad
from ehis.contracts.provider import Headers, SoapFault

METHODS = ("listMethods", "allowedMethods", "getWsdl")
HIDDEN_ADDRESS = "http://example.org/xroad-endpoint"
ALLOWED_CLASSES = ("GOV",)
_SOAP_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"


def is_meta(payload: etree._Element) -> bool:
    return etree.QName(payload).namespace == xroad.XRD_NS and etree.QName(payload).localname in METHODS


@dataclass(frozen=True)
class MetaAnswer:
    payload: etree._Element
    attachment: bytes | None = None  # getWsdl: the WSDL, sent as the second MIME part


def answer(payload: etree._Element, headers: Headers, operations: frozenset[str], wsdl: bytes) -> MetaAnswer:
    """The answer to a metaservice request for an endpoint offering `operations` (WSDL `wsdl`)."""
    method = etree.QName(payload).localname
    if method == "getWsdl":
        code = payload.findtext(xroad.xrd("serviceCode")) or ""
        if code not in operations:
            raise SoapFault(f"no service {code!r} here")
        response = etree.Element(xroad.xrd("getWsdlResponse"), nsmap=xroad.NSMAP)
        for child in payload:
            response.append(etree.fromstring(etree.tostring(child)))
        return MetaAnswer(response, hide_address(wsdl))
    allowed = method == "listMethods" or headers.client.member_class in ALLOWED_CLASSES
    response = etree.Element(xroad.xrd(f"{method}Response"), nsmap=xroad.NSMAP)
    s = headers.service
    for code in sorted(operations) if allowed else ():
        identifier = xroad.XRoadId("SERVICE", s.instance, s.member_class, s.member_code, s.subsystem_code, code, "v1")
        response.append(identifier.element(xroad.xrd("service")))
    return MetaAnswer(response)


def hide_address(wsdl: bytes) -> bytes:
    root = etree.fromstring(wsdl)
    for address in root.iter(_SOAP_ADDRESS):
        address.set("location", HIDDEN_ADDRESS)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def multipart(soap: bytes, attachment: bytes) -> tuple[bytes, str]:
    """SOAP with one attachment (PR-MESS §2.4): the body and its Content-Type."""
    boundary = f"ehis-{uuid.uuid4().hex}"
    parts = (
        f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        f"Content-ID: <rootpart>\r\n\r\n".encode() + soap + b"\r\n"
        + f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-ID: <wsdl>\r\n\r\n".encode()
        + attachment + f"\r\n--{boundary}--\r\n".encode()
    )
    return parts, f'multipart/related; type="text/xml"; start="<rootpart>"; boundary="{boundary}"'
