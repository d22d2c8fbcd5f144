"""The X-Road message protocol 4.0 as its specification says, checked with its own annex example
messages (PR-MESS Annexes D and E, in tests/contract/xroad_annex/) and on the wire between the
hub's adapter and the simulators."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx
import pytest
from lxml import etree

from ehis.contracts import contract_dir, xroad
from ehis.contracts.provider import SoapFault, read_headers
from ehis.errors import InvalidInput, NotFound, SourceFault
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.security.xml import parse_untrusted
from ehis.simulators import create_app
from ehis.sources import sources
from tests.contract.support import CALLER, Rewriting, make_adapter, params, replaced

ANNEX = Path(__file__).with_name("xroad_annex")


def annex(name: str) -> bytes:
    return (ANNEX / name).read_bytes()


@pytest.fixture(scope="module")
def header_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(contract_dir() / "xroad.xsd")))


def sha512(body: bytes) -> str:
    return base64.b64encode(hashlib.sha512(body).digest()).decode()


# -- the annex messages through our parser and header rules ------------------------------------------


def test_the_annex_request_passes_the_parser_and_the_providers_header_rules(header_schema) -> None:
    root = parse_untrusted(annex("e1-request.xml"))
    headers = read_headers(root, system="MEMBER2", operation="exampleService")
    assert headers.message_id == "4894e35d-bf0f-44a6-867a-8e51f1daa7e0" and headers.user_id == "EE12345678901"
    assert headers.client.subsystem_code == "SUBSYSTEM1" and headers.service.service_version == "v1"
    for element in xroad.message_headers(root):
        header_schema.assertValid(element)  # our schema files accept the specification's headers


def test_the_annex_response_echoes_the_annex_request_header_for_header() -> None:
    request, response = parse_untrusted(annex("e1-request.xml")), parse_untrusted(annex("e2-response.xml"))
    assert xroad.echo_problem(xroad.message_headers(request), xroad.message_headers(response)) is None
    request_hash = response.find(f"{xroad.HEADER}/{xroad.REQUEST_HASH}")
    assert request_hash.get("algorithmId") == xroad.SHA512_URI
    assert len(base64.b64decode("".join(request_hash.text.split()))) == 64  # a SHA-512, wrapped as in the annex


def test_the_echo_check_finds_a_reordered_or_missing_header() -> None:
    sent = xroad.message_headers(parse_untrusted(annex("e1-request.xml")))
    assert "echoes 5 headers" in xroad.echo_problem(sent, sent[:-1])
    assert xroad.echo_problem(sent, [sent[1], sent[0], *sent[2:]]) is not None


def test_a_member_client_and_optional_headers_as_the_specification_allows(header_schema) -> None:
    root = parse_untrusted(annex("e1-request.xml"))
    header = root.find(xroad.HEADER)
    for name in ("userId", "issue"):
        header.remove(header.find(xroad.xrd(name)))
    client = header.find(xroad.xrd("client"))
    client.set(xroad.OBJECT_TYPE, "MEMBER")
    client.remove(client.find(f"{{{xroad.ID_NS}}}subsystemCode"))
    header_schema.assertValid(client)
    headers = read_headers(root, system="MEMBER2", operation="exampleService")
    assert headers.user_id is None and headers.client.object_type == "MEMBER"


def test_the_service_object_type_is_fixed_to_service() -> None:
    root = parse_untrusted(annex("e1-request.xml"))
    root.find(f"{xroad.HEADER}/{xroad.xrd('service')}").set(xroad.OBJECT_TYPE, "SUBSYSTEM")
    with pytest.raises(SoapFault, match="fixed to SERVICE"):
        read_headers(root, system="MEMBER2", operation="exampleService")


# -- on the wire: what the adapter sends and what it accepts -----------------------------------------


@pytest.fixture
def app(pki: Pki):
    return create_app(pki)


async def test_the_request_hash_is_over_the_exact_bytes_posted(pki: Pki, app) -> None:
    """Captured on the wire: the answer's requestHash is SHA-512 of the POST body as sent."""
    code, spec = next(iter(sources().items()))
    service = spec.services[0]
    seen: list[bytes] = []

    def capture(response: httpx.Response, body: bytes) -> httpx.Response:
        seen.append(body)
        return replaced(response, body)

    wire = Rewriting(httpx.ASGITransport(app=app), capture)
    adapter, http = make_adapter(pki, code, wire)
    async with http:
        await adapter.call(service, params(service), CALLER, 5)
    (sent,), (answer,) = wire.requests, seen
    assert sent.startswith(b"<?xml")  # the declaration is part of what is hashed
    envelope = EnvelopeVerifier(pki.ca_file).verify(answer, expected_signer=code).envelope
    assert envelope.findtext(f"{xroad.HEADER}/{xroad.REQUEST_HASH}") == sha512(sent)
    sent_headers = [etree.QName(e).localname for e in xroad.message_headers(etree.fromstring(sent))]
    assert sent_headers == ["client", "service", "id", "userId", "issue", "protocolVersion"]


