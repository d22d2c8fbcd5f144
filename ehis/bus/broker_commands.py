"""`ehis broker setup` and `ehis broker url`: the command-line face of ehis.bus.broker_setup.

`setup` prints what it did and where the passwords are, never a password: the output may end up
in a deployment log, the credentials file is the one place they live. `url` prints one user's
URL with its password, on request, for a tool that cannot read the file; the hub's own commands
and `BusClient.open` read the file themselves when a URL has no password.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ehis.bus import dead_letters
from ehis.bus.broker_setup import (
    CREDENTIALS_FILE,
    WORKER_USER,
    BrokerAccounts,
    BrokerSetupError,
    SetupReport,
    _Admin,
    read_credentials,
    setup_broker,
    vhost_of,
)
from ehis.config import Settings

DEFAULT_VHOST = "ehis"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ehis broker setup` to the `ehis` command's subcommands."""
    broker = commands.add_parser("broker", help="the RabbitMQ broker").add_subparsers(dest="sub", required=True)
    setup = broker.add_parser(
        "setup",
        help="create the vhost, one broker user per subsystem plus the worker's, their permissions and the queues",
    )
    setup.add_argument("--broker", default=None, help="amqp://host:port/vhost to set up (env EHIS_BROKER_URL)")
    setup.add_argument("--vhost", default=None, help=f"default: the vhost of the broker URL, else {DEFAULT_VHOST!r}")
    setup.add_argument("--admin-url", default=None, help="the management API, http://user:pass@host:15672 "
                       "(env EHIS_BROKER_ADMIN_URL)")
    setup.add_argument("--credentials", type=Path, default=None,
                       help=f"default: EHIS_BROKER_CREDENTIALS, else <data_dir>/{CREDENTIALS_FILE}")
    setup.add_argument("--rotate", action="store_true", help="give every user a new password")
    setup.add_argument("--prune", action="store_true", help="delete users no longer in the access table")
    setup.set_defaults(run=run_setup)

    url = broker.add_parser("url", help="print the AMQP URL, password included, a subsystem or the worker logs in with")
    url.add_argument("user", help=f"a subsystem, e.g. emek-muqavilesi, or {WORKER_USER}")
    url.add_argument("--broker", default=None, help="amqp://host:port/vhost (env EHIS_BROKER_URL)")
    url.add_argument("--vhost", default=None, help=f"default: the vhost of the broker URL, else {DEFAULT_VHOST!r}")
    url.add_argument("--credentials", type=Path, default=None,
                     help=f"default: EHIS_BROKER_CREDENTIALS, else <data_dir>/{CREDENTIALS_FILE}")
    url.set_defaults(run=run_url)

    dead = commands.add_parser("dead", help="the dead-letter queue: expired and refused requests "
                               "(bounded: 10 000 messages, a day)").add_subparsers(dest="sub", required=True)
    for name, helptext, run in (("list", ("show dead-lettered requests: id, service, caller, when, why "
                                           "(identifiers masked)"), run_dead_list),
                                ("purge", "delete every dead-lettered request", run_dead_purge)):
        command = dead.add_parser(name, help=helptext)
        command.add_argument("--broker", default=None, help="amqp://host:port/vhost (env EHIS_BROKER_URL)")
        command.add_argument("--admin-url", default=None, help="the management API (env EHIS_BROKER_ADMIN_URL)")
        if name == "list":
            command.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
        command.set_defaults(run=run)


def _dead_queue(args: argparse.Namespace, settings: Settings) -> tuple[str, str, str]:
    base = args.broker or settings.broker_url
    vhost = vhost_of(base.split(",")[0]) or DEFAULT_VHOST
    return args.admin_url or settings.broker_admin_url, vhost, f"{settings.bus_namespace}.dead"


def run_dead_list(args: argparse.Namespace, settings: Settings) -> int:
    """Handler of `ehis dead list`: peeks (the messages stay), prints one line per request."""
    admin_url, vhost, queue = _dead_queue(args, settings)

    async def peek() -> list[dict]:
        async with _Admin(admin_url) as admin:
            body = {"count": max(1, args.limit), "ackmode": "ack_requeue_true", "encoding": "auto",
                    "truncate": 65536}
            return await admin.request("POST", "queues", vhost, queue, "get", body=body) or []

    try:
        messages = asyncio.run(peek())
    except BrokerSetupError as exc:
        print(f"ehis dead list: {exc}", file=sys.stderr)
        return 1
    for message in messages:
        print(dead_letters.describe(message).line())
    print(f"{len(messages)} dead-lettered request(s) shown from {queue} in vhost {vhost!r}", file=sys.stderr)
    return 0


