"""The simulator app in process (httpx.ASGITransport), and once over a real socket with zeep."""

from __future__ import annotations

import dataclasses
import socket
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

from ehis.contracts import xsd_path
from ehis.contracts.xroad import ID_NS, XRD_NS
from ehis.security.pki import Pki
from ehis.security.signing import SHA512_URI, EnvelopeSigner, EnvelopeVerifier, Verified, message_hash
from ehis.security.xml import MAX_XML_BYTES
from ehis.simulators import Journal, create_app
from ehis.simulators.journal import Entry, Outcome
from ehis.simulators.responders import Operation, Responder
from ehis.simulators.soap import REQUEST_HEADERS, SOAP_NS

from .conftest import BuildRequest

DIN = "urn:az:gov:din:person:v1"
NS = {"soap": SOAP_NS, "xrd": XRD_NS, "id": ID_NS, "din": DIN}
FAULT_STRING = "soap:Body/soap:Fault/faultstring"


@pytest.fixture(scope="module")
def din_schema() -> etree.XMLSchema:
    """Compiled straight from din.xsd, independently of the simulator's own schema wrapper."""
    return etree.XMLSchema(etree.parse(str(xsd_path("din"))))


def verify(pki: Pki, content: bytes) -> Verified:
    """The response as signed by the din source (raises if it is not)."""
    return EnvelopeVerifier(pki.ca_file).verify(content, expected_signer="din")


async def post(http: httpx.AsyncClient, envelope: etree._Element | bytes) -> httpx.Response:
    body = envelope if isinstance(envelope, bytes) else etree.tostring(envelope)
    return await http.post("/din", content=body, headers={"Content-Type": "text/xml; charset=utf-8"})


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


# --- the happy path -------------------------------------------------------------------------------


async def test_signed_request_gets_a_signed_valid_person(
    http: httpx.AsyncClient, pki: Pki, signed_request: BuildRequest, din_schema: etree.XMLSchema, app: Starlette
) -> None:
    request = signed_request("5GXM4DZ")
    response = await post(http, request)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    verified = verify(pki, response.content)
    assert "CN=din" in verified.signer
    envelope = verified.envelope
    body = envelope.find("soap:Body/din:GetPersonResponse", NS)
    din_schema.assertValid(body)
    assert body.findtext("din:person/din:fin", namespaces=NS) == "5GXM4DZ"

    for name in REQUEST_HEADERS:
        sent = request.find(f"soap:Header/xrd:{name}", NS)
        echoed = envelope.find(f"soap:Header/xrd:{name}", NS)
        assert echoed is not None, name
        assert data(echoed) == data(sent), name
    request_hash = envelope.find("soap:Header/xrd:requestHash", NS)
    assert request_hash.get("algorithmId") == SHA512_URI
    entry = last_entry(app)
    assert (entry.outcome, entry.operation, entry.client, entry.subject) == (
        Outcome.OK, "GetPerson", "emek-muqavilesi", "5G*****")


async def test_request_hash_is_the_hash_of_the_signed_envelope_the_client_built(
    http: httpx.AsyncClient, pki: Pki, signed_request: BuildRequest
) -> None:
    """The hub computes message_hash on the element it signed and sent; ours must agree."""
    request = signed_request("7ABCDEF")
    response = await post(http, request)
    envelope = verify(pki, response.content).envelope
    assert envelope.findtext("soap:Header/xrd:requestHash", namespaces=NS) == message_hash(request)


async def test_same_fin_twice_gives_the_identical_person(
    http: httpx.AsyncClient, pki: Pki, signed_request: BuildRequest
) -> None:
    people = []
    for _ in range(2):
        response = await post(http, signed_request("2KLMN34"))
        people.append(data(verify(pki, response.content).envelope.find("soap:Body/din:GetPersonResponse", NS)))
    assert people[0] == people[1]


# --- business faults -----------------------------------------------------------------------------


async def test_fin_starting_with_zero_is_a_signed_person_not_found_fault(
    http: httpx.AsyncClient, pki: Pki, signed_request: BuildRequest, din_schema: etree.XMLSchema, app: Starlette
) -> None:
    request = signed_request("0ABCDEF")
    response = await post(http, request)

    assert response.status_code == 500
    envelope = verify(pki, response.content).envelope
    code, string, detail = fault(envelope)
    assert code == "soap:Client" and string
    assert detail.tag == f"{{{DIN}}}PersonNotFound"
    din_schema.assertValid(detail)
    assert detail.findtext("din:fin", namespaces=NS) == "0ABCDEF"
    assert envelope.findtext("soap:Header/xrd:requestHash", namespaces=NS) == message_hash(request)
    assert envelope.findtext("soap:Header/xrd:id", namespaces=NS) == request.findtext("soap:Header/xrd:id", namespaces=NS)
    assert last_entry(app).outcome is Outcome.NOT_FOUND
    assert last_entry(app).subject == "0A*****"