async def test_the_annex_request_signed_and_sent_to_a_simulator_comes_back_bound_and_echoed(pki: Pki, app) -> None:
    """It names another provider (MEMBER2), so it is refused, but as the protocol says: signed,
    every header echoed in order, the hash of the bytes received."""
    code = next(iter(sources()))
    body = xroad.serialize(EnvelopeSigner(pki.operator()).sign(parse_untrusted(annex("e1-request.xml"))))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as http:
        response = await http.post(f"/{code}", content=body, headers={"Content-Type": "text/xml"})
    answer = EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer=code).envelope
    assert xroad.echo_problem(xroad.message_headers(parse_untrusted(body)), xroad.message_headers(answer)) is None
    assert answer.findtext(f"{xroad.HEADER}/{xroad.REQUEST_HASH}") == sha512(body)
    assert "memberCode 'MEMBER2'" in answer.findtext(f"{xroad.BODY}/{xroad.FAULT}/faultstring")


def body_fault_contract() -> tuple[str, str, object]:
    """A built source whose response may carry `fault` (ehis:BodyFault): (code, endpoint, service)."""
    for code, spec in sources().items():
        for service in spec.services:
            plan = spec.codec._plans[spec.codec.qname(service.response)]
            if any(child.key == "fault" for child in plan.children or ()):
                return code, next(iter(spec.providers), code), service
    raise LookupError("no built contract answers errors in the body")


@pytest.mark.parametrize(("code", "error"), [("not_found", NotFound), ("invalid_input", InvalidInput),
                                             ("test_failed", SourceFault)])
async def test_a_non_technical_error_in_the_body_is_the_typed_error(pki: Pki, app, code: str,
                                                                     error: type) -> None:
    """PR-MESS Annex D.2: the error in the response body, signed and bound like any answer."""
    source_code, endpoint, service = body_fault_contract()
    spec = sources()[source_code]

    def body_fault(response: httpx.Response, body: bytes) -> httpx.Response:
        doc = etree.fromstring(body)
        header = doc.find(xroad.HEADER)
        header.remove(header.find(xroad.SIGNATURE))
        soap_body = doc.find(xroad.BODY)
        soap_body.remove(soap_body[0])
        response_element = etree.SubElement(soap_body, spec.codec.qname(service.response))
        fault = etree.SubElement(response_element, spec.codec.qname("fault"))
        common = "{urn:az:gov:ehis:common:v1}"  # ehis:BodyFault's own elements
        etree.SubElement(fault, f"{common}faultCode").text = code
        etree.SubElement(fault, f"{common}faultString").text = "Could not read test parameters"
        return replaced(response, xroad.serialize(EnvelopeSigner(pki.identity(endpoint)).sign(doc)))

    adapter, http = make_adapter(pki, source_code, Rewriting(httpx.ASGITransport(app=app), body_fault),
                                 name=endpoint)
    async with http:
        with pytest.raises(error) as raised:
            await adapter.call(service, params(service), CALLER, 5)
    assert raised.value.source == source_code and raised.value.evidence is not None
    assert "Could not read test parameters" in raised.value.message
