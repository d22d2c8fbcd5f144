"""The service metadata protocol (PR-META) as the simulators answer it: a tester discovers a
simulated source the way they would a real one."""

from __future__ import annotations

import email
import uuid
from email.policy import HTTP

import httpx
import pytest
from lxml import etree

from ehis.contracts import contract_dir, xroad
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.simulators.metaservices import HIDDEN_ADDRESS
from ehis.sources.spec import Source


def meta_request(pki: Pki, spec: Source, method: str, member_class: str = "GOV", **body: str) -> bytes:
    headers = xroad.RequestHeaders(
        client=xroad.XRoadId("SUBSYSTEM", "AZ", member_class, "EMSN", "portal"),
        service=xroad.XRoadId("SERVICE", "AZ", "GOV", spec.code, None, method),
        id=str(uuid.uuid4()), user_id="AZ0000001")
    payload = etree.Element(xroad.xrd(method), nsmap=xroad.NSMAP)
    for name, value in body.items():
        etree.SubElement(payload, xroad.xrd(name)).text = value
    return xroad.serialize(EnvelopeSigner(pki.operator()).sign(xroad.envelope(headers.elements(), payload)))


@pytest.fixture(scope="module")
def meta_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(contract_dir() / "xroad.xsd")))


async def call(http: httpx.AsyncClient, spec: Source, body: bytes) -> httpx.Response:
    return await http.post(f"/{spec.code}", content=body, headers={"Content-Type": "text/xml"})


@pytest.mark.parametrize("method", ["listMethods", "allowedMethods"])
async def test_list_and_allowed_methods_name_every_operation(http, pki, spec, meta_schema, method) -> None:
    body = meta_request(pki, spec, method)
    response = await call(http, spec, body)
    assert response.status_code == 200, response.text
    envelope = EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer=spec.code).envelope
    payload = envelope.find(xroad.BODY)[0]
    assert payload.tag == xroad.xrd(f"{method}Response")
    meta_schema.assertValid(payload)
    codes = {s.findtext(f"{{{xroad.ID_NS}}}serviceCode") for s in payload}
    polled = {"GetChangesSince"} if spec.events is not None and spec.events.mode == "poll" else set()
    assert codes == {s.operation for s in spec.services} | polled  # the WSDL's operations, the hub's poll too
    assert xroad.echo_problem(xroad.message_headers(etree.fromstring(body)), xroad.message_headers(envelope)) is None


async def test_allowed_methods_is_empty_for_a_client_the_source_does_not_serve(http, pki, spec) -> None:
    response = await call(http, spec, meta_request(pki, spec, "allowedMethods", member_class="COM"))
    envelope = EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer=spec.code).envelope
    assert len(envelope.find(xroad.BODY)[0]) == 0


async def test_get_wsdl_answers_the_contract_as_an_attachment(http, pki, spec, service) -> None:
    response = await call(http, spec, meta_request(pki, spec, "getWsdl", serviceCode=service.operation))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/related")
    message = email.message_from_bytes(
        b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n" + response.content, policy=HTTP)
    soap, wsdl = [part.get_payload(decode=True) for part in message.iter_parts()]
    envelope = EnvelopeVerifier(pki.ca_file).verify(soap.strip(), expected_signer=spec.code).envelope
    assert envelope.find(xroad.BODY)[0].findtext(xroad.xrd("serviceCode")) == service.operation
    definitions = etree.fromstring(wsdl.strip())
    assert {e.get("location") for e in definitions.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")} == {
        HIDDEN_ADDRESS}
    assert service.operation in {op.get("name") for op in definitions.iter("{http://schemas.xmlsoap.org/wsdl/}operation")}


async def test_get_wsdl_of_an_unknown_service_is_a_signed_client_fault(http, pki, spec) -> None:
    response = await call(http, spec, meta_request(pki, spec, "getWsdl", serviceCode="NoSuchService"))
    assert response.status_code == 500
    envelope = EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer=spec.code).envelope
    assert "NoSuchService" in envelope.findtext(f"{xroad.BODY}/{xroad.FAULT}/faultstring")
