"""One HTTP exchange with a source, reading no more than a bound, compressed or not.

httpx would decompress a whole network chunk at once (a 64 KB gzip chunk can expand to tens
of megabytes) and `Response.aread` buffers whatever arrives, so the body is read raw here and
inflated with an output bound: a 50 MB answer, a gzip bomb and an endless stream all stop at
`max_bytes` of XML, before anything is parsed. The time bound is the caller's (the guard
holds every attempt to its budget).

Two clients carry the exchange. `SourceClient` (aiohttp) is what a worker uses on the network:
measured on this project's 2-core machine, an httpx POST of a 3.4 KB SOAP message with its answer
costs the caller 1.4-2.2 ms of CPU, aiohttp's 0.15-0.2 ms, against a hub budget of 1.5 ms per
source call. httpx stays for everything that hands the hub a transport of its own (tests and the
demo run the simulators in process through `httpx.ASGITransport`) and when tracing is on (its
maintained instrumentation makes the HTTP span and sends `traceparent`). Both read through the
same bounded inflater and end in the same exceptions for the adapter to map.
"""

from __future__ import annotations

import ssl
import urllib.request
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import aiohttp
import httpx

ACCEPT_ENCODING = "gzip, deflate"


class TooLarge(Exception):
    """The answer is larger than the bound (after decompression)."""


class BadEncoding(Exception):
    """The answer's Content-Encoding is not one the hub reads, or its compressed data is corrupt."""


@dataclass(frozen=True)
class Received:
    status: int
    content_type: str
    body: bytes


class _Inflater:
    """gzip or deflate, inflated chunk by chunk and never beyond `limit` bytes of output."""

    def __init__(self, encoding: str, limit: int):
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self._z = zlib.decompressobj(wbits)
        self._limit = limit
        self._raw_deflate = encoding == "deflate"
        self._size = 0

    def feed(self, chunk: bytes) -> bytes:
        try:
            out = self._z.decompress(chunk, self._limit - self._size + 1)
        except zlib.error:
            if self._raw_deflate and self._size == 0:  # "deflate" sent without its zlib header
                self._z, self._raw_deflate = zlib.decompressobj(-zlib.MAX_WBITS), False
                return self.feed(chunk)
            raise BadEncoding("the compressed answer is corrupt") from None
        self._size += len(out)
        if self._size > self._limit or self._z.unconsumed_tail:
            raise TooLarge
        return out


async def post(http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], *,
               timeout: httpx.Timeout, max_bytes: int) -> Received:
    """POST `body` and read the answer, refusing more than `max_bytes` of (decompressed) content."""
    request = http.build_request("POST", url, content=body, headers={**headers, "Accept-Encoding": ACCEPT_ENCODING},
                                 timeout=timeout)
    response = await http.send(request, stream=True)
    try:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "deflate"):
            raise BadEncoding(f"unsupported Content-Encoding {encoding!r}")
        if response.is_stream_consumed:  # a test transport that built its answer from bytes (already decoded)
            if len(response.content) > max_bytes:
                raise TooLarge
            return Received(response.status_code, response.headers.get("content-type", ""), response.content)
        body = await _read_bounded(response.aiter_raw(), encoding, max_bytes)
        return Received(response.status_code, response.headers.get("content-type", ""), body)
    finally:
        await response.aclose()


async def _read_bounded(raw: AsyncIterator[bytes], encoding: str, max_bytes: int) -> bytes:
    """The body from its raw (still compressed) chunks, never more than `max_bytes` of it."""
    inflater = _Inflater(encoding, max_bytes) if encoding != "identity" else None
    chunks: list[bytes] = []
    size = 0
    async for chunk in raw:
        if inflater is not None:
            chunk = inflater.feed(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class SourceClient:
    """One source endpoint's connection pool on aiohttp (see the module docstring for why).

    Like the httpx client it replaces: no redirects followed, proxies from the environment
    (`HTTP(S)_PROXY`, `NO_PROXY`, read once per URL: aiohttp's `trust_env` would read them and
    ~/.netrc again on a thread for every request, which measured as a third of a source call's
    CPU), `tls` (or the system's CAs) for https://, the body read raw and inflated under the bound.
    A timeout raises `TimeoutError`; a refused, reset or broken connection an `aiohttp.ClientError`
    (or `OSError`). The session is made on first use, inside the running event loop.
    """

    def __init__(self, *, max_connections: int, tls: ssl.SSLContext | None = None):
        self.max_connections = max_connections
        self.tls = tls
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}  # url -> its proxy from the environment, if any

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0,
                                             ssl=self.tls if self.tls is not None else True)
            # no cookie jar: one pool serves every caller, so a cookie one answer set would ride
            # along on the next request, another subsystem's
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False,
                                                  cookie_jar=aiohttp.DummyCookieJar(),
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    def _proxy(self, url: str) -> str | None:
        if url not in self._proxies:
            parts = urlsplit(url)
            proxy = urllib.request.getproxies_environment().get(parts.scheme)
            bypass = proxy is not None and urllib.request.proxy_bypass_environment(parts.netloc)
            self._proxies[url] = None if bypass else proxy
        return self._proxies[url]

    async def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float, connect: float,
                   max_bytes: int) -> Received:
        """POST `body` within `timeout` seconds (`connect` of them to connect), reading at most `max_bytes`."""
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=connect)
        async with self._open().post(url, data=body, headers={**headers, "Accept-Encoding": ACCEPT_ENCODING},
                                     timeout=limits, allow_redirects=False, proxy=self._proxy(url)) as response:
            encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("identity", "gzip", "deflate"):
                raise BadEncoding(f"unsupported Content-Encoding {encoding!r}")
            content = await _read_bounded(response.content.iter_any(), encoding, max_bytes)
            return Received(response.status, response.headers.get("Content-Type", ""), content)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
