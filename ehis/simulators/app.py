"""The ASGI app that plays the source systems: `POST /{name}` is each simulated endpoint's SOAP
service (ehis.simulators.provider does the SOAP), plus its contract and an admin API.

Faults on demand (`ehis.simulators.faults`): a `FaultBoard` in `app.state.faults` decides per
request whether to answer late, badly or not at all; the request is still parsed, verified and
journaled (with the fault applied in `Entry.fault`). With no rule set the board is not consulted.

Routes: `GET /{name}?wsdl` (its imports point back here), `GET /{name}/{file}` (a source's own
schema), `GET /contracts/schemas/{file}` (the shared ones), `POST /{name}`,
`GET|DELETE /_admin/journal` (optional `?system=`), `GET|POST|DELETE /_admin/faults`,
`DELETE /_admin/faults/{id}`, `GET|POST|DELETE /_admin/events`, `GET /_admin/health`,
`GET /pki/ca.crl` (the test CA's CRL, the distribution point its certificates name).

Events (`ehis.simulators.events`): `POST /_admin/events` makes one happen in the world
(`{"kind": "edliyye.death", "params": {"fin": ...}}`), `GET` lists every source's feed (with
the delivery of pushed events), `DELETE` resets the feeds and the world's overlay. With a
`hub_events_url`, a pusher (`ehis.simulators.events_push`) sends the pushing sources' feeds to
the hub; with an `event_rate`, random events happen on their own.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import ssl
import struct
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import uvicorn
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ehis.contracts import contract_dir
from ehis.contracts.provider import CONTENT_TYPE, read_bounded
from ehis.events.wire import PUSH, Ministry
from ehis.security.pki import CRL_PATH, TLS_SERVER, Pki
from ehis.security.xml import MAX_XML_BYTES
from ehis.simulators.events import EventRate, InvalidEvent, emit, listing
from ehis.simulators.events_push import Pusher, push_sources
from ehis.simulators.faults import (
    ConnectionReset,
    FaultBoard,
    FaultKind,
    FaultRule,
    InvalidFaults,
    parse_rules,
)
from ehis.simulators.journal import Journal
from ehis.simulators.provider import Provider, SimulatedSource
from ehis.simulators.tsa import tsa_endpoint
from ehis.simulators.world import world


class BodyTooLarge(Exception):
    pass


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
    hub_events_url: str | None = None,
    ministry: Ministry | None = None,
    event_rate: float = 0.0,
    push_backoff: tuple[float, float] = (0.2, 10.0),
) -> Starlette:
    """The simulators of every source with a responder; keys and contracts load here, once.

    `faults`: rules to start with, or a board to share (`app.state.faults`); `rng` seeds the
    board's dice. Rules naming a source or operation that is not simulated are refused.
    `hub_events_url`: where the pushing sources push their events (none: they are only listed);
    `event_rate`: random events per minute; `push_backoff`: the pusher's first and longest wait
    between attempts. `stop_events(app)` stops the threads these start.
    """
    simulator = Provider(pki, journal if journal is not None else Journal())
    board = faults if isinstance(faults, FaultBoard) else FaultBoard(rng=rng)
    if rng is not None:
        board.rng = rng
    board.restrict_to(known_operations(simulator))
    if faults is not None and not isinstance(faults, FaultBoard):
        board.add(faults)
    simulator.prepare(board.rules())
    connections = Connections()
    shared = _contract_files(contract_dir())

    async def soap(request: Request) -> Response:
        source = simulator.sources.get(request.path_params["system"])
        if source is None:
            return PlainTextResponse("no such source system", status_code=404)
        active = board if board.active else None
        try:
            body = await _read_body(request, MAX_XML_BYTES)
        except BodyTooLarge:
            reason = f"the body is larger than {MAX_XML_BYTES} bytes"
            reply = simulator.reject(source, b"", None, f"request rejected: {reason}", reason, active)
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
            return PlainTextResponse(f"GET /{source.name}?wsdl serves the contract; SOAP calls are POST",
                                     status_code=400)
        return Response(wsdl_at(source, str(request.base_url)), media_type=CONTENT_TYPE)

    async def source_file(request: Request) -> Response:
        source = simulator.sources.get(request.path_params["system"])
        files = _contract_files(source.source.wsdl.parent) if source is not None else {}
        content = files.get(request.path_params["file"])
        if content is None:
            return PlainTextResponse("no such contract file", status_code=404)
        return Response(content, media_type=CONTENT_TYPE)

    async def shared_file(request: Request) -> Response:
        content = shared.get(request.path_params["file"])
        if content is None:
            return PlainTextResponse("no such contract file", status_code=404)
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

    pusher = None
    if hub_events_url:
        pusher = Pusher(simulator, board, world(), hub_events_url, ministry or Ministry(),
                        backoff_min=push_backoff[0], backoff_max=push_backoff[1]).start()
    rate = EventRate(world(), event_rate, rng=rng).start() if event_rate > 0 else None

    def delivery(change: Any) -> dict[str, Any]:
        return pusher.delivery(change).as_json() if pusher is not None else {"state": "not pushed (no hub_events_url)"}

    async def events_get(request: Request) -> Response:
        return JSONResponse(listing(world(), delivery))

    async def events_post(request: Request) -> Response:
        try:
            data = json.loads(await _read_body(request, _ADMIN_BODY_LIMIT))
        except (BodyTooLarge, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or not isinstance(
                data.get("params", {}), dict):
            return JSONResponse({"error": 'the body is {"kind": "<system>.<kind>", "params": {...}}'}, status_code=400)
        try:
            made = await asyncio.to_thread(emit, world(), data["kind"], data.get("params") or {}, rng=rng)
        except InvalidEvent as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        shown = listing(world(), delivery)["sources"]
        ids = {c.id for c in made}
        events = [e for feed in shown.values() for e in feed["events"] if e["id"] in ids]
        return JSONResponse({"events": sorted(events, key=lambda e: [c.id for c in made].index(e["id"]))},
                            status_code=201)

    async def events_delete(request: Request) -> Response:
        world().reset_overlay()
        if pusher is not None:
            pusher.forget()
        return Response(status_code=204)

    stamper, tsa = tsa_endpoint(pki)  # the RFC 3161 time-stamping authority of the exchange log's checkpoints

    async def crl(request: Request) -> Response:
        """The test CA's CRL, read at each request: `ehis pki revoke` re-issues it under a running simulator."""
        try:
            content = pki.crl_file.read_bytes()
        except OSError:
            return PlainTextResponse("this PKI has no CRL", status_code=404)
        return Response(content, media_type="application/pkix-crl", headers={"Cache-Control": "no-cache"})

    app = Starlette(routes=[
        Route("/tsa", tsa, methods=["POST"]),
        Route("/_admin/health", health, methods=["GET"]),
        Route("/_admin/journal", journal_get, methods=["GET"]),
        Route("/_admin/journal", journal_delete, methods=["DELETE"]),
        Route("/_admin/faults", faults_get, methods=["GET"]),
        Route("/_admin/faults", faults_post, methods=["POST"]),
        Route("/_admin/faults", faults_delete, methods=["DELETE"]),
        Route("/_admin/faults/{id}", fault_delete, methods=["DELETE"]),
        Route("/_admin/events", events_get, methods=["GET"]),
        Route("/_admin/events", events_post, methods=["POST"]),
        Route("/_admin/events", events_delete, methods=["DELETE"]),
        Route(CRL_PATH, crl, methods=["GET"]),
        Route("/contracts/schemas/{file}", shared_file, methods=["GET"]),
        Route("/{system}/{file}", source_file, methods=["GET"]),
        Route("/{system}", wsdl, methods=["GET"]),
        Route("/{system}", soap, methods=["POST"]),
    ])
    app.state.journal = simulator.journal
    app.state.tsa = stamper
    app.state.simulator = simulator
    app.state.faults = board
    app.state.connections = connections
    app.state.pusher = pusher
    app.state.event_rate = rate
    return app