async def test_malformed_fin_is_a_signed_invalid_fin_fault(
    http: httpx.AsyncClient, pki: Pki, signed_request: BuildRequest, din_schema: etree.XMLSchema, app: Starlette
) -> None:
    response = await post(http, signed_request("ABC"))

    assert response.status_code == 500
    code, _, detail = fault(verify(pki, response.content).envelope)
    assert code == "soap:Client"
    assert detail.tag == f"{{{DIN}}}InvalidFin"
    din_schema.assertValid(detail)
    assert detail.findtext("din:reason", namespaces=NS)
    assert last_entry(app).outcome is Outcome.INVALID


# --- signatures ----------------------------------------------------------------------------------


async def assert_rejected(http: httpx.AsyncClient, pki: Pki, app: Starlette, body: etree._Element | bytes) -> str:
    response = await post(http, body)
    assert response.status_code == 500
    envelope = verify(pki, response.content).envelope  # rejections are signed too
    code, string, detail = fault(envelope)
    assert code == "soap:Client" and detail is None
    assert envelope.find("soap:Body/din:GetPersonResponse", NS) is None
    entry = last_entry(app)
    assert entry.outcome is Outcome.REJECTED and not entry.signature_ok
    assert entry.message_id is None and entry.subject is None  # nothing unverified is journaled
    return string


async def test_unsigned_request_is_rejected(
    http: httpx.AsyncClient, pki: Pki, app: Starlette, unsigned_request: BuildRequest
) -> None:
    string = await assert_rejected(http, pki, app, unsigned_request())
    assert string.startswith("signature rejected")
    assert last_entry(app).signature  # the reason


async def test_request_signed_by_a_source_instead_of_the_operator_is_rejected(
    http: httpx.AsyncClient, pki: Pki, app: Starlette, signed_request: BuildRequest
) -> None:
    string = await assert_rejected(http, pki, app, signed_request(signer=pki.identity("din")))
    assert string.startswith("signature rejected")


async def test_request_tampered_after_signing_is_rejected(
    http: httpx.AsyncClient, pki: Pki, app: Starlette, signed_request: BuildRequest
) -> None:
    body = etree.tostring(signed_request("5GXM4DZ"))
    tampered = body.replace(b">5GXM4DZ<", b">5GXM4DY<")
    assert tampered != body
    string = await assert_rejected(http, pki, app, tampered)
    assert string.startswith("signature rejected")


@pytest.mark.parametrize("doctype", [
    b'<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    b'<!DOCTYPE e [<!ENTITY a SYSTEM "file:///etc/passwd">]>',
])
async def test_doctype_and_entities_are_rejected_without_expansion(
    http: httpx.AsyncClient, pki: Pki, app: Starlette, doctype: bytes
) -> None:
    body = (b'<?xml version="1.0"?>' + doctype
            + f'<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:din="{DIN}"><soap:Body>'
              f'<din:GetPerson><din:fin>&b;&a;</din:fin></din:GetPerson></soap:Body></soap:Envelope>'.encode())
    string = await assert_rejected(http, pki, app, body)
    assert "DTD" in string
    response = await post(http, body)
    assert b"aaaaaaaaaa" not in response.content and b"root:" not in response.content


async def test_oversized_body_is_rejected_before_parsing(http: httpx.AsyncClient, pki: Pki, app: Starlette) -> None:
    string = await assert_rejected(http, pki, app, b"<a>" + b"x" * MAX_XML_BYTES + b"</a>")
    assert "larger than" in string


# --- contract checks on the verified envelope ----------------------------------------------------


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
    etree.SubElement(envelope.find("soap:Body/din:GetPerson", NS), f"{{{DIN}}}extra")


def _other_operation(envelope: etree._Element) -> None:
    body = envelope.find("soap:Body", NS)
    body.remove(body[0])
    etree.SubElement(etree.SubElement(body, f"{{{DIN}}}PersonNotFound"), f"{{{DIN}}}fin").text = "1234567"
    envelope.find("soap:Header/xrd:service/id:serviceCode", NS).text = "PersonNotFound"


@pytest.mark.parametrize(("mutate", "expected"), [
    (_remove("soap:Header/xrd:issue"), "xrd:issue must appear once"),
    (_remove("soap:Header/xrd:client"), "xrd:client must appear once"),
    (_duplicate("soap:Header/xrd:id"), "xrd:id must appear once"),
    (_text("soap:Header/xrd:protocolVersion", "3.1"), "protocolVersion"),
    (_text("soap:Header/xrd:userId", ""), "userId"),
    (_text("soap:Header/xrd:service/id:memberCode", "vergiler"), "memberCode"),
    (_text("soap:Header/xrd:service/id:serviceCode", "GetVehicles"), "serviceCode"),
    (_attr("soap:Header/xrd:client", f"{{{ID_NS}}}objectType", "SERVICE"), "SUBSYSTEM"),
    (_remove("soap:Header/xrd:service/id:xRoadInstance"), "header xrd:service is invalid"),
    (_extra_body_child, "body is invalid"),
    (_other_operation, "no operation 'PersonNotFound'"),
], ids=["no-issue", "no-client", "two-ids", "protocol", "no-user", "member", "service-code", "client-type",
        "service-invalid", "body-invalid", "unknown-operation"])
