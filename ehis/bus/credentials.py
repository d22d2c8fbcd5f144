"""Broker URLs without passwords in them: the password comes from the credentials file.

`ehis broker setup` writes one password per broker user to a 0600 file and nowhere else. A
caller (`ehis request --as emek-muqavilesi`, `BusClient.open`) or a worker (`ehis serve`) given
`amqp://127.0.0.1:5672/ehis` logs in as its own broker user with the password from that file,
so nobody has to copy a password into a command line, a shell history or a process list.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from ehis.bus.broker_setup import BrokerSetupError, read_credentials
from ehis.bus.connection import BusConnectionError

AMQP_SCHEMES = ("amqp", "amqps")


def url_user(url: str) -> str | None:
    """The broker user an amqp:// URL names, None when it names none (or is not amqp://)."""
    parts = urlsplit(url)
    if parts.scheme not in AMQP_SCHEMES or not parts.username:
        return None
    return unquote(parts.username)


def with_credentials(url: str, name: str | None, *, credentials: Path, prefix: str = "") -> str:
    """`url` with a login: as it is when it holds a password (or is not amqp://); else the user it
    names, or `prefix + name` (a subsystem, or the worker), with the password from `credentials`.

    The result contains a secret: never log it (`ehis.runtime.redacted`).
    """
    parts = urlsplit(url)
    if parts.scheme not in AMQP_SCHEMES or parts.password is not None:
        return url
    user = url_user(url) or (prefix + name if name else None)
    if user is None:
        raise BusConnectionError("the broker URL names no user: say who logs in (--as SUBSYSTEM), "
                                 "or give amqp://user:password@host:port/vhost")
    try:
        passwords = read_credentials(credentials)
    except BrokerSetupError as exc:
        raise BusConnectionError(str(exc)) from None
    password = passwords.get(user)
    if password is None:
        found = "no credentials file" if not credentials.exists() else "no password for it"
        raise BusConnectionError(
            f"broker user {user!r}: {found} at {credentials}; `ehis broker setup` creates the users and writes "
            "their passwords there (EHIS_BROKER_CREDENTIALS names another file), or give the password in the URL")
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}").geturl()