def stop_events(app: Starlette) -> None:
    """Stop the pusher and the event rate of an app of `create_app` (threads: they outlive no test)."""
    for running in (app.state.pusher, app.state.event_rate):
        if running is not None:
            running.close()


def known_operations(provider: Provider) -> dict[str, frozenset[str]]:
    """What fault rules may name: every source and every endpoint, with their operations (and
    `PushEvents` for the sources that push: faults on demand apply to their pushes too)."""
    known: dict[str, frozenset[str]] = {}
    pushing = set(push_sources())
    for name, sim in provider.sources.items():
        operations = sim.responder.operation_names | ({PUSH} if sim.system in pushing else set())
        known[name] = operations
        known[sim.system] = known.get(sim.system, frozenset()) | operations
    return known


_SOAP_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"
_LOCATIONS = ("location", "schemaLocation")


def _contract_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.suffix in (".xsd", ".wsdl")}


def wsdl_at(sim: SimulatedSource, base_url: str) -> bytes:
    """The source's WSDL as a client that reached us at `base_url` needs it: its soap:address
    pointing here, and its imports as absolute URLs of this app (`/<name>/<file>`, whose own
    relative imports then resolve to `/contracts/schemas/...`)."""
    wsdl = etree.parse(str(sim.source.wsdl)).getroot()
    here = f"{base_url.rstrip('/')}/{sim.name}/"
    for address in wsdl.iter(_SOAP_ADDRESS):
        address.set("location", here.rstrip("/"))
    for element in wsdl.iter():
        for attribute in _LOCATIONS:
            value = element.get(attribute)
            if value is not None:
                element.set(attribute, urljoin(here, value))
    return etree.tostring(wsdl, xml_declaration=True, encoding="utf-8")


