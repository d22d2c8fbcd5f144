"""X-Road 4.0 style message headers: what the hub sends, and the echo it expects back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

XRD_NS = "http://x-road.eu/xsd/xroad.xsd"
ID_NS = "http://x-road.eu/xsd/identifiers"
PROTOCOL_VERSION = "4.0"
INSTANCE = "AZ"
MEMBER_CLASS = "GOV"
MINISTRY_MEMBER = "EMSN"  # the ministry of labour and social protection, the hub's operator
SERVICE_VERSION = "v1"
ECHOED = ("id", "userId", "protocolVersion", "issue")


@dataclass(frozen=True)
class MessageHeaders:
    """One outgoing message's headers; the response must echo them."""

    id: str
    client_subsystem: str
    system: str
    operation: str
    user_id: str
    issue: str

    def as_soapheaders(self) -> dict[str, Any]:
        """The `_soapheaders` argument zeep takes for a WSDL that declares the header parts."""
        return {
            "client": {
                "objectType": "SUBSYSTEM",
                "xRoadInstance": INSTANCE,
                "memberClass": MEMBER_CLASS,
                "memberCode": MINISTRY_MEMBER,
                "subsystemCode": self.client_subsystem,
            },
            "service": {
                "objectType": "SERVICE",
                "xRoadInstance": INSTANCE,
                "memberClass": MEMBER_CLASS,
                "memberCode": self.system,
                "serviceCode": self.operation,
                "serviceVersion": SERVICE_VERSION,
            },
            "id": self.id,
            "userId": self.user_id,
            "protocolVersion": PROTOCOL_VERSION,
            "issue": self.issue,
        }


def header_text(header: etree._Element | None, name: str) -> str | None:
    if header is None:
        return None
    return header.findtext(f"{{{XRD_NS}}}{name}")


def identifier(header: etree._Element | None, name: str) -> dict[str, str]:
    """The child values of the `client` or `service` identifier header."""
    node = None if header is None else header.find(f"{{{XRD_NS}}}{name}")
    if node is None:
        return {}
    return {etree.QName(child).localname: (child.text or "") for child in node}
