"""Why a bus connection failed, in one sentence a person can act on.

aio-pika and aiormq say "InvalidFrameError: Expected one of ['Connection.OpenOk'], got
<Connection.Close ...>" when a vhost is missing and "ACCESS_REFUSED - Login was refused" for a
wrong password, at the end of an 80-line traceback. `explain` turns each into a
`BusConnectionError` naming the broker, the user and the vhost (never the password) and what to do.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import unquote, urlsplit


class BusConnectionError(ConnectionError):
    """The bus cannot be used: its message says what is wrong and what to do; it holds no secret."""


def addresses(url: str) -> list[str]:
    """One URL per broker node of `url`: `amqp://u:p@h1:5672,h2:5673/vhost?x=y` (the multi-host
    form other AMQP clients take) gives `amqp://u:p@h1:5672/vhost?x=y` and `amqp://u:p@h2:5673/vhost?x=y`;
    a URL with one host gives itself. Login, vhost and parameters are shared by every node."""
    parts = urlsplit(url)
    login, at, hosts = parts.netloc.rpartition("@")
    nodes = [h.strip() for h in hosts.split(",") if h.strip()]
    if len(nodes) <= 1:
        return [url]
    return [parts._replace(netloc=f"{login}{at}{node}").geturl() for node in nodes]


def where(url: str) -> tuple[str, str, str]:
    """(host:port, user, vhost) of a broker URL, for messages (never its password); a URL with
    several nodes names them all (`h1:5672,h2:5673`)."""
    nodes = [urlsplit(u) for u in addresses(url)]
    parts = nodes[0]
    host = ",".join(f"{p.hostname or '127.0.0.1'}:{p.port or (5671 if p.scheme == 'amqps' else 5672)}"
                    for p in nodes)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return host, unquote(parts.username or "guest"), vhost


def explain(exc: BaseException, url: str) -> BusConnectionError | None:
    """`exc`, raised while connecting to `url`, as a one-line `BusConnectionError`; None when it
    is not about the broker (a defect is left to surface as itself)."""
    if isinstance(exc, BusConnectionError):
        return exc
    host, user, vhost = where(url)
    from aiormq import exceptions as amqp  # only an amqp:// transport gets here

    text = str(exc)
    if isinstance(exc, amqp.ProbableAuthenticationError | amqp.AuthenticationError):
        return BusConnectionError(
            f"the broker at {host} refused the login of user {user!r} (wrong password, or no such user); "
            f"`ehis broker url <subsystem>` prints a working URL, `ehis broker setup` creates the users")
    if isinstance(exc, amqp.ConnectionNotAllowed) or (
            isinstance(exc, amqp.InvalidFrameError) and "Connection.OpenOk" in text and "Connection.Close" in text):
        return BusConnectionError(
            f"the broker at {host} has no vhost {vhost!r}, or user {user!r} may not use it; "
            f"run `ehis broker setup --broker amqp://{host}/{vhost}` (the URL's path names the vhost)")
    if isinstance(exc, amqp.ChannelAccessRefused):
        return BusConnectionError(
            f"the broker refused user {user!r} in vhost {vhost!r}: {_reason(exc)}; "
            "a worker logs in as ehis-worker, a caller as its subsystem (`ehis broker url <user>`)")
    if isinstance(exc, amqp.ChannelNotFoundEntity):
        return BusConnectionError(
            f"vhost {vhost!r} on {host} is not set up for the hub ({_reason(exc)}); run `ehis broker setup`")
    if isinstance(exc, socket.gaierror):
        return BusConnectionError(f"cannot resolve the broker's host in {host}: check the broker URL")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return BusConnectionError(f"the broker at {host} did not answer in time: is RabbitMQ running there?")
    if isinstance(exc, ConnectionError | OSError | amqp.AMQPConnectionError):
        return BusConnectionError(
            f"cannot reach the broker at {host} ({_reason(exc)}): is RabbitMQ running? "
            "(`rabbitmq-server -detached` starts it; the URL is --broker or EHIS_BROKER_URL)")
    if isinstance(exc, amqp.AMQPError):
        return BusConnectionError(f"the broker at {host} refused user {user!r} in vhost {vhost!r}: "
                                  f"{type(exc).__name__}: {_reason(exc)}")
    return None


def _reason(exc: BaseException) -> str:
    """The broker's or the OS's words, without aiormq's frame reprs; at most one line."""
    args = [a for a in getattr(exc, "args", ()) if isinstance(a, str | int)]
    text = " ".join(str(a) for a in args if not str(a).isdigit()) or type(exc).__name__
    if "Connect call failed" in text or "Errno 111" in text:
        return "connection refused"
    return text.splitlines()[0][:300]
