"""The source call on the network (aiohttp's `SourceClient`): the same answers, bounds and typed
errors as through httpx, from a real socket.

A small HTTP/1.1 server in the test's loop asks the simulators (in process) for the genuine
answer to the request it received, then sends it as the case says: as it is, gzip-compressed,
bloated, as a gzip bomb, in an encoding the hub does not read, too late, as a redirect, or cut
off half way.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import httpx
import pytest

from ehis.adapters.soap import SoapAdapter
from ehis.adapters.transfer import SourceClient, post
from ehis.bootstrap import source_client
from ehis.config import SourcePolicy, SourceSettings
from ehis.errors import EhisError, SourceFault, SourceTimeout, SourceUnavailable
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.simulators import create_app
from ehis.sources import source
from ehis.testing import free_port
from tests.contract.support import CALLER


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split()[1]
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return path, await reader.readexactly(length)


def _response(status: int, body: bytes, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def shaped(pki: Pki) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """(base URL, {"shape": ...}): the server answers every request in the shape set last."""
    case = {"shape": "genuine"}
    simulators = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(pki)), base_url="http://sim")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                path, body = await _read_request(reader)
                genuine = await simulators.post(path, content=body, headers={"Content-Type": "text/xml"})
                answer, shape = genuine.content, case["shape"]
                xml = {"Content_Type": "text/xml; charset=utf-8"}
                if shape == "genuine":
                    writer.write(_response(genuine.status_code, answer, **xml))
                elif shape == "gzip":
                    writer.write(_response(genuine.status_code, gzip.compress(answer), Content_Encoding="gzip", **xml))
                elif shape == "too large":
                    writer.write(_response(200, answer + b" " * (3 * 1024 * 1024), **xml))
                elif shape == "gzip bomb":
                    bomb = gzip.compress(b"<a>" + b" " * (50 * 1024 * 1024) + b"</a>")
                    writer.write(_response(200, bomb, Content_Encoding="gzip", **xml))
                elif shape == "brotli":
                    writer.write(_response(200, answer, Content_Encoding="br", **xml))
                elif shape == "slow":
                    await asyncio.sleep(3)
                    writer.write(_response(200, answer, **xml))
                elif shape == "redirect":
                    writer.write(_response(302, b"", Location="http://127.0.0.1:1/elsewhere"))
                elif shape == "cut off":
                    writer.write(_response(200, answer, **xml)[: len(answer) // 2])
                    await writer.drain()
                    writer.close()
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, simulators:
        yield f"http://127.0.0.1:{port}", case


async def _ask(pki: Pki, base_url: str, budget: float = 5.0, **settings: str):
    spec = source("din")
    service = spec.services[0]
    http = source_client(SourcePolicy())
    assert isinstance(http, SourceClient)  # on the network: aiohttp's client, not httpx's
    adapter = SoapAdapter(spec, name="din", url=f"{base_url}/din", endpoint=SourceSettings(**settings), http=http,
                          signer=EnvelopeSigner(pki.operator()), verifier=EnvelopeVerifier(pki.ca_file))
    async with http:
        return await adapter.call(service, service.params.model_validate(service.example), CALLER, budget)


@pytest.mark.parametrize("shape", ["genuine", "gzip"])
async def test_a_genuine_answer_is_verified_plain_or_compressed(pki: Pki, shaped, shape: str) -> None:
    url, case = shaped
    case["shape"] = shape
    answer = await _ask(pki, url)
    assert "CN=din," in answer.evidence.signer
    assert answer.body["person"]["fin"] == source("din").services[0].example["fin"]


@pytest.mark.parametrize(("shape", "error", "retryable"), [
    ("too large", SourceFault, False),
    ("gzip bomb", SourceFault, False),
    ("brotli", SourceFault, False),
    ("redirect", SourceFault, False),  # not followed: an HTTP answer that is not a SOAP message
    ("slow", SourceTimeout, True),
    ("cut off", SourceUnavailable, True),
])
async def test_hostile_answers_end_typed_and_bounded(pki: Pki, shaped, shape: str, error: type[EhisError],
                                                     retryable: bool) -> None:
    url, case = shaped
    case["shape"] = shape
    with pytest.raises(error) as raised:
        await _ask(pki, url, budget=1.0)
    assert raised.value.retryable is retryable


async def test_a_source_that_is_not_there_is_unavailable(pki: Pki) -> None:
    with pytest.raises(SourceUnavailable):
        await _ask(pki, f"http://127.0.0.1:{free_port()}")


def test_a_replaced_network_or_tracing_keeps_httpx() -> None:
    """Tests hand in ASGI transports; tracing needs httpx's instrumentation for the HTTP span."""
    assert isinstance(source_client(SourcePolicy(), httpx.MockTransport(lambda r: httpx.Response(200))),
                      httpx.AsyncClient)
    assert isinstance(source_client(SourcePolicy(), traced=True), httpx.AsyncClient)


@pytest.mark.parametrize("client_kind", ["aiohttp", "httpx (traced)"])
async def test_a_cookie_a_source_sets_is_never_sent_back(client_kind: str) -> None:
    """One connection pool serves every caller's requests to a source: a cookie set in the answer
    to one must not ride along on the next (another subsystem's) request."""
    heads: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = next(int(line.split(":", 1)[1]) for line in head.split("\r\n")
                              if line.lower().startswith("content-length:"))
                await reader.readexactly(length)
                heads.append(head)
                writer.write(_response(200, b"<x/>", Content_Type="text/xml", Set_Cookie="session=caller-one; Path=/"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    client = source_client(SourcePolicy(), traced=client_kind != "aiohttp")
    async with server, client:
        for _ in range(2):
            url, headers = f"http://localhost:{port}/din", {"Content-Type": "text/xml"}
            if isinstance(client, SourceClient):
                received = await client.post(url, b"<r/>", headers, timeout=5, connect=2, max_bytes=1024)
            else:
                received = await post(client, url, b"<r/>", headers, timeout=httpx.Timeout(5), max_bytes=1024)
            assert received.status == 200
    assert len(heads) == 2 and all("cookie:" not in h.lower() for h in heads), heads
