"""The ASGI app that plays the source systems: `POST /{system}` is each source's SOAP endpoint.

Everything costly is done once in `create_app`: keys loaded (one `EnvelopeSigner` per source,
one `EnvelopeVerifier` on the test CA), WSDLs parsed, schemas compiled. Per request the app
parses the body with the hardened parser, verifies that the ministry's operator signed it, and
from then on reads only the verified envelope. Every answer, faults included, is signed by the
source, like the real services are required to do.

Faults on demand (`ehis.simulators.faults`): a `FaultBoard` in `app.state.faults` decides per
request whether to answer late, badly or not at all; the request is still parsed, verified and
journaled (with the fault applied in `Entry.fault`). With no rule set the board is not consulted.

Routes: `GET /{system}?wsdl`, `GET /{name}.xsd`, `POST /{system}`, `GET|DELETE /_admin/journal`
(optional `?system=`), `GET|POST|DELETE /_admin/faults`, `DELETE /_admin/faults/{id}`,
`GET /_admin/health`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import struct
from collections.abc import Callable, Collection
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

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
from ehis.security.signing import SOAP_NS, EnvelopeSigner, EnvelopeVerifier, message_hash
from ehis.security.xml import MAX_XML_BYTES, UnsafeXml, parse_untrusted
from ehis.simulators.faults import (
    MALFORMED_BODY,
    NO_FAULT,
    PROXY_PAGES,
    SIMULATED_FAULT_STRING,
    ConnectionReset,
    Decision,
    FaultBoard,
    FaultKind,
    FaultRule,
    InvalidFaults,
    expired_identity,
    other_identity,
    parse_rules,
    tamper,
)
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


@dataclass(frozen=True)
class Reply:
    """What to send back for one request, and what to do first (wait) or instead (reset, hang)."""

    content: bytes
    status: int
    media_type: str = CONTENT_TYPE
    delay_s: float = 0.0
    action: FaultKind | None = None  # RESET or HANG: the content is never sent


class Simulator:
    """The request pipeline, independent of HTTP: body bytes in, signed answer and status out."""

    def __init__(self, pki: Pki, journal: Journal, registry: dict[str, Responder] | None = None):
        self.pki = pki
        self.journal = journal
        self.verifier = EnvelopeVerifier(pki.ca_file)
        self.sources: dict[str, Source] = {}
        self._impostors: dict[tuple[str, FaultKind], EnvelopeSigner] = {}
        for system, responder in (registry if registry is not None else responders()).items():
            self.sources[system] = Source(
                system=system,
                responder=responder,
                signer=EnvelopeSigner(pki.identity(system)),
                schema=contract_schema(system),
                wsdl=etree.parse(str(wsdl_path(system))).getroot(),
            )

    def handle(self, source: Source, body: bytes, board: FaultBoard | None = None) -> Reply:
        """The reply to one request; `board` (None when no fault rule is set) may damage it."""
        try:
            root = parse_untrusted(body)
        except UnsafeXml as exc:
            return self.reject(source, f"request rejected: {exc}", str(exc), board)
        try:
            verified = self.verifier.verify(root, expected_signer=OPERATOR_CN)
        except SignatureInvalid as exc:
            return self.reject(source, f"signature rejected: {exc.message}", exc.message, board)
        # The hash of the envelope as received (signature included); exclusive c14n makes it
        # equal to the hash the sender computes on the element it signed and sent.
        request_hash = message_hash(root)
        decision = board.pick(source.system, _operation_name(verified.envelope)) if board is not None else NO_FAULT
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
        headers = request.headers.elements if request is not None else echoable_headers(verified.envelope)
        if decision.failure is FaultKind.SOAP_FAULT:
            envelope, status = fault_envelope(_simulated_fault(), headers, request_hash), 500
        elif fault is None:
            envelope = response_envelope(headers, request_hash, payload)
            status = 200
        else:
            envelope = fault_envelope(fault, headers, request_hash)
            status = 500
        outcome, detail = (Outcome.OK, None) if fault is None else (fault.outcome, fault.string)
        self.journal.record(_entry(source, request, outcome, verified.signer, detail, decision.label))
        return self.deliver(source, envelope, status, decision)

    def reject(self, source: Source, string: str, reason: str, board: FaultBoard | None = None) -> Reply:
        """A signed Client fault for a request that cannot be trusted (only operation-less rules apply)."""
        decision = board.pick(source.system, None) if board is not None else NO_FAULT
        fault = (_simulated_fault() if decision.failure is FaultKind.SOAP_FAULT
                 else SoapFault(string, outcome=Outcome.REJECTED))
        self.journal.record(Entry(source.system, Outcome.REJECTED, reason, False, detail=string, fault=decision.label))
        return self.deliver(source, fault_envelope(fault), 500, decision)

    def deliver(self, source: Source, envelope: etree._Element, status: int, decision: Decision) -> Reply:
        """The answer signed by the source, unless `decision` says to damage or withhold it."""
        kind, delay = decision.failure, decision.delay_s
        if kind is None or kind is FaultKind.SOAP_FAULT:
            return Reply(serialize(source.signer.sign(envelope)), status, delay_s=delay)
        if kind in PROXY_PAGES:
            code, page = PROXY_PAGES[kind]
            return Reply(page, code, "text/html", delay)
        if kind is FaultKind.MALFORMED:
            return Reply(MALFORMED_BODY, 200, delay_s=delay)
        if kind is FaultKind.EMPTY:
            return Reply(b"", 200, delay_s=delay)
        if kind in (FaultKind.RESET, FaultKind.HANG):
            return Reply(b"", 0, delay_s=delay, action=kind)
        if kind is FaultKind.UNSIGNED:
            return Reply(serialize(envelope), status, delay_s=delay)
        if kind in (FaultKind.WRONG_SIGNER, FaultKind.EXPIRED_CERT):
            return Reply(serialize(self.impostor(source.system, kind).sign(envelope)), status, delay_s=delay)
        signed = source.signer.sign(envelope)
        if kind is FaultKind.BAD_SIGNATURE:
            return Reply(serialize(tamper(signed)), status, delay_s=delay)
        content = serialize(signed)  # TRUNCATED: a transfer cut off; 200, like a healthy answer that broke
        return Reply(content[: len(content) // 2], 200, delay_s=delay)

    def impostor(self, system: str, kind: FaultKind) -> EnvelopeSigner:
        """The signer of a `wrong_signer` or `expired_cert` answer from `system`, made once."""
        signer = self._impostors.get((system, kind))
        if signer is None:
            identity = (expired_identity(self.pki, system) if kind is FaultKind.EXPIRED_CERT
                        else other_identity(self.pki, system))
            signer = self._impostors[(system, kind)] = EnvelopeSigner(identity)
        return signer

    def prepare(self, rules: Collection[FaultRule]) -> None:
        """Make the impostor keys the rules need now, not while a request waits (RSA key generation)."""
        for rule in rules:
            if rule.kind in (FaultKind.WRONG_SIGNER, FaultKind.EXPIRED_CERT):
                for system in [rule.system] if rule.system is not None else list(self.sources):
                    self.impostor(system, rule.kind)


def _simulated_fault() -> SoapFault:
    return SoapFault(SIMULATED_FAULT_STRING, code="Server", outcome=Outcome.ERROR)


def _operation_name(envelope: etree._Element) -> str | None:
    """The local name of the body's element: the operation asked for, before any contract check."""
    body = envelope.find(f"{{{SOAP_NS}}}Body")
    child = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    return etree.QName(child).localname if child is not None else None


