"""The simulators as an X-Road service provider, in process (httpx.ASGITransport) and once over
a real socket with zeep. Requests are built by zeep from the WSDL, independently of the hub."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
import zeep
from lxml import etree
from starlette.applications import Starlette

from ehis.contracts import contract_dir, xroad
from ehis.contracts.xroad import ID_NS, SHA512_URI, SOAP_NS, XRD_NS
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier, Verified
from ehis.security.xml import MAX_XML_BYTES
from ehis.simulators import Journal, create_app
from ehis.simulators.journal import Entry, Outcome
from ehis.simulators.responders import Operation, Responder
from ehis.sources.spec import Service, Source
from ehis.testing import free_port

from .conftest import BuildRequest, soap_headers

COMMON = "urn:az:gov:ehis:common:v1"
NS = {"soap": SOAP_NS, "xrd": XRD_NS, "id": ID_NS, "ehis": COMMON}
TARGETING_NS = "http://x-road.eu/xsd/security-server.xsd"  # PR-TARGETSS, an extension header


@pytest.fixture(scope="module")
def common_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(contract_dir() / "ehis.xsd")))


def verify(pki: Pki, spec: Source, content: bytes) -> Verified:
    """The response as signed by the source (raises if it is not)."""
    return EnvelopeVerifier(pki.ca_file).verify(content, expected_signer=spec.code)


async def post(http: httpx.AsyncClient, spec: Source, envelope: etree._Element | bytes) -> httpx.Response:
    body = envelope if isinstance(envelope, bytes) else xroad.serialize(envelope)
    return await http.post(f"/{spec.code}", content=body, headers={"Content-Type": "text/xml; charset=utf-8"})


def data(element: etree._Element) -> Any:
    """An element as plain data, to compare XML regardless of namespace prefixes."""
    return (element.tag, dict(element.attrib), (element.text or "").strip(), [data(c) for c in element])


def fault(envelope: etree._Element) -> tuple[str, str, etree._Element | None]:
    node = envelope.find("soap:Body/soap:Fault", NS)
    assert node is not None, etree.tostring(envelope)
    detail = node.find("detail")
    return node.findtext("faultcode"), node.findtext("faultstring"), (detail[0] if detail is not None else None)


def last_entry(app: Starlette) -> Entry:
    return app.state.journal.entries()[-1]


def sha512(body: bytes) -> str:
    return base64.b64encode(hashlib.sha512(body).digest()).decode()


def params_of(service: Service, values: dict[str, Any]) -> dict[str, Any]:
    return service.request(service.params.model_validate(values))


# --- the happy path -------------------------------------------------------------------------------


async def test_signed_request_gets_a_signed_valid_answer_bound_to_its_bytes(
    http: httpx.AsyncClient, pki: Pki, spec: Source, service: Service, signed_request: BuildRequest,
    app: Starlette,
) -> None:
    request = signed_request()
    body = xroad.serialize(request)
    response = await post(http, spec, body)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    verified = verify(pki, spec, response.content)
    assert f"CN={spec.code}," in verified.signer
    answer = verified.envelope
    payload = answer.find("soap:Body", NS)[0]
    assert payload.tag == spec.codec.qname(service.response)
    etree.XMLSchema(etree.parse(str(spec.xsd))).assertValid(payload)

    sent = [data(e) for e in xroad.message_headers(request)]
    assert [data(e) for e in xroad.message_headers(answer)] == sent  # every header, in order
    request_hash = answer.find("soap:Header/xrd:requestHash", NS)
    assert request_hash.get("algorithmId") == SHA512_URI
    assert request_hash.text == sha512(body)  # PR-MESS 2.2: the bytes of the POST, not a canonical form
    entry = last_entry(app)
    assert (entry.outcome, entry.operation, entry.client) == (Outcome.OK, service.operation, "emek-muqavilesi")


async def test_the_same_request_twice_gives_the_identical_answer(
    http: httpx.AsyncClient, pki: Pki, spec: Source, signed_request: BuildRequest
) -> None:
    answers = []
    for _ in range(2):
        response = await post(http, spec, signed_request())
        answers.append(data(verify(pki, spec, response.content).envelope.find("soap:Body", NS)[0]))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("omitted", [("userId",), ("issue",), ("userId", "issue")])
async def test_optional_headers_may_be_omitted_and_the_echo_keeps_what_was_sent(
    http: httpx.AsyncClient, pki: Pki, spec: Source, signed_request: BuildRequest, omitted: tuple[str, ...]
) -> None:
    request = signed_request(**{name: None for name in omitted})
    response = await post(http, spec, request)
    assert response.status_code == 200, response.text
    answer = verify(pki, spec, response.content).envelope
    assert [data(e) for e in xroad.message_headers(answer)] == [data(e) for e in xroad.message_headers(request)]
    assert all(answer.find(f"soap:Header/xrd:{name}", NS) is None for name in omitted)


async def test_headers_in_another_order_and_an_extension_header_are_echoed_as_sent(
    http: httpx.AsyncClient, pki: Pki, spec: Source, unsigned_request: BuildRequest
) -> None:
    envelope = unsigned_request()
    header = envelope.find("soap:Header", NS)
    protocol = header.find("xrd:protocolVersion", NS)
    header.remove(protocol)
    header.insert(0, protocol)  # protocolVersion first
    target = etree.SubElement(header, f"{{{TARGETING_NS}}}securityServer", {f"{{{ID_NS}}}objectType": "SERVER"})
    for name, value in (("xRoadInstance", "AZ"), ("memberClass", "GOV"), ("memberCode", spec.code),
                        ("serverCode", "ss1")):
        etree.SubElement(target, f"{{{ID_NS}}}{name}").text = value
    request = EnvelopeSigner(pki.operator()).sign(envelope)
    response = await post(http, spec, request)
    assert response.status_code == 200, response.text
    answer = verify(pki, spec, response.content).envelope
    assert [data(e) for e in xroad.message_headers(answer)] == [data(e) for e in xroad.message_headers(request)]


# --- business faults -----------------------------------------------------------------------------


async def test_a_missing_record_is_a_signed_common_not_found_fault(
    http: httpx.AsyncClient, pki: Pki, spec: Source, service: Service, signed_request: BuildRequest,
    common_schema: etree.XMLSchema, app: Starlette,
) -> None:
    assert service.missing is not None, f"the fixture's service {service.name} has no missing example to ask for"
    request = signed_request(params_of(service, dict(service.missing)))
    body = xroad.serialize(request)
    response = await post(http, spec, body)

    assert response.status_code == 500
    envelope = verify(pki, spec, response.content).envelope
    code, string, detail = fault(envelope)
    assert code == "soap:Client" and string
    assert detail.tag == f"{{{COMMON}}}NotFound"
    common_schema.assertValid(detail)
    assert envelope.findtext("soap:Header/xrd:requestHash", namespaces=NS) == sha512(body)
    assert envelope.findtext("soap:Header/xrd:id", namespaces=NS) == request.findtext("soap:Header/xrd:id", namespaces=NS)
    assert last_entry(app).outcome is Outcome.NOT_FOUND


async def test_a_malformed_subject_is_a_signed_invalid_input_fault(
    http: httpx.AsyncClient, pki: Pki, spec: Source, service: Service, signed_request: BuildRequest,
    common_schema: etree.XMLSchema, app: Starlette,
) -> None:
    values = {**params_of(service, dict(service.example)), service.subject: "ABC"}
    response = await post(http, spec, signed_request(values))
    assert response.status_code == 500
    code, _, detail = fault(verify(pki, spec, response.content).envelope)
    assert code == "soap:Client"
    assert detail.tag == f"{{{COMMON}}}InvalidInput"
    common_schema.assertValid(detail)
    assert last_entry(app).outcome is Outcome.INVALID


# --- signatures and unsafe XML -------------------------------------------------------------------


async def assert_rejected(http: httpx.AsyncClient, pki: Pki, spec: Source, app: Starlette,
                          body: etree._Element | bytes) -> str:
    raw = body if isinstance(body, bytes) else xroad.serialize(body)
    response = await post(http, spec, raw)
    assert response.status_code == 500
    envelope = verify(pki, spec, response.content).envelope  # rejections are signed too
    code, string, detail = fault(envelope)
    assert code == "soap:Client" and detail is None
    assert envelope.findtext("soap:Header/xrd:requestHash", namespaces=NS) == sha512(raw)  # bound all the same
    entry = last_entry(app)
    assert entry.outcome is Outcome.REJECTED and not entry.signature_ok
    assert entry.message_id is None and entry.subject is None  # nothing unverified is journaled
    return string


async def test_unsigned_request_is_rejected(http: httpx.AsyncClient, pki: Pki, spec: Source, app: Starlette,
                                            unsigned_request: BuildRequest) -> None:
    assert (await assert_rejected(http, pki, spec, app, unsigned_request())).startswith("signature rejected")


async def test_request_signed_by_a_source_instead_of_the_operator_is_rejected(
    http: httpx.AsyncClient, pki: Pki, spec: Source, app: Starlette, signed_request: BuildRequest
) -> None:
    string = await assert_rejected(http, pki, spec, app, signed_request(signer=pki.identity(spec.code)))
    assert string.startswith("signature rejected")


async def test_request_tampered_after_signing_is_rejected(
    http: httpx.AsyncClient, pki: Pki, spec: Source, app: Starlette, signed_request: BuildRequest
) -> None:
    body = xroad.serialize(signed_request())
    tampered = body.replace(b"emek-muqavilesi", b"emek-muqavilesX", 1)
    assert tampered != body
    assert (await assert_rejected(http, pki, spec, app, tampered)).startswith("signature rejected")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE e [<!ENTITY a SYSTEM "file:///etc/passwd"><!ENTITY b "b">]>',
], ids=["expansion", "external"])
async def test_doctype_and_entities_are_rejected_in_every_encoding(
    http: httpx.AsyncClient, pki: Pki, spec: Source, app: Starlette, doctype: str, encoding: str
) -> None:
    text = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>{doctype}'
            f'<soap:Envelope xmlns:soap="{SOAP_NS}"><soap:Body><x>&b;&a;</x></soap:Body></soap:Envelope>')
    string = await assert_rejected(http, pki, spec, app, text.encode(encoding))
    assert "DTD" in string
    response = await post(http, spec, text.encode(encoding))
    assert b"aaaaaaaaaa" not in response.content and b"root:" not in response.content


async def test_oversized_body_is_rejected_before_parsing(http: httpx.AsyncClient, pki: Pki, spec: Source,
                                                         app: Starlette) -> None:
    response = await post(http, spec, b"<a>" + b"x" * MAX_XML_BYTES + b"</a>")
    assert response.status_code == 500
    assert "larger than" in fault(verify(pki, spec, response.content).envelope)[1]


# --- protocol and contract checks on the verified envelope ---------------------------------------


def _remove(path: str) -> Callable[[etree._Element], None]:
    def mutate(envelope: etree._Element) -> None:
        node = envelope.find(path, NS)
        node.getparent().remove(node)
    return mutate


def _text(path: str, value: str) -> Callable[[etree._Element], None]:
    def mutate(envelope: etree._Element) -> None:
        envelope.find(path, NS).text = value
    return mutate


def _duplicate(path: str) -> Callable[[etree._Element], None]:
    def mutate(envelope: etree._Element) -> None:
        node = envelope.find(path, NS)
        node.addnext(etree.fromstring(etree.tostring(node)))
    return mutate


def _attr(path: str, name: str, value: str) -> Callable[[etree._Element], None]:
    def mutate(envelope: etree._Element) -> None:
        envelope.find(path, NS).set(name, value)
    return mutate


def _extra_body_child(envelope: etree._Element) -> None:
    payload = envelope.find("soap:Body", NS)[0]
    etree.SubElement(payload, f"{{{etree.QName(payload).namespace}}}extra")


def _request_hash(envelope: etree._Element) -> None:
    envelope.find("soap:Header", NS).append(xroad.request_hash_element(b"x"))


def _other_operation(envelope: etree._Element) -> None:
    payload = envelope.find("soap:Body", NS)[0]
    payload.tag = f"{{{etree.QName(payload).namespace}}}NoSuchOperation"
    envelope.find("soap:Header/xrd:service/id:serviceCode", NS).text = "NoSuchOperation"


@pytest.mark.parametrize(("mutate", "expected"), [
    (_remove("soap:Header/xrd:client"), "lacks header(s) xrd:client"),
    (_remove("soap:Header/xrd:service"), "lacks header(s) xrd:service"),
    (_remove("soap:Header/xrd:protocolVersion"), "lacks header(s) xrd:protocolVersion"),
    (_duplicate("soap:Header/xrd:id"), "xrd:id appears more than once"),
    (_text("soap:Header/xrd:protocolVersion", "3.1"), "protocolVersion"),
    (_text("soap:Header/xrd:service/id:memberCode", "no-such-member"), "memberCode"),
    (_text("soap:Header/xrd:service/id:serviceCode", "GetSomethingElse"), "serviceCode"),
    (_attr("soap:Header/xrd:client", f"{{{ID_NS}}}objectType", "SERVICE"), "MEMBER or a SUBSYSTEM"),
    (_attr("soap:Header/xrd:service", f"{{{ID_NS}}}objectType", "MEMBER"), "header xrd:service is invalid"),
    (_remove("soap:Header/xrd:service/id:xRoadInstance"), "header xrd:service is invalid"),
    (_request_hash, "must not carry xrd:requestHash"),
    (_extra_body_child, "body is invalid"),
    (_other_operation, "no operation"),
], ids=["no-client", "no-service", "no-protocol", "two-ids", "protocol", "member", "service-code",
        "client-type", "service-type", "service-invalid", "request-hash", "body-invalid", "unknown-operation"])
async def test_protocol_and_contract_violations_are_signed_client_faults(
    http: httpx.AsyncClient, pki: Pki, spec: Source, app: Starlette, unsigned_request: BuildRequest,
    mutate: Callable[[etree._Element], None], expected: str,
) -> None:
    envelope = unsigned_request()
    mutate(envelope)
    response = await post(http, spec, EnvelopeSigner(pki.operator()).sign(envelope))

    assert response.status_code == 500
    code, string, _ = fault(verify(pki, spec, response.content).envelope)
    assert code == "soap:Client"
    assert expected in string
    entry = last_entry(app)
    assert entry.outcome is Outcome.INVALID and entry.signature_ok


async def test_a_member_client_without_subsystem_is_accepted(
    http: httpx.AsyncClient, pki: Pki, spec: Source, signed_request: BuildRequest
) -> None:
    member = {"xRoadInstance": "AZ", "memberClass": "GOV", "memberCode": "EMSN", "objectType": "MEMBER"}
    response = await post(http, spec, signed_request(client=member))
    assert response.status_code == 200, response.text


async def test_a_simulator_bug_is_a_signed_server_fault(
    http: httpx.AsyncClient, pki: Pki, spec: Source, service: Service, app: Starlette,
    signed_request: BuildRequest,
) -> None:
    def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("bug")

    provider = app.state.simulator
    sim = provider.sources[spec.code]
    provider.sources[spec.code] = dataclasses.replace(sim, responder=Responder((Operation(service.operation, broken),)))

    response = await post(http, spec, signed_request())
    assert response.status_code == 500
    code, string, _ = fault(verify(pki, spec, response.content).envelope)
    assert code == "soap:Server" and "bug" not in string
    assert last_entry(app).outcome is Outcome.ERROR


async def test_unknown_system_is_404(http: httpx.AsyncClient, signed_request: BuildRequest) -> None:
    assert (await http.post("/no-such-system", content=xroad.serialize(signed_request()))).status_code == 404
    assert (await http.get("/no-such-system?wsdl")).status_code == 404
    assert (await http.get("/contracts/schemas/nothing.xsd")).status_code == 404


# --- the contract over HTTP ----------------------------------------------------------------------


async def test_wsdl_points_at_the_callers_base_url_and_its_imports_resolve(
    http: httpx.AsyncClient, spec: Source
) -> None:
    response = await http.get(f"/{spec.code}?wsdl")
    assert response.status_code == 200
    wsdl = etree.fromstring(response.content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == f"http://sim/{spec.code}"
    locations = [e.get(a) for e in wsdl.iter() for a in ("location", "schemaLocation") if e.get(a)]
    assert locations and all(url.startswith("http://sim/") for url in locations)
    for url in locations:
        if url != address.get("location"):
            assert (await http.get(url)).status_code == 200, url
    assert (await http.get(f"/{spec.code}")).status_code == 400


@pytest.fixture
def live_server(pki: Pki) -> Iterator[str]:
    """The app under uvicorn on a free 127.0.0.1 port, in a thread (zeep's transport is blocking)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(pki), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


class SignAsOperator(zeep.Plugin):
    def __init__(self, signer: EnvelopeSigner):
        self.signer = signer

    def egress(self, envelope, http_headers, operation, binding_options):  # type: ignore[no-untyped-def]
        return self.signer.sign(envelope), http_headers


def test_zeep_loads_the_wsdl_over_http_and_calls_the_real_server(live_server: str, pki: Pki, spec: Source,
                                                                 service: Service) -> None:
    client = zeep.Client(f"{live_server}/{spec.code}?wsdl", plugins=[SignAsOperator(EnvelopeSigner(pki.operator()))])
    port = next(iter(next(iter(client.wsdl.services.values())).ports.values()))
    assert port.binding_options["address"] == f"{live_server}/{spec.code}"
    body = params_of(service, dict(service.example))
    result = getattr(client.service, service.operation)(**body, _soapheaders=soap_headers(spec, service))
    assert result.header.protocolVersion == "4.0"
    if service.missing is not None:
        with pytest.raises(zeep.exceptions.Fault) as raised:
            getattr(client.service, service.operation)(**params_of(service, dict(service.missing)),
                                                       _soapheaders=soap_headers(spec, service))
        assert raised.value.code.endswith("Client")


# --- the journal ---------------------------------------------------------------------------------


async def test_journal_lists_what_was_received_and_delete_clears_it(
    http: httpx.AsyncClient, app: Starlette, spec: Source, service: Service, signed_request: BuildRequest,
    unsigned_request: BuildRequest,
) -> None:
    subject = str(service.example[service.subject])
    await post(http, spec, signed_request(userId="AZ7777777"))
    await post(http, spec, unsigned_request())

    entries = (await http.get("/_admin/journal", params={"system": spec.code})).json()["entries"]
    assert [e["outcome"] for e in entries] == ["ok", "rejected"]
    first = entries[0]
    assert first["system"] == spec.code and first["operation"] == service.operation
    assert first["user_id"] == "AZ7777777" and first["client"] == "emek-muqavilesi"
    assert first["subject"] == subject[:2] + "*" * (len(subject) - 2) and first["message_id"]
    assert "CN=meis-operator" in first["signature"] and first["signature_ok"] is True
    assert first["time"]
    assert subject not in (await http.get("/_admin/journal")).text
    assert (await http.get("/_admin/journal", params={"system": "no-such"})).json()["entries"] == []
    assert len(app.state.journal) == 2

    assert (await http.delete("/_admin/journal")).status_code == 204
    assert (await http.get("/_admin/journal")).json()["entries"] == []


def test_journal_is_bounded() -> None:
    journal = Journal(capacity=3)
    for n in range(5):
        journal.record(Entry("x", Outcome.OK, "CN=x", True, message_id=str(n)))
    assert [e.message_id for e in journal] == ["2", "3", "4"]


async def test_health(http: httpx.AsyncClient) -> None:
    response = await http.get("/_admin/health")
    assert response.json() == {"status": "ok"}


def test_serve_runs_the_app_with_uvicorn(monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    from ehis.simulators import serve

    serve("127.0.0.1", 8701, pki)
    (app, options), = calls
    assert isinstance(app, Starlette)
    assert options["host"] == "127.0.0.1" and options["port"] == 8701

