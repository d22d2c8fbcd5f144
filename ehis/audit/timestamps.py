"""RFC 3161 time-stamps of checkpoints: asking a time-stamping authority, and checking a token.

Requests and verification use rfc3161-client (Trail of Bits, the one sigstore uses): the nonce
is checked, the TSA's certificate must chain to the configured CA and carry the critical
id-kp-timeStamping usage, and the token's imprint must be the SHA-256 of the exact bytes
stamped. The token is kept as the whole TimeStampResp (DER), which `openssl ts -verify -in`
reads as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

REQUEST_TYPE = "application/timestamp-query"
MAX_REPLY = 64 * 1024


class TimestampError(Exception):
    """No usable time-stamp: the TSA is unreachable, refused, or its token does not verify."""


@dataclass(frozen=True)
class Stamp:
    """A verified token: the DER TimeStampResp and the time the TSA vouches for."""

    token: bytes
    time: datetime


def load_roots(ca_file: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(ca_file.read_bytes())


def check_token(token: bytes, data: bytes, roots: list[x509.Certificate], nonce: int | None = None) -> Stamp:
    """The stamp in `token` if it is a granted, valid time-stamp of exactly `data` by a TSA under `roots`."""
    try:
        response = decode_timestamp_response(token)
        builder = VerifierBuilder(roots=list(roots))
        if nonce is not None:
            builder = builder.nonce(nonce)
        builder.build().verify_message(response, data)
        return Stamp(token, response.tst_info.gen_time)
    except VerificationError as exc:
        raise TimestampError(f"the time-stamp does not verify: {exc}") from None
    except (ValueError, TypeError) as exc:  # not DER, not a TimeStampResp
        raise TimestampError(f"the TSA refused, or its answer is unreadable: {type(exc).__name__}") from None


class TsaClient:
    """One time-stamping authority at `url`, trusted under `roots`."""

    def __init__(self, url: str, roots: list[x509.Certificate], *, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url
        self.roots = roots
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def stamp(self, data: bytes) -> Stamp:
        """A verified time-stamp of `data` (its SHA-256 is all the TSA sees)."""
        request = (TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
                   .nonce(nonce=True).cert_request(cert_request=True).build())
        try:
            reply = await self._http.post(self.url, content=request.as_bytes(),
                                          headers={"Content-Type": REQUEST_TYPE})
        except (httpx.HTTPError, OSError) as exc:
            raise TimestampError(f"the TSA cannot be reached: {type(exc).__name__}") from None
        if reply.status_code != 200 or len(reply.content) > MAX_REPLY:
            raise TimestampError(f"the TSA answered HTTP {reply.status_code}")
        return check_token(reply.content, data, self.roots, request.nonce)

    async def close(self) -> None:
        await self._http.aclose()
