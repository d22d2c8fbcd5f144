"""The `ehis` command: demo, serve, request, simulators, pki, broker, log, outages, catalogue.

Every failure a user can cause is one line on stderr saying what is wrong and what to do, with
exit code 2 (the command line or the configuration is wrong) or 1 (something failed); `--debug`
adds the traceback. One-shot commands log at WARNING, so only their answer reaches the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from ehis.audit import commands as audit_commands
from ehis.bus import broker_commands
from ehis.config import Settings
from ehis.events import commands as event_commands
from ehis.logs import setup_logging

LONG_RUNNING = {("serve", None), ("simulators", "serve"), ("events", "tail")}  # they log at log_level; the others at WARNING


class UsageError(Exception):
    """The command line asks for something that cannot be: exit 2."""


class Failure(Exception):
    """The command could not do its work, for a reason its message gives: exit 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command and where to find help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = _parser().parse_args([a for a in argv if a != "--debug"])
    command = " ".join(filter(None, ("ehis", args.command, getattr(args, "sub", None))))
    overrides: dict[str, object] = {}
    if getattr(args, "broker", None):
        overrides["broker_url"] = args.broker
    if getattr(args, "sources", None):
        overrides["serve_sources"] = [code.strip() for code in args.sources.split(",") if code.strip()]
    if getattr(args, "admin_listen", None) is not None:
        overrides["admin_listen"] = args.admin_listen
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"{command}: invalid configuration: {_first_problem(exc)}", file=sys.stderr)
        return 2
    long_running = (args.command, getattr(args, "sub", None)) in LONG_RUNNING
    level = settings.log_level if long_running or "log_level" in settings.model_fields_set else "WARNING"
    setup_logging("DEBUG" if debug else level, process=bool(os.environ.get("EHIS_WORKER_OF")))
    try:
        return int(args.run(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say, nor to flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes one line
        code, message = _explain(exc)
        if debug:
            traceback.print_exc()
        hint = " (--debug shows the traceback)" if message.startswith("unexpected ") and not debug else ""
        print(f"{command}: {message}{hint}", file=sys.stderr)
        return code


def _explain(exc: Exception) -> tuple[int, str]:
    """(exit code, one line) for an exception that ended a command."""
    from ehis.bootstrap import ConfigurationError
    from ehis.bus.broker_setup import BrokerSetupError
    from ehis.bus.connection import BusConnectionError
    from ehis.runtime import ServeError

    if isinstance(exc, UsageError | ConfigurationError):
        return 2, str(exc)
    if isinstance(exc, Failure | BusConnectionError | BrokerSetupError | ServeError):
        return 1, str(exc)
    if isinstance(exc, PermissionError):
        return 1, f"permission denied: {exc.filename or exc}"
    if isinstance(exc, OSError) and exc.filename:
        return 1, f"{exc.filename}: {exc.strerror or exc}"
    first = (str(exc).splitlines() or [""])[0][:300]
    return 1, f"unexpected {type(exc).__name__}: {first}" if first else f"unexpected {type(exc).__name__}"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ehis", description="EHİS Connector: the ministry's hub to the state sources")
    parser.add_argument("--debug", action="store_true", help="on failure, show the traceback too (anywhere)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run simulators, worker and callers in one process and show real lookups")
    demo.set_defaults(run=_demo)

    listing = commands.add_parser("catalogue", help="every system and service: served?, params, cache, callers")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.set_defaults(run=_catalogue)

    serve = commands.add_parser("serve", help="run a worker that serves every built source (or --sources)")
    _broker_option(serve, "an amqp:// URL without a password logs in as ehis-worker, its password from the "
                          "credentials file")
    serve.add_argument("--sources", default=None, metavar="CODE,CODE",
                       help="serve only these source systems, e.g. din,vergiler (env EHIS_SERVE_SOURCES)")
    serve.add_argument("--processes", type=_count, default=1, metavar="N",
                       help="N worker processes on this host behind one admin endpoint (RabbitMQ only)")
    serve.add_argument("--admin-listen", default=None, metavar="HOST:PORT",
                       help="where /metrics, /health and /admin listen (env EHIS_ADMIN_LISTEN, default "
                            "127.0.0.1:8702; '' for none)")
    serve.set_defaults(run=_serve)

    request = commands.add_parser("request", help="send one request and print the JSON reply")
    request.add_argument("service", help="e.g. din.person")
    request.add_argument("params", nargs="*", metavar="KEY=VALUE", help="e.g. fin=5GXM4DZ")
    request.add_argument("--as", dest="subsystem", default=None,
                         help="the calling subsystem, e.g. emek-muqavilesi: on RabbitMQ the broker user it logs in "
                              "as (password from the credentials file when the URL has none); default the URL's user")
    request.add_argument("--user", default="cli", help="the official's id (default: cli)")
    request.add_argument("--purpose", default="", help="why the data is needed")
    request.add_argument("--timeout", type=float, default=None, help="deadline in seconds")
    request.add_argument("--fresh", action="store_true", help="ask for data fetched now, not cached")
    _broker_option(request, "an amqp:// URL without a password logs in as --as, its password from the "
                            "credentials file")
    request.set_defaults(run=_request)

    sims = commands.add_parser("simulators", help="the offline sources").add_subparsers(dest="sub", required=True)
    sim_serve = sims.add_parser("serve", help="serve every simulated source over HTTP")
    sim_serve.add_argument("--host", default=None, help="default: the host of EHIS_SIMULATOR_URL")
    sim_serve.add_argument("--port", type=int, default=None, help="default: the port of EHIS_SIMULATOR_URL")
    sim_serve.add_argument("--faults", type=Path, default=None,
                           help="TOML or JSON file of faults to start with (env EHIS_SIMULATOR_FAULTS)")
    sim_serve.add_argument("--tls", action="store_true",
                           help="serve HTTPS with the test PKI's server certificate (localhost, 127.0.0.1)")
    sim_serve.add_argument("--mtls", action="store_true",
                           help="HTTPS that also requires a client certificate from the test PKI's CA")
    sim_serve.add_argument("--event-rate", type=float, default=None, metavar="N",
                           help="make N random events a minute happen (env EHIS_SIMULATOR_EVENT_RATE; default 0)")
    sim_serve.set_defaults(run=_simulators_serve)
    faults = sims.add_parser("faults", help="faults on demand in running simulators (their admin API)")
    faults.add_argument("action", choices=("list", "add", "remove", "reset"))
    faults.add_argument("rule", nargs="*", metavar="KEY=VALUE | ID",
                        help="add: kind=http_503 system=din first=3 probability=0.2 latency_ms=500; remove: the rule id")
    faults.set_defaults(run=_simulators_faults)
    events = sims.add_parser("events", help="events on demand in running simulators (their admin API)")
    events.add_argument("action", choices=("emit", "list", "reset"))
    events.add_argument("kind", nargs="?", metavar="KIND", help="emit: e.g. edliyye.death (see `ehis catalogue`)")
    events.add_argument("param", nargs="*", metavar="KEY=VALUE",
                        help="emit: fin=... date=YYYY-MM-DD and the kind's own; a random person when no fin")
    events.set_defaults(run=_simulators_events)

    pki = commands.add_parser("pki", help="the test PKI").add_subparsers(dest="sub", required=True)
    pki_init = pki.add_parser("init", help="make a test CA and certificates for every source and the operator")
    pki_init.add_argument("dir", type=Path)
    pki_init.add_argument("--force", action="store_true", help="replace an existing PKI")
    pki_init.add_argument("--crl-url", default=None,
                          help="the CRL distribution point its certificates name (default <simulator_url>/pki/ca.crl)")
    pki_init.set_defaults(run=_pki_init)
    pki_revoke = pki.add_parser("revoke", help="revoke a party's certificate: the CA re-issues its CRL (ca.crl)")
    pki_revoke.add_argument("name", help="a system code, a provider or meis-operator")
    pki_revoke.add_argument("--dir", type=Path, default=None, help="the PKI (default: pki_dir)")
    pki_revoke.set_defaults(run=_pki_revoke)

    audit_commands.register(commands)
    broker_commands.register(commands)
    event_commands.register(commands)
    return parser


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("between 1 and 64")
    return value


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where + ': ' if where else ''}{error['msg'].removeprefix('Value error, ')}"


def _broker_option(parser: argparse.ArgumentParser, login: str) -> None:
    parser.add_argument("--broker", default=None,
                        help=f"memory:// or amqp://[user:password@]host:port/vhost (env EHIS_BROKER_URL); {login}")


def _params(pairs: Sequence[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"parameter {pair!r} is not KEY=VALUE (e.g. fin=5GXM4DZ)")
        params[key] = value
    return params


def _request(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.bus.credentials import url_user, with_credentials
    from ehis.bus.envelope import Requester
    from ehis.runtime import is_embedded, send_request

    params = _params(args.params)
    subsystem = args.subsystem
    named = None if is_embedded(settings.broker_url) else url_user(settings.broker_url)
    if subsystem is None and named is not None:  # the broker login says who asks: --as would repeat it
        subsystem = named.removeprefix(settings.broker_user_prefix)
    if subsystem is None:
        raise UsageError("say who asks: --as SUBSYSTEM, e.g. --as emek-muqavilesi")
    if not is_embedded(settings.broker_url):
        settings = settings.model_copy(update={"broker_url": with_credentials(
            settings.broker_url, subsystem, credentials=settings.broker_credentials_path,
            prefix=settings.broker_user_prefix)})
    try:
        requester = Requester(subsystem=subsystem, user=args.user, purpose=args.purpose)
    except ValidationError as exc:
        raise UsageError(f"--as/--user/--purpose: {_first_problem(exc)}") from None
    _start_tracing(settings, "ehis-cli")
    reply = asyncio.run(send_request(settings, args.service, params, requester, timeout=args.timeout,
                                     fresh=args.fresh))
    _stop_tracing()
    print(json.dumps(reply.model_dump(mode="json"), ensure_ascii=False, indent=2))
    if reply.error is not None:
        print(f"ehis request: {reply.error.code}: {reply.error.message}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from ehis import loops
    from ehis.bus.broker_setup import WORKER_USER
    from ehis.bus.credentials import with_credentials
    from ehis.processes import die_with_parent, serve_processes
    from ehis.runtime import serve_forever

    login = with_credentials(settings.broker_url, WORKER_USER, credentials=settings.broker_credentials_path,
                             prefix=settings.broker_user_prefix)
    settings = settings.model_copy(update={"broker_url": login})
    if args.processes > 1:
        from ehis.bootstrap import served_sources

        services = [s.name for source in served_sources(settings) for s in source.services]
        loops.run(_until_signalled(serve_processes(settings, args.processes, services)), settings.event_loop)
        return 0
    die_with_parent()
    _start_tracing(settings, "ehis-worker")
    try:
        loops.run(_until_signalled(serve_forever(settings)), settings.event_loop)
    finally:
        _stop_tracing()
    return 0


def _start_tracing(settings: Settings, service_name: str) -> None:
    from ehis import tracing

    if tracing.setup(settings, service_name):
        logging.getLogger("ehis.tracing").info("tracing on: spans to %s", settings.tracing_endpoint)


def _stop_tracing() -> None:
    from ehis import tracing

    tracing.uninstall()


def _catalogue(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.inventory import inventory, render

    systems = inventory(settings)
    print(json.dumps(systems, ensure_ascii=False, indent=2) if args.json else render(systems))
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.demo import run_demo

    return asyncio.run(run_demo(settings))


def _simulators_serve(args: argparse.Namespace, settings: Settings) -> int:
    import socket
    from urllib.parse import urlsplit

    from ehis.events.wire import Ministry
    from ehis.security.pki import CRL_PATH, ensure_pki
    from ehis.simulators.app import serve
    from ehis.simulators.faults import InvalidFaults, load_faults
    from ehis.sources import sources

    url = urlsplit(settings.simulator_url)
    path = args.faults or settings.simulator_faults
    try:
        faults = load_faults(path) if path else None
    except (InvalidFaults, OSError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    host, port = args.host or url.hostname or "127.0.0.1", args.port or url.port or 8701
    with socket.socket() as probe:  # uvicorn would say so in a traceback, and exit
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise Failure(f"cannot listen on {host}:{port} ({exc.strerror}): are the simulators running already "
                          f"(`curl http://{host}:{port}/_admin/health`)? Choose another with --port and point "
                          "EHIS_SIMULATOR_URL at it") from None
    played = sources()
    endpoints = [name for source in played.values() for name in (source.providers or {source.code: None})]
    logging.getLogger("ehis.simulators").info(
        "simulators playing %d sources (%s) at %d endpoints on %s://%s:%d", len(played), ", ".join(played),
        len(endpoints), "https" if args.tls or args.mtls else "http", host, port)
    pki = ensure_pki(settings.pki_path, crl_url=settings.simulator_url.rstrip("/") + CRL_PATH)
    rate = settings.simulator_event_rate if args.event_rate is None else args.event_rate
    if rate < 0:
        raise UsageError("--event-rate is a number of events a minute, 0 or more")
    ministry = Ministry(settings.xroad_instance, settings.client_member_class, settings.client_member_code)
    serve(host, port, pki, faults=faults, tls=args.tls, require_client_cert=args.mtls,
          hub_events_url=settings.hub_events_url or None, ministry=ministry, event_rate=rate)
    return 0


def _simulators_faults(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    def call(http: httpx.Client, endpoint: str) -> httpx.Response:
        if args.action == "list":
            return http.get(endpoint)
        if args.action == "add":
            return http.post(endpoint, json=_params(args.rule))
        if args.action == "remove":
            if len(args.rule) != 1:
                raise UsageError("give one rule id (see `ehis simulators faults list`)")
            return http.delete(f"{endpoint}/{args.rule[0]}")
        rules = http.get(endpoint).json().get("faults", [])
        response = http.delete(endpoint)
        if response.is_success:
            print(f"removed {len(rules)} fault rule{'s' if len(rules) != 1 else ''}: the simulators answer normally")
        return response

    response = _simulators_admin(settings, "faults", call)
    if response.content:
        print(json.dumps(response.json(), ensure_ascii=False, indent=2))
    elif args.action == "remove":
        print(f"removed fault rule {args.rule[0]}")
    return 0


def _simulators_events(args: argparse.Namespace, settings: Settings) -> int:
    if args.action != "emit" and (args.kind or args.param):
        raise UsageError(f"`events {args.action}` takes no arguments")
    if args.action == "emit" and not args.kind:
        raise UsageError("name the kind to emit, e.g. `ehis simulators events emit edliyye.death fin=...`")
    import httpx

    def call(http: httpx.Client, endpoint: str) -> httpx.Response:
        if args.action == "emit":
            return http.post(endpoint, json={"kind": args.kind, "params": _params(args.param)})
        if args.action == "list":
            return http.get(endpoint)
        response = http.delete(endpoint)
        if response.is_success:
            print("events and the world's changes reset: the simulators answer from the base world")
        return response

    response = _simulators_admin(settings, "events", call)
    if response.content:
        print(json.dumps(response.json(), ensure_ascii=False, indent=2))
    return 0


def _simulators_admin(settings: Settings, resource: str, call: Callable[[Any, str], Any]) -> Any:
    """`call(http, <simulator_url>/_admin/<resource>)` against the running simulators: the response,
    once successful, or a Failure saying why (not running, or refused and why)."""
    import httpx

    endpoint = f"{settings.simulator_url.rstrip('/')}/_admin/{resource}"
    try:
        with httpx.Client(timeout=30) as http:
            response = call(http, endpoint)
    except httpx.HTTPError as exc:
        raise Failure(f"the simulators at {settings.simulator_url} do not answer ({type(exc).__name__}): "
                      "start them with `ehis simulators serve` or set EHIS_SIMULATOR_URL") from None
    if not response.is_success:
        try:
            why = response.json().get("error") or response.text
        except ValueError:
            why = response.text
        raise Failure(f"the simulators refused: HTTP {response.status_code} {str(why)[:300]}")
    return response


def _pki_init(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.security.pki import CRL_PATH, init_pki, pki_parties

    parties = pki_parties()
    crl_url = args.crl_url or settings.simulator_url.rstrip("/") + CRL_PATH
    try:
        pki = init_pki(args.dir, parties, force=args.force, crl_url=crl_url)
    except FileExistsError as exc:
        raise UsageError(f"{exc} (--force replaces it)") from None
    print(f"test PKI written to {pki.directory}: ca.pem, operator and {len(parties)} source certificates")
    return 0


def _pki_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.security.pki import CA_FILE, revoke

    directory = (args.dir or settings.pki_path).expanduser()
    if not (directory / CA_FILE).exists() or not (directory / f"{args.name}.pem").exists():
        print(f"ehis pki revoke: no certificate {args.name!r} in a PKI at {directory}", file=sys.stderr)
        return 2
    cert = revoke(directory, args.name)
    print(f"revoked {cert.subject.rfc4514_string()} (serial {cert.serial_number:x}); {directory / 'ca.crl'} "
          f"re-issued: hubs refuse its signatures once their copy of the CRL is renewed (revocation_freshness)")
    return 0


async def _until_signalled(coro) -> None:
    """Run `coro` until SIGINT or SIGTERM, then cancel it so it can shut down cleanly."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass


if __name__ == "__main__":
    sys.exit(main())
