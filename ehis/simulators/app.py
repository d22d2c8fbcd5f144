"""The ASGI app that plays the source systems: `POST /{system}` is each source's SOAP endpoint.

Everything costly is done once in `create_app`: keys loaded (one `EnvelopeSigner` per source,
one `EnvelopeVerifier` on the test CA), WSDLs parsed, schemas compiled. Per request the app
parses the body with the hardened parser, verifies that the ministry's operator signed it, and
from then on reads only the verified envelope. Every answer, faults included, is signed by the
source, like the real services are required to do.

Routes: `GET /{system}?wsdl`, `GET /{name}.xsd`, `POST /{system}`, `GET|DELETE /_admin/journal`
(optional `?system=`), `GET /_admin/health`.
"""

from __future__ import annotations

import logging
from copy import deepcopy
from dataclasses import dataclass

import uvicorn
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ehis.contracts import contract_dir, wsdl_path
from ehis.errors import SignatureInvalid
from ehis.identifiers import mask
from ehis.security.pki import OPERATOR_CN, Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier, message_hash
from ehis.security.xml import MAX_XML_BYTES, UnsafeXml, parse_untrusted
from ehis.simulators.journal import Entry, Journal, Outcome
from ehis.simulators.responders import Responder, responders
from ehis.simulators.soap import (
    CONTENT_TYPE,
    SoapFault,
    SoapRequest,
    contract_schema,
    echoable_headers,
    fault_envelope,
    parse_request,
    response_envelope,
    serialize,
)

log = logging.getLogger(__name__)

_SOAP_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Source:
    """One simulated source with everything it needs per request, prepared once."""

    system: str
    responder: Responder
    signer: EnvelopeSigner
    schema: etree.XMLSchema
    wsdl: etree._Element

    def wsdl_at(self, base_url: str) -> bytes:
        """The WSDL with its soap:address pointing where the client reached us."""
        wsdl = deepcopy(self.wsdl)
        for address in wsdl.iter(_SOAP_ADDRESS):
            address.set("location", f"{base_url.rstrip('/')}/{self.system}")
        return etree.tostring(wsdl, xml_declaration=True, encoding="utf-8")


class Simulator:
    """The request pipeline, independent of HTTP: body bytes in, signed answer and status out."""

    def __init__(self, pki: Pki, journal: Journal, registry: dict[str, Responder] | None = None):
        self.journal = journal
        self.verifier = EnvelopeVerifier(pki.ca_file)
        self.sources: dict[str, Source] = {}
        for system, responder in (registry if registry is not None else responders()).items():
            self.sources[system] = Source(
                system=system,
                responder=responder,
                signer=EnvelopeSigner(pki.identity(system)),
                schema=contract_schema(system),
                wsdl=etree.parse(str(wsdl_path(system))).getroot(),
            )

    def handle(self, source: Source, body: bytes) -> tuple[bytes, int]:
        try:
            root = parse_untrusted(body)
        except UnsafeXml as exc:
            return self.reject(source, f"request rejected: {exc}", str(exc))
        try:
            verified = self.verifier.verify(root, expected_signer=OPERATOR_CN)
        except SignatureInvalid as exc:
            return self.reject(source, f"signature rejected: {exc.message}", exc.message)
        # The hash of the envelope as received (signature included); exclusive c14n makes it
        # equal to the hash the sender computes on the element it signed and sent.
        request_hash = message_hash(root)
        request: SoapRequest | None = None
        fault: SoapFault | None = None
        try:
            request = parse_request(verified.envelope, system=source.system, schema=source.schema,
                                    operations=source.responder.operation_names)
            operation = source.responder.operation(request.operation)
            if operation is None:  # parse_request checked the name; this is a defect
                raise RuntimeError(f"no handler for {request.operation}")
            payload = operation.handle(request.payload)
        except SoapFault as exc:
            fault = exc
        except Exception:  # every failure must still become a signed fault
            log.exception("simulator %s failed on a request", source.system)
            fault = SoapFault("internal error in the simulator", code="Server", outcome=Outcome.ERROR)
        if fault is None and request is not None:
            envelope = response_envelope(request.headers.elements, request_hash, payload)
            status, outcome, detail = 200, Outcome.OK, None
        else:
            assert fault is not None
            headers = request.headers.elements if request is not None else echoable_headers(verified.envelope)
            envelope = fault_envelope(fault, headers, request_hash)
            status, outcome, detail = 500, fault.outcome, fault.string
        self.journal.record(_entry(source, request, outcome, verified.signer, detail))
        return serialize(source.signer.sign(envelope)), status

    def reject(self, source: Source, string: str, reason: str) -> tuple[bytes, int]:
        fault = SoapFault(string, outcome=Outcome.REJECTED)
        self.journal.record(Entry(source.system, Outcome.REJECTED, reason, False, detail=string))
        return serialize(source.signer.sign(fault_envelope(fault))), 500