def _entry(source: Source, request: SoapRequest | None, outcome: Outcome, signer: str, detail: str | None,
           fault: str | None = None) -> Entry:
    if request is None:
        return Entry(source.system, outcome, signer, True, detail=detail, fault=fault)
    operation = source.responder.operation(request.operation)
    subject = None
    if operation is not None and operation.subject:
        value = request.payload.findtext(f"{{{etree.QName(request.payload).namespace}}}{operation.subject}")
        subject = mask(value.strip()) if value else None
    h = request.headers
    return Entry(source.system, outcome, signer, True, operation=request.operation, message_id=h.message_id,
                 client=h.client_subsystem, user_id=h.user_id, subject=subject, detail=detail, fault=fault)


class Connections:
    """The live connections of the uvicorn server running the app, so `reset` aborts the right one.

    uvicorn keeps them in `server_state.connections` (protocol objects with `.transport`);
    `protocol()` is an `http=` factory for uvicorn that hands that set over as connections are made.
    """

    def __init__(self) -> None:
        self._live: Collection[Any] | None = None

    def protocol(self) -> Callable[..., asyncio.Protocol]:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        def create(*, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                   _loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            self._live = server_state.connections
            return AutoHTTPProtocol(config=config, server_state=server_state,  # type: ignore[call-arg]
                                    app_state=app_state, _loop=_loop)

        return create

    def abort(self, client: Any) -> bool:
        """Reset (RST, not FIN) the connection `client` (the scope's address) talks on; False if not found."""
        if self._live is None or not client:
            return False
        wanted = (str(client[0]), int(client[1]))
        for protocol in list(self._live):
            transport = getattr(protocol, "transport", None)
            if transport is None or transport.is_closing():
                continue
            peer = transport.get_extra_info("peername")
            if not isinstance(peer, tuple) or (str(peer[0]), int(peer[1])) != wanted:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends RST and drops what is unsent
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            return True
        return False


HANG_CAP_S = 300.0
_ADMIN_BODY_LIMIT = 1 << 20


async def _reset(request: Request, connections: Connections) -> Response:
    """Reset the TCP connection; in process (no socket), raise what httpx raises for a reset."""
    if connections.abort(request.scope.get("client")):
        await asyncio.sleep(0)  # let the server see the connection lost: the reply below goes nowhere
        return Response(status_code=500)
    raise ConnectionReset()


async def _hang(request: Request, cap: float = HANG_CAP_S) -> Response:
    """Answer nothing until the client goes away (or `cap` seconds pass), without holding the loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap
    while loop.time() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.05)
    return PlainTextResponse("the simulator hung up", status_code=504)


def _invalid(exc: InvalidFaults) -> Response:
    field = exc.errors[0]["field"] if exc.errors else None
    return JSONResponse({"error": str(exc), "field": field, "errors": exc.errors}, status_code=400)


def create_app(
    pki: Pki,
    *,
    journal: Journal | None = None,
    faults: list[FaultRule] | FaultBoard | None = None,
    rng: random.Random | None = None,
) -> Starlette:
    """The simulators of every source with a responder; keys and contracts load here, once.

    `faults`: rules to start with, or a board to share (`app.state.faults`); `rng` seeds the
    board's dice. Rules naming a source or operation that is not simulated are refused.
    """
    simulator = Simulator(pki, journal if journal is not None else Journal())
    board = faults if isinstance(faults, FaultBoard) else FaultBoard(rng=rng)
    if rng is not None:
        board.rng = rng
    board.restrict_to({s: src.responder.operation_names for s, src in simulator.sources.items()})
    if faults is not None and not isinstance(faults, FaultBoard):
        board.add(faults)
    simulator.prepare(board.rules())
    connections = Connections()
    schemas = {p.name: p.read_bytes() for p in contract_dir().glob("*.xsd")}

    async def soap(request: Request) -> Response:
        source = simulator.sources.get(request.path_params["system"])
        if source is None:
            return PlainTextResponse("no such source system", status_code=404)
        active = board if board.active else None
        try:
            body = await _read_body(request, MAX_XML_BYTES)
        except BodyTooLarge:
            reason = f"the body is larger than {MAX_XML_BYTES} bytes"
            reply = simulator.reject(source, f"request rejected: {reason}", reason, active)
        else:
            reply = simulator.handle(source, body, active)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.action is FaultKind.RESET:
            return await _reset(request, connections)
        if reply.action is FaultKind.HANG:
            return await _hang(request)
        return Response(reply.content, status_code=reply.status, media_type=reply.media_type)

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

    async def faults_get(request: Request) -> Response:
        return JSONResponse({"faults": [r.model_dump(mode="json") for r in board.rules()]})

    async def faults_post(request: Request) -> Response:
        try:
            data = json.loads(await _read_body(request, _ADMIN_BODY_LIMIT))
        except (BodyTooLarge, ValueError):
            return _invalid(InvalidFaults([{"field": "body", "message": "must be a JSON rule or list of rules"}]))
        try:
            rules = parse_rules(data)
            added = board.add(rules if isinstance(data, list) else rules[0])
        except InvalidFaults as exc:
            return _invalid(exc)
        simulator.prepare(added)
        return JSONResponse({"faults": [r.model_dump(mode="json") for r in added]}, status_code=201)

    async def faults_delete(request: Request) -> Response:
        board.reset()
        return Response(status_code=204)

    async def fault_delete(request: Request) -> Response:
        rule_id = request.path_params["id"]
        if not board.remove(rule_id):
            return JSONResponse({"error": f"no fault rule {rule_id!r}"}, status_code=404)
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[
        Route("/_admin/health", health, methods=["GET"]),
        Route("/_admin/journal", journal_get, methods=["GET"]),
        Route("/_admin/journal", journal_delete, methods=["DELETE"]),
        Route("/_admin/faults", faults_get, methods=["GET"]),
        Route("/_admin/faults", faults_post, methods=["POST"]),
        Route("/_admin/faults", faults_delete, methods=["DELETE"]),
        Route("/_admin/faults/{id}", fault_delete, methods=["DELETE"]),
        Route("/{name}.xsd", schema, methods=["GET"]),
        Route("/{system}", wsdl, methods=["GET"]),
        Route("/{system}", soap, methods=["POST"]),
    ])
    app.state.journal = simulator.journal
    app.state.simulator = simulator
    app.state.faults = board
    app.state.connections = connections
    return app


def make_server(app: Starlette, host: str, port: int, **options: Any) -> uvicorn.Server:
    """A uvicorn server for an app of `create_app` whose `reset` faults reset real connections."""
    options.setdefault("access_log", False)
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, http=app.state.connections.protocol(), **options))


def serve(
    host: str,
    port: int,
    pki: Pki,
    *,
    faults: list[FaultRule] | FaultBoard | None = None,
    log_level: str = "info",
) -> None:
    """Run the simulators with uvicorn until interrupted (`ehis simulators serve`)."""
    app = create_app(pki, faults=faults)
    # no access log: the journal records every request, and a line per request costs throughput
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                http=app.state.connections.protocol())


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
