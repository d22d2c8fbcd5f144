"""`ehis broker setup`: a vhost, one broker user per subsystem plus the worker's, least privilege.

The worker trusts the AMQP `user_id` as the caller, and RabbitMQ checks `user_id` against the
login, so the identity is only as good as this layout: each subsystem logs in as itself and may
only publish requests; only the worker user may declare and consume the namespace's queues.

Found on RabbitMQ 3.10 (tests/bus/test_broker_setup.py checks each point):
  - direct reply-to needs no permission at all: declaring `amq.rabbitmq.reply-to` passively and
    consuming it are not checked, so a subsystem's `read` can stay empty;
  - a passive exchange declare needs no permission, an active one needs `configure` even when
    the exchange exists (hence the caller's passive lookup in `AmqpTransport`);
  - publishing needs `write` on the exchange (`amq.default` for the worker's replies);
    queue.bind needs `write` on the queue and `read` on the exchange; declaring a queue with
    `x-dead-letter-exchange` needs `read` on the queue and `write` on the DLX.

Users are broker-wide (only permissions are per vhost): keep one credentials file per broker.
Passwords live only in that file (0600) and go to the broker over the management API; they are
never logged or printed, and neither are the admin credentials.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import httpx
from aio_pika.exceptions import ChannelPreconditionFailed

from ehis.bus.amqp import BROKER_ANSWER, answered, declare_system, topology_names
from ehis.bus.amqp_events import declare_events
from ehis.bus.connection import BusConnectionError, addresses
from ehis.bus.events import event_names
from ehis.bus.transport import UNROUTED
from ehis.catalogue import COMPOSITE, SYSTEMS

WORKER_USER = "ehis-worker"
CREDENTIALS_FILE = "broker-credentials.json"
NOTHING = "^$"  # a permission regex no resource name matches


class BrokerSetupError(Exception):
    """The broker or its management API refused or failed; the message carries no secret."""


@dataclass(frozen=True, slots=True)
class Permissions:
    """RabbitMQ's three permission regexes of one user on one vhost."""

    configure: str
    write: str
    read: str


def _literal(text: str) -> str:
    """`text` as a regex matching itself (RabbitMQ compiles permissions as PCRE)."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", text)


def _one_of(namespace: str, names: Iterable[str]) -> str:
    return rf"{_literal(namespace)}\.({'|'.join(_literal(n) for n in names)})"


def subsystem_permissions(namespace: str, subsystem: str) -> Permissions:
    """Publish requests and consume its own event queue, nothing else: replies come on direct
    reply-to, which needs no permission, and the queue is declared by the worker user."""
    return Permissions(configure=NOTHING, write=rf"^{_literal(namespace)}\.requests$",
                       read=rf"^{_literal(event_names(namespace, subsystem)['queue'])}$")


def worker_permissions(namespace: str, systems: Iterable[str]) -> Permissions:
    """Declare and consume the system queues, bind them, reply on `amq.default`, dead-letter.

    No write on `<ns>.requests`: a worker cannot publish a request as anyone. `systems` are the
    queue names it may use (the whole catalogue, so building a source needs no new grant). Events:
    the worker declares, binds and publishes `<ns>.events`, its dead letters and every
    subscriber's queue (declaring a queue with a dead-letter exchange needs `read` on it too; the
    worker never consumes one).
    """
    codes = sorted(set(systems))
    events = rf"{_literal(namespace)}\.events(\.[a-z0-9-]+)?"
    return Permissions(
        configure=f"^({_one_of(namespace, ['requests', 'dlx', 'dead', *codes])}|{events})$",
        write=rf"^(amq\.default|{_one_of(namespace, ['dlx', 'dead', *codes])}|{events})$",
        read=f"^({_one_of(namespace, ['requests', 'dlx', *codes])}|{events})$",
    )


# -- URLs and the credentials file --------------------------------------------------------------


def vhost_of(amqp_url: str) -> str | None:
    """The vhost an amqp:// URL names, None when it names none ("/" path or no path)."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else None


def amqp_url(base_url: str, vhost: str, userinfo: str) -> str:
    """`base_url`'s scheme, host, port and query with `userinfo` (already quoted) and `vhost`."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ValueError(f"not an amqp:// or amqps:// URL: scheme {parts.scheme!r}")
    host = parts.netloc.rpartition("@")[2]
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{userinfo}@{host}/{quote(vhost, safe='')}{query}"


@dataclass(frozen=True)
class BrokerAccounts:
    """The broker users' passwords and where they log in: AMQP URLs for tests, CLI, benchmarks."""

    passwords: Mapping[str, str] = field(repr=False)
    base_url: str
    vhost: str
    prefix: str = ""  # the deployment's user-name prefix: `url_for("emek-muqavilesi")` logs in as prefix+name

    @property
    def users(self) -> list[str]:
        """The broker user names in the file (prefix included)."""
        return sorted(self.passwords)

    def url_for(self, name: str) -> str:
        """`amqp://user:password@host:port/vhost` for a subsystem or the worker (contains a secret: never log it)."""
        user = self.prefix + name
        try:
            password = self.passwords[user]
        except KeyError:
            raise KeyError(f"no broker user {user!r} in the credentials file; run `ehis broker setup`") from None
        return amqp_url(self.base_url, self.vhost, f"{quote(user, safe='')}:{quote(password, safe='')}")

    def template(self, user: str) -> str:
        """The URL with the password left out, safe to print."""
        return amqp_url(self.base_url, self.vhost, f"{quote(user, safe='<>')}:<password>")


