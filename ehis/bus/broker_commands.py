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

from ehis.bus.broker_setup import (
    CREDENTIALS_FILE,
    WORKER_USER,
    BrokerAccounts,
    BrokerSetupError,
    SetupReport,
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
                subsystems=list(settings.access),
                credentials=credentials,
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
    lines = [f"broker {where}, vhost {report.vhost!r} ({'created' if report.vhost_created else 'already there'}), "
             f"namespace {report.namespace!r}"]

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
    lines.append(f"  passwords: in {report.credentials} (mode 0600), never printed; `ehis serve` and "
                 "`ehis request --as <subsystem>` read them from there when the URL has none")
    templates = BrokerAccounts({}, amqp_url, report.vhost)
    sub, worker = report.subsystem_permissions, report.worker_permissions
    lines += [
        "AMQP URLs (password from the credentials file; `ehis broker url <user>` prints one):",
        f"  subsystem  {templates.template('<subsystem>')}",
        f"             may only publish to {report.namespace}.requests (write {sub.write}); replies via direct reply-to",
        f"  worker     {templates.template(report.worker_user)}",
        f"             configure {worker.configure}",
        f"             write {worker.write}",
        f"             read {worker.read}",
    ]
    return "\n".join(lines)