def _entry(source: Source, request: SoapRequest | None, outcome: Outcome, signer: str, detail: str | None) -> Entry:
    if request is None:
        return Entry(source.system, outcome, signer, True, detail=detail)
    operation = source.responder.operation(request.operation)
    subject = None
    if operation is not None and operation.subject:
        value = request.payload.findtext(f"{{{etree.QName(request.payload).namespace}}}{operation.subject}")
        subject = mask(value.strip()) if value else None
    h = request.headers
    return Entry(source.system, outcome, signer, True, operation=request.operation, message_id=h.message_id,
                 client=h.client_subsystem, user_id=h.user_id, subject=subject, detail=detail)


def create_app(pki: Pki, *, journal: Journal | None = None) -> Starlette:
    """The simulators of every source with a responder; keys and contracts load here, once."""
    simulator = Simulator(pki, journal if journal is not None else Journal())
    schemas = {p.name: p.read_bytes() for p in contract_dir().glob("*.xsd")}

    async def soap(request: Request) -> Response:
        source = simulator.sources.get(request.path_params["system"])
        if source is None:
            return PlainTextResponse("no such source system", status_code=404)
        try:
            body = await _read_body(request, MAX_XML_BYTES)
        except BodyTooLarge:
            reason = f"the body is larger than {MAX_XML_BYTES} bytes"
            content, status = simulator.reject(source, f"request rejected: {reason}", reason)
        else:
            content, status = simulator.handle(source, body)
        return Response(content, status_code=status, media_type=CONTENT_TYPE)

    async def wsdl(request: Request) -> Response:
        source = simulator.sources.get(request.path_params["system"])
        if source is None:
            return PlainTextResponse("no such source system", status_code=404)
        if not any(key.lower() == "wsdl" for key in request.query_params):
            return PlainTextResponse(f"GET /{source.system}?wsdl serves the contract; SOAP calls are POST",
                                     status_code=400)
        return Response(source.wsdl_at(str(request.base_url)), media_type=CONTENT_TYPE)

    async def schema(request: Request) -> Response:
        content = schemas.get(f"{request.path_params['name']}.xsd")
        if content is None:
            return PlainTextResponse("no such schema", status_code=404)
        return Response(content, media_type=CONTENT_TYPE)

    async def journal_get(request: Request) -> Response:
        entries = simulator.journal.entries(request.query_params.get("system"))
        return JSONResponse({"capacity": simulator.journal.capacity, "entries": [e.as_json() for e in entries]})

    async def journal_delete(request: Request) -> Response:
        simulator.journal.clear()
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[
        Route("/_admin/health", health, methods=["GET"]),
        Route("/_admin/journal", journal_get, methods=["GET"]),
        Route("/_admin/journal", journal_delete, methods=["DELETE"]),
        Route("/{name}.xsd", schema, methods=["GET"]),
        Route("/{system}", wsdl, methods=["GET"]),
        Route("/{system}", soap, methods=["POST"]),
    ])
    app.state.journal = simulator.journal
    app.state.simulator = simulator
    return app


def serve(host: str, port: int, pki: Pki, *, log_level: str = "info") -> None:
    """Run the simulators with uvicorn until interrupted (`ehis simulators serve`)."""
    # no access log: the journal records every request, and a line per request costs throughput
    uvicorn.run(create_app(pki), host=host, port=port, log_level=log_level, access_log=False)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing to buffer more than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