def read_credentials(path: Path) -> dict[str, str]:
    """{user: password} from `path`; an absent file is empty."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BrokerSetupError(f"cannot read the credentials file {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise BrokerSetupError(f"the credentials file {path} is not a JSON object of user: password")
    return data


def write_credentials(path: Path, passwords: Mapping[str, str]) -> None:
    """Replace `path` atomically with a 0600 file: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(dict(sorted(passwords.items())), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_accounts(credentials: Path, amqp_url: str, vhost: str, prefix: str = "") -> BrokerAccounts:
    """The accounts `ehis broker setup` wrote to `credentials`, logging in at `amqp_url`'s host."""
    return BrokerAccounts(read_credentials(credentials), amqp_url, vhost, prefix)


# -- the management API -------------------------------------------------------------------------


class _Admin:
    """The management HTTP API, with the admin credentials taken out of the URL (and never shown)."""

    def __init__(self, admin_url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(admin_url)
        self.user = unquote(parts.username or "guest")
        password = unquote(parts.password or "guest")
        self.where = parts.netloc.rpartition("@")[2]
        base = f"{parts.scheme}://{self.where}{parts.path.rstrip('/')}/api"
        self._http = httpx.AsyncClient(base_url=base, auth=(self.user, password), timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def request(self, method: str, *segments: str, body: Any = None, missing_ok: bool = False) -> Any:
        """JSON of `METHOD /api/<segments>`; None for no content (or 404 when `missing_ok`)."""
        path = "/" + "/".join(quote(s, safe="") for s in segments)
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise BrokerSetupError(f"the management API at {self.where} does not answer ({type(exc).__name__})") from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code == 401:
            raise BrokerSetupError(f"the management API at {self.where} refused the admin credentials")
        if response.is_error:
            raise BrokerSetupError(f"{method} /api{path}: HTTP {response.status_code} {_reason(response)}")
        return response.json() if response.content else None


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))
    except ValueError:
        return ""


# -- setup and teardown -------------------------------------------------------------------------


@dataclass
class SetupReport:
    """What `setup_broker` did. No passwords: those are in `credentials` only."""

    vhost: str
    namespace: str
    credentials: Path
    subsystem_permissions: dict[str, Permissions]  # broker user -> its grant
    worker_permissions: Permissions
    worker_user: str = WORKER_USER
    vhost_created: bool = False
    created: list[str] = field(default_factory=list)  # users new on the broker
    rotated: list[str] = field(default_factory=list)  # users given a new password by --rotate
    reset: list[str] = field(default_factory=list)  # broker users absent from the file: new password
    stale: list[str] = field(default_factory=list)  # in the file, no longer in the access table
    pruned: list[str] = field(default_factory=list)  # stale users deleted (--prune)
    queues: list[str] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)  # event bindings the policy no longer grants, removed


async def setup_broker(
    admin_url: str,
    amqp_url: str,
    *,
    vhost: str,
    namespace: str,
    subsystems: Iterable[str],
    credentials: Path,
    event_receivers: Mapping[str, Iterable[str]] | None = None,
    rotate: bool = False,
    prune: bool = False,
    worker_user: str = WORKER_USER,
    user_prefix: str = "",
) -> SetupReport:
    """Bring the broker to the layout above; safe to re-run (passwords kept unless `rotate`).

    The credentials file is written before any password reaches the broker, so an interrupted
    run never leaves a broker password nobody knows: the next run sets the file's again.
    """
    wanted = sorted({user_prefix + name for name in subsystems})
    worker_user = user_prefix + worker_user
    async with _Admin(admin_url) as admin:
        _check_names(wanted, worker_user, admin.user)
        known = read_credentials(credentials)
        report = SetupReport(
            vhost=vhost,
            namespace=namespace,
            credentials=credentials,
            subsystem_permissions={user_prefix + s: subsystem_permissions(namespace, s) for s in subsystems},
            worker_permissions=worker_permissions(namespace, [*(s.code for s in SYSTEMS), COMPOSITE, UNROUTED]),
            worker_user=worker_user,
        )
        users = [*wanted, worker_user]
        passwords = _passwords(known, users, report, rotate=rotate)
        if passwords != known:
            write_credentials(credentials, passwords)

        report.vhost_created = await admin.request("GET", "vhosts", vhost, missing_ok=True) is None
        await admin.request("PUT", "vhosts", vhost, body={})
        on_broker = {u["name"] for u in await admin.request("GET", "users")}
        for user in users:
            # tags "" on every run: no management access, and no "impersonator" to forge user_id
            await admin.request("PUT", "users", user, body={"password": passwords[user], "tags": ""})
            if user not in on_broker:
                report.created.append(user)
            elif user not in known:
                report.reset.append(user)
            grant = report.worker_permissions if user == worker_user else report.subsystem_permissions[user]
            await admin.request("PUT", "permissions", vhost, user, body=asdict(grant))
        if prune and report.stale:
            for user in report.stale:  # off the broker first: a failure leaves them in the file, still stale
                await admin.request("DELETE", "users", user, missing_ok=True)
                del passwords[user]
                report.pruned.append(user)
            write_credentials(credentials, passwords)
        report.created.sort()
        report.reset.sort()

    accounts = BrokerAccounts(passwords, amqp_url, vhost)
    receivers = {s: sorted(p) for s, p in (event_receivers or {}).items() if p}
    report.queues = await _declare_topology(accounts.url_for(worker_user), namespace, receivers)
    async with _Admin(admin_url) as admin:
        report.unbound = await _unbind_stale(admin, vhost, namespace, receivers)
    return report