def tls_options(pki: Pki, *, require_client_cert: bool = False) -> dict[str, Any]:
    """uvicorn's options to serve HTTPS with the test PKI's server certificate (localhost,
    127.0.0.1, ::1); `require_client_cert`: only clients with a certificate from its CA (mutual TLS)."""
    cert, key = pki.tls_files(TLS_SERVER)
    options: dict[str, Any] = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    if require_client_cert:
        options |= {"ssl_ca_certs": str(pki.ca_file), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options


def make_server(app: Starlette, host: str, port: int, **options: Any) -> uvicorn.Server:
    """A uvicorn server for an app of `create_app` whose `reset` faults reset real connections
    (`tls_options(pki)` among `options` serves HTTPS)."""
    options.setdefault("access_log", False)
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, http=app.state.connections.protocol(), **options))


def serve(
    host: str,
    port: int,
    pki: Pki,
    *,
    faults: list[FaultRule] | FaultBoard | None = None,
    log_level: str = "info",
    tls: bool = False,
    require_client_cert: bool = False,
    hub_events_url: str | None = None,
    ministry: Ministry | None = None,
    event_rate: float = 0.0,
) -> None:
    """Run the simulators with uvicorn until interrupted (`ehis simulators serve [--tls [--mtls]]`),
    pushing events to `hub_events_url` and making `event_rate` random ones a minute."""
    app = create_app(pki, faults=faults, hub_events_url=hub_events_url, ministry=ministry, event_rate=event_rate)
    secure = tls_options(pki, require_client_cert=require_client_cert) if tls or require_client_cert else {}
    # no access log: the journal records every request, and a line per request costs throughput
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                    http=app.state.connections.protocol(), **secure)
    finally:
        stop_events(app)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing to buffer more than `limit` bytes."""
    body = await read_bounded(request, limit)
    if body is None:
        raise BodyTooLarge
    return body