async def test_contract_violations_are_signed_client_faults(
    http: httpx.AsyncClient, pki: Pki, app: Starlette, unsigned_request: BuildRequest,
    mutate: Callable[[etree._Element], None], expected: str,
) -> None:
    envelope = unsigned_request("5GXM4DZ")
    mutate(envelope)
    response = await post(http, EnvelopeSigner(pki.operator()).sign(envelope))

    assert response.status_code == 500
    code, string, _ = fault(verify(pki, response.content).envelope)
    assert code == "soap:Client"
    assert expected in string
    entry = last_entry(app)
    assert entry.outcome is Outcome.INVALID and entry.signature_ok


async def test_a_simulator_bug_is_a_signed_server_fault(
    http: httpx.AsyncClient, pki: Pki, app: Starlette, signed_request: BuildRequest
) -> None:
    def broken(request: etree._Element) -> etree._Element:
        raise RuntimeError("bug")

    simulator = app.state.simulator
    source = simulator.sources["din"]
    responder = Responder("din", DIN, (Operation("GetPerson", broken),))
    simulator.sources["din"] = dataclasses.replace(source, responder=responder)

    response = await post(http, signed_request())
    assert response.status_code == 500
    code, string, _ = fault(verify(pki, response.content).envelope)
    assert code == "soap:Server" and "bug" not in string
    assert last_entry(app).outcome is Outcome.ERROR


async def test_unknown_system_is_404(http: httpx.AsyncClient, signed_request: BuildRequest) -> None:
    assert (await http.post("/vergiler", content=etree.tostring(signed_request()))).status_code == 404
    assert (await http.get("/vergiler?wsdl")).status_code == 404
    assert (await http.get("/nothing.xsd")).status_code == 404


# --- the contract over HTTP ----------------------------------------------------------------------


async def test_wsdl_points_at_the_callers_base_url(http: httpx.AsyncClient) -> None:
    response = await http.get("/din?wsdl")
    assert response.status_code == 200
    wsdl = etree.fromstring(response.content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == "http://sim/din"
    for name in ("din.xsd", "xroad.xsd", "identifiers.xsd"):
        schema = await http.get(f"/{name}")
        assert schema.status_code == 200
        assert etree.fromstring(schema.content).tag == "{http://www.w3.org/2001/XMLSchema}schema"
    assert (await http.get("/din")).status_code == 400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_server(pki: Pki) -> Iterator[str]:
    """The app under uvicorn on a free 127.0.0.1 port, in a thread (zeep's transport is blocking)."""
    port = _free_port()
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


def test_zeep_loads_the_wsdl_over_http_and_calls_the_real_server(live_server: str, pki: Pki) -> None:
    from .conftest import soap_headers

    client = zeep.Client(f"{live_server}/din?wsdl", plugins=[SignAsOperator(EnvelopeSigner(pki.operator()))])
    port = client.wsdl.services["PersonRegistryService"].ports["PersonRegistrySoap"]
    assert port.binding_options["address"] == f"{live_server}/din"

    result = client.service.GetPerson(fin="5GXM4DZ", _soapheaders=soap_headers())
    assert result.body.person.fin == "5GXM4DZ"
    assert result.header.protocolVersion == "4.0"
    with pytest.raises(zeep.exceptions.Fault) as raised:
        client.service.GetPerson(fin="0ABCDEF", _soapheaders=soap_headers())
    assert raised.value.code.endswith("Client")


# --- the journal ---------------------------------------------------------------------------------


async def test_journal_lists_what_was_received_and_delete_clears_it(
    http: httpx.AsyncClient, app: Starlette, signed_request: BuildRequest, unsigned_request: BuildRequest
) -> None:
    await post(http, signed_request("5GXM4DZ", userId="AZ7777777"))
    await post(http, signed_request("0ABCDEF"))
    await post(http, unsigned_request())

    entries = (await http.get("/_admin/journal", params={"system": "din"})).json()["entries"]
    assert [e["outcome"] for e in entries] == ["ok", "not_found", "rejected"]
    first = entries[0]
    assert first["system"] == "din" and first["operation"] == "GetPerson"
    assert first["user_id"] == "AZ7777777" and first["client"] == "emek-muqavilesi"
    assert first["subject"] == "5G*****" and first["message_id"]
    assert "CN=meis-operator" in first["signature"] and first["signature_ok"] is True
    assert first["time"]
    assert "5GXM4DZ" not in (await http.get("/_admin/journal")).text
    assert (await http.get("/_admin/journal", params={"system": "vergiler"})).json()["entries"] == []
    assert len(app.state.journal) == 3

    assert (await http.delete("/_admin/journal")).status_code == 204
    assert (await http.get("/_admin/journal")).json()["entries"] == []


def test_journal_is_bounded() -> None:
    journal = Journal(capacity=3)
    for n in range(5):
        journal.record(Entry("din", Outcome.OK, "CN=x", True, message_id=str(n)))
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