def run_dead_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Handler of `ehis dead purge`."""
    admin_url, vhost, queue = _dead_queue(args, settings)

    async def purge() -> None:
        async with _Admin(admin_url) as admin:
            await admin.request("DELETE", "queues", vhost, queue, "contents")

    try:
        asyncio.run(purge())
    except BrokerSetupError as exc:
        print(f"ehis dead purge: {exc}", file=sys.stderr)
        return 1
    print(f"{queue} in vhost {vhost!r} purged")
    return 0


def run_setup(args: argparse.Namespace, settings: Settings) -> int:
    """Handler of `ehis broker setup`: 0 done, 1 the broker refused, 2 nothing to set up."""
    amqp_url = args.broker or settings.broker_url
    if urlsplit(amqp_url).scheme not in ("amqp", "amqps"):
        print("ehis broker setup: the broker URL is not amqp://; set EHIS_BROKER_URL or pass --broker", file=sys.stderr)
        return 2
    vhost = args.vhost or vhost_of(amqp_url) or DEFAULT_VHOST
    credentials = args.credentials or settings.broker_credentials_path
    try:
        report = asyncio.run(
            setup_broker(
                args.admin_url or settings.broker_admin_url,
                amqp_url,
                vhost=vhost,
                namespace=settings.bus_namespace,
                subsystems=sorted({*settings.access, *settings.event_access}),
                credentials=credentials,
                event_receivers=settings.event_access,
                rotate=args.rotate,
                prune=args.prune,
                user_prefix=settings.broker_user_prefix,
            )
        )
    except BrokerSetupError as exc:
        print(f"ehis broker setup: {exc}", file=sys.stderr)
        return 1
    print(describe(report, amqp_url))
    return 0


def run_url(args: argparse.Namespace, settings: Settings) -> int:
    """Handler of `ehis broker url USER`: 0 printed, 1 no such user in the file, 2 no amqp:// URL."""
    base = args.broker or settings.broker_url
    if urlsplit(base).scheme not in ("amqp", "amqps"):
        print("ehis broker url: which broker? pass --broker amqp://host:port/vhost or set EHIS_BROKER_URL",
              file=sys.stderr)
        return 2
    credentials = args.credentials or settings.broker_credentials_path
    try:
        passwords = read_credentials(credentials)
    except BrokerSetupError as exc:
        print(f"ehis broker url: {exc}", file=sys.stderr)
        return 1
    prefix = settings.broker_user_prefix
    name = args.user.removeprefix(prefix)  # the subsystem, or the full broker user name
    accounts = BrokerAccounts(passwords, base, args.vhost or vhost_of(base) or DEFAULT_VHOST, prefix)
    try:
        print(accounts.url_for(name))
    except KeyError:
        where = "no credentials file" if not credentials.exists() else "no such user"
        print(f"ehis broker url: {where} {prefix + name!r} in {credentials}; `ehis broker setup` creates one broker "
              "user per subsystem of the access table, and ehis-worker", file=sys.stderr)
        return 1
    return 0


def describe(report: SetupReport, amqp_url: str) -> str:
    """What setup did, for a person: users and queues, URL templates, no password."""
    where = urlsplit(amqp_url).netloc.rpartition("@")[2]
    lines = [(f"broker {where}, vhost {report.vhost!r} ({'created' if report.vhost_created else 'already there'}), "
              f"namespace {report.namespace!r}")]

    def listed(label: str, users: list[str]) -> None:
        if users:
            lines.append(f"  {label}: {', '.join(users)}")

    listed("users created", report.created)
    listed("passwords rotated", report.rotated)
    listed("WARNING existing broker users given a new password (they were not in the credentials file)",
           report.reset)
    if report.stale and not report.pruned:
        listed("users no longer in the access table (kept; --prune deletes them)", report.stale)
    listed("users deleted", report.pruned)
    lines.append(f"  queues: {', '.join(report.queues)}")
    listed("event bindings the policy no longer grants, removed", report.unbound)
    lines.append(f"  passwords: in {report.credentials} (mode 0600), never printed; `ehis serve` and "
                 "`ehis request --as <subsystem>` read them from there when the URL has none")
    templates = BrokerAccounts({}, amqp_url, report.vhost)
    worker = report.worker_permissions
    lines += [
        "AMQP URLs (password from the credentials file; `ehis broker url <user>` prints one):",
        f"  subsystem  {templates.template('<subsystem>')}",
        (f"             may only publish to {report.namespace}.requests and consume {report.namespace}.events."
         "<subsystem> (its events); replies via direct reply-to"),
        f"  worker     {templates.template(report.worker_user)}",
        f"             configure {worker.configure}",
        f"             write {worker.write}",
        f"             read {worker.read}",
    ]
    return "\n".join(lines)
