"""What the contract tests share: an adapter for any built source, a man in the middle, and the
simulators under a real uvicorn server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from lxml import etree
from pydantic import BaseModel

from ehis.adapters.soap import Caller, SoapAdapter
from ehis.config import SourceSettings
from ehis.contracts import xroad
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.simulators import create_app, make_server
from ehis.sources import source
from ehis.sources.spec import Service
from ehis.testing import free_port

CALLER = Caller(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")


def make_adapter(pki: Pki, code: str, transport: httpx.AsyncBaseTransport | None = None,
                 base_url: str = "http://sim", name: str | None = None,
                 **endpoint: Any) -> tuple[SoapAdapter, httpx.AsyncClient]:
    """The hub's adapter for source `code`'s endpoint `name` (default: the source's only one),
    reaching the simulators at `base_url` (or through `transport`)."""
    name = name or code
    http = httpx.AsyncClient(transport=transport)
    adapter = SoapAdapter(source(code), name=name, url=f"{base_url}/{name}", endpoint=SourceSettings(**endpoint),
                          http=http, signer=EnvelopeSigner(pki.operator()), verifier=EnvelopeVerifier(pki.ca_file))
    return adapter, http


def endpoints() -> list[tuple[str, str]]:
    """Every simulated endpoint as (source code, endpoint name): each provider of a source that has several."""
    from ehis.sources import sources

    return [(code, name) for code, src in sources().items() for name in (src.providers or [code])]


def example(code: str, endpoint: str, service: Service) -> dict[str, Any]:
    """Params the endpoint answers with a record: its simulator's `example_for(endpoint)` where it
    has one (an authority answers only for its own districts), else the service's example."""
    import importlib

    module = importlib.import_module(f"ehis.sources.{code}.simulator")
    chosen = getattr(module, "example_for", None)
    return dict(chosen(endpoint)) if chosen is not None else dict(service.example)


def params(service: Service, values: dict[str, Any] | None = None) -> BaseModel:
    return service.params.model_validate(values if values is not None else service.example)


class Rewriting(httpx.AsyncBaseTransport):
    """Passes requests to `inner` and lets a test rewrite the response: a man in the middle."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rewrite: Callable[[httpx.Response, bytes], httpx.Response]):
        self.inner, self.rewrite = inner, rewrite
        self.requests: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.content)
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        return self.rewrite(response, body)


def replaced(response: httpx.Response, content: bytes, **headers: str) -> httpx.Response:
    """`response` with another body, streamed as a server's would be (not decoded in advance)."""
    kept = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")}
    return httpx.Response(response.status_code, headers={**kept, **headers}, stream=httpx.ByteStream(content))


def unsigned(body: bytes) -> etree._Element:
    """The answer with its signature taken out, for a test to alter or re-sign."""
    doc = etree.fromstring(body)
    header = doc.find(xroad.HEADER)
    header.remove(header.find(xroad.SIGNATURE))
    return doc


class Live:
    """The simulators under uvicorn (a real socket), with their admin API at hand."""

    def __init__(self, url: str, server: uvicorn.Server):
        self.url, self.server = url, server
        self.admin = httpx.Client(base_url=url, timeout=5)

    def add(self, **rule: Any) -> dict[str, Any]:
        response = self.admin.post("/_admin/faults", json=rule)
        assert response.status_code == 201, response.text
        return response.json()["faults"][0]

    def rule(self, rule_id: str) -> dict[str, Any]:
        return next(r for r in self.admin.get("/_admin/faults").json()["faults"] if r["id"] == rule_id)

    def journal(self, system: str) -> list[dict[str, Any]]:
        return self.admin.get("/_admin/journal", params={"system": system}).json()["entries"]

    def clear(self) -> None:
        self.admin.delete("/_admin/faults").raise_for_status()
        self.admin.delete("/_admin/journal").raise_for_status()

    def busy(self) -> int:
        """Requests uvicorn is still running (a hung handler would stay here)."""
        return len(self.server.server_state.tasks)


@contextmanager
def live_simulators(pki: Pki) -> Iterator[Live]:
    """`create_app(pki)` under uvicorn on a free port, in a thread."""
    port = free_port()
    server = make_server(create_app(pki), "127.0.0.1", port, log_level="warning", lifespan="off",
                         timeout_graceful_shutdown=5)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    sim = Live(f"http://127.0.0.1:{port}", server)
    try:
        yield sim
    finally:
        sim.admin.close()
        server.should_exit = True
        thread.join(timeout=10)
