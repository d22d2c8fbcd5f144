"""TLS contexts for the hops the hub dials: the sources (https://, mutual TLS), the broker
(amqps://) and the cache (rediss://).

Every client context verifies: the server's certificate must chain to the given CA bundle (the
system's when none is given) and name the host dialled; TLS 1.2 at least. There is no switch to
turn verification off: a hop that cannot be verified is refused, and says why.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit


class TlsConfigError(ValueError):
    """TLS settings that cannot be used (a missing or unreadable file, a request not to verify)."""


def client_context(ca_file: Path | str | None = None, cert_file: Path | str | None = None,
                   key_file: Path | str | None = None) -> ssl.SSLContext:
    """A verifying client context: `ca_file` (else the system's CAs), and a client certificate to
    present when `cert_file`/`key_file` are given (mutual TLS)."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None)
        if cert_file is not None:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"TLS files cannot be used ({type(exc).__name__}: {exc})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def broker_context(url: str) -> ssl.SSLContext | None:
    """The context of an amqps:// broker URL (None for amqp://), from aio-pika's URL parameters
    `cafile` and `certfile`/`keyfile`; `no_verify_ssl` is refused rather than obeyed."""
    parts = urlsplit(url)
    if parts.scheme != "amqps":
        return None
    query = dict(parse_qsl(parts.query))
    if query.get("no_verify_ssl", "0") != "0":
        raise TlsConfigError("amqps:// always verifies the broker's certificate: remove no_verify_ssl "
                             "and give the broker's CA as cafile (or tls_ca_file)")
    return client_context(query.get("cafile"), query.get("certfile"), query.get("keyfile"))