def _passwords(known: Mapping[str, str], users: list[str], report: SetupReport, *, rotate: bool) -> dict[str, str]:
    """The credentials file's next content: a new random password per new user (or all, rotating)."""
    passwords = dict(known)
    for user in users:
        if rotate or user not in known:
            passwords[user] = secrets.token_urlsafe(32)
            if user in known:
                report.rotated.append(user)
    report.rotated.sort()
    report.stale = sorted(set(known) - set(users))
    return passwords


def _check_names(subsystems: list[str], worker_user: str, admin_user: str) -> None:
    """A subsystem named like the worker or the admin would take over that account."""
    if not all(subsystems):
        raise BrokerSetupError("an empty subsystem name in the access table")
    for taken in (worker_user, admin_user):
        if taken in subsystems:
            raise BrokerSetupError(f"subsystem {taken!r} would share the broker user of the worker or the admin")
    if worker_user == admin_user:
        raise BrokerSetupError(f"the worker user {worker_user!r} is the admin user")


async def _declare_topology(worker_url: str, namespace: str, receivers: Mapping[str, list[str]]) -> list[str]:
    """Declare, as the worker user, what every worker shares: the request exchange with its
    alternate exchange, the catch-all queue, the dead-letter exchange and queue.

    A system's queue is declared by the workers that serve it, when they start: a service no
    worker has served has no queue, so its requests reach the catch-all queue and are answered
    `not_served` instead of waiting for a worker that will not come. A request exchange made
    before the alternate exchange existed is re-made (workers re-bind their queues on start).
    """
    try:
        connection = await aio_pika.connect(addresses(worker_url)[0], timeout=BROKER_ANSWER)
    except Exception as exc:  # noqa: BLE001 - refused, auth, vhost: the message must not carry the URL
        raise BrokerSetupError(f"the worker user cannot connect over AMQP ({type(exc).__name__})") from None
    async with connection:
        try:
            await answered("declaring the hub's exchanges and queues", _declare(connection, namespace, receivers))
        except BusConnectionError as exc:
            raise BrokerSetupError(str(exc)) from None
    names = topology_names(namespace)
    events = [event_names(namespace, s)["queue"] for s in receivers]
    return sorted([names["dead"], names["unrouted"], event_names(namespace)["dead"], *events])


async def _declare(connection: aio_pika.abc.AbstractConnection, namespace: str,
                   receivers: Mapping[str, list[str]]) -> None:
    try:
        await declare_system(await connection.channel(), namespace, UNROUTED, [])
    except ChannelPreconditionFailed:
        channel = await connection.channel()
        await channel.exchange_delete(topology_names(namespace)["requests"])
        await declare_system(channel, namespace, UNROUTED, [])
    await declare_events(await connection.channel(), namespace, receivers)


async def _unbind_stale(admin: _Admin, vhost: str, namespace: str, receivers: Mapping[str, list[str]]) -> list[str]:
    """Remove the bindings of `<ns>.events` that the event policy no longer grants ("queue key")."""
    exchange = event_names(namespace)["exchange"]
    removed = []
    for binding in await admin.request("GET", "exchanges", vhost, exchange, "bindings", "source") or []:
        queue, key = binding["destination"], binding["routing_key"]
        subsystem = queue.removeprefix(f"{exchange}.")
        if binding["destination_type"] == "queue" and key not in receivers.get(subsystem, ()):
            await admin.request("DELETE", "bindings", vhost, "e", exchange, "q", queue, binding["properties_key"],
                                missing_ok=True)
            removed.append(f"{queue} {key}")
    return sorted(removed)


async def delete_vhost(admin_url: str, vhost: str) -> None:
    """Delete `vhost` with its queues, exchanges and permissions (tests; a missing one is a no-op)."""
    async with _Admin(admin_url) as admin:
        await admin.request("DELETE", "vhosts", vhost, missing_ok=True)


async def delete_users(admin_url: str, users: Iterable[str]) -> None:
    """Delete broker users (tests: users are broker-wide, so a vhost's deletion leaves them)."""
    async with _Admin(admin_url) as admin:
        for user in users:
            await admin.request("DELETE", "users", user, missing_ok=True)
