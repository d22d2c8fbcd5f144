"""One HTTP exchange with a source, reading no more than a bound, compressed or not.

httpx would decompress a whole network chunk at once (a 64 KB gzip chunk can expand to tens
of megabytes) and `Response.aread` buffers whatever arrives, so the body is read raw here and
inflated with an output bound: a 50 MB answer, a gzip bomb and an endless stream all stop at
`max_bytes` of XML, before anything is parsed. The time bound is the caller's (the guard
holds every attempt to its budget).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

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
        inflater = _Inflater(encoding, max_bytes) if encoding != "identity" else None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            if inflater is not None:
                chunk = inflater.feed(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge
            chunks.append(chunk)
        return Received(response.status_code, response.headers.get("content-type", ""), b"".join(chunks))
    finally:
        await response.aclose()
