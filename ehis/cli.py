"""The `ehis` command: demo, serve, request, simulators serve, pki init."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ehis.audit import commands as audit_commands
from ehis.bus import broker_commands
from ehis.config import Settings
from ehis.logs import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if getattr(args, "broker", None):
        overrides["broker_url"] = args.broker
    if getattr(args, "sources", None):
        overrides["serve_sources"] = [code.strip() for code in args.sources.split(",") if code.strip()]
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"ehis: invalid configuration: {_first_problem(exc)}", file=sys.stderr)
        return 2
    setup_logging("WARNING" if args.command == "demo" else settings.log_level)  # the demo prints its own story
    return int(args.run(args, settings) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ehis", description="EHİS Connector: the ministry's hub to the state sources")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run simulators, worker and callers in one process and show real lookups")
    demo.set_defaults(run=_demo)

    listing = commands.add_parser("catalogue", help="every system and service: served?, params, cache, callers")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.set_defaults(run=_catalogue)

    serve = commands.add_parser("serve", help="run a worker that serves every built source (or --sources)")
    _broker_option(serve)
    serve.add_argument("--sources", default=None, metavar="CODE,CODE",
                       help="serve only these source systems, e.g. din,vergiler (env EHIS_SERVE_SOURCES)")
    serve.set_defaults(run=_serve)

    request = commands.add_parser("request", help="send one request and print the JSON reply")
    request.add_argument("service", help="e.g. din.person")
    request.add_argument("params", nargs="*", metavar="KEY=VALUE", help="e.g. fin=5GXM4DZ")
    request.add_argument("--as", dest="subsystem", required=True, help="the calling subsystem, e.g. emek-muqavilesi")
    request.add_argument("--user", default="cli", help="the official's id (default: cli)")
    request.add_argument("--purpose", default="", help="why the data is needed")
    request.add_argument("--timeout", type=float, default=None, help="deadline in seconds")
    request.add_argument("--fresh", action="store_true", help="ask for data fetched now, not cached")
    _broker_option(request)
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
    sim_serve.set_defaults(run=_simulators_serve)
    faults = sims.add_parser("faults", help="faults on demand in running simulators (their admin API)")
    faults.add_argument("action", choices=("list", "add", "remove", "reset"))
    faults.add_argument("rule", nargs="*", metavar="KEY=VALUE | ID",
                        help="add: kind=http_503 system=din first=3 probability=0.2 latency_ms=500; remove: the rule id")
    faults.set_defaults(run=_simulators_faults)

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
    return parser


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where + ': ' if where else ''}{error['msg'].removeprefix('Value error, ')}"


def _broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", default=None, help="memory:// or amqp://user:pass@host/vhost (env EHIS_BROKER_URL)")


def _params(pairs: Sequence[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"ehis request: parameter {pair!r} is not KEY=VALUE")
        params[key] = value
    return params


def _request(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.bus.envelope import Requester
    from ehis.runtime import send_request

    requester = Requester(subsystem=args.subsystem, user=args.user, purpose=args.purpose)
    reply = asyncio.run(
        send_request(settings, args.service, _params(args.params), requester, timeout=args.timeout, fresh=args.fresh)
    )
    print(json.dumps(reply.model_dump(mode="json"), ensure_ascii=False, indent=2))
    return 0 if reply.status == "ok" else 1


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.bootstrap import ConfigurationError
    from ehis.runtime import serve_forever

    try:
        asyncio.run(_until_signalled(serve_forever(settings)))
    except ConfigurationError as exc:
        print(f"ehis serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _catalogue(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.inventory import inventory, render

    systems = inventory(settings)
    print(json.dumps(systems, ensure_ascii=False, indent=2) if args.json else render(systems))
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.demo import run_demo

    return asyncio.run(run_demo(settings))


def _simulators_serve(args: argparse.Namespace, settings: Settings) -> int:
    from urllib.parse import urlsplit

    from ehis.security.pki import CRL_PATH, ensure_pki
    from ehis.simulators.app import serve
    from ehis.simulators.faults import InvalidFaults, load_faults

    url = urlsplit(settings.simulator_url)
    path = args.faults or settings.simulator_faults
    try:
        faults = load_faults(path) if path else None
    except (InvalidFaults, OSError) as exc:
        print(f"ehis simulators serve: {path}: {exc}", file=sys.stderr)
        return 2
    pki = ensure_pki(settings.pki_path, crl_url=settings.simulator_url.rstrip("/") + CRL_PATH)
    serve(args.host or url.hostname or "127.0.0.1", args.port or url.port or 8701, pki, faults=faults,
          tls=args.tls, require_client_cert=args.mtls)
    return 0


def _simulators_faults(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    endpoint = f"{settings.simulator_url.rstrip('/')}/_admin/faults"
    with httpx.Client(timeout=10) as http:
        if args.action == "list":
            response = http.get(endpoint)
        elif args.action == "add":
            response = http.post(endpoint, json=_params(args.rule))
        elif args.action == "remove":
            if len(args.rule) != 1:
                raise SystemExit("ehis simulators faults remove: give one rule id (see `list`)")
            response = http.delete(f"{endpoint}/{args.rule[0]}")
        else:
            response = http.delete(endpoint)
    if response.content:
        print(json.dumps(response.json(), ensure_ascii=False, indent=2))
    return 0 if response.is_success else 1


def _pki_init(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.security.pki import CRL_PATH, init_pki, pki_parties

    parties = pki_parties()
    crl_url = args.crl_url or settings.simulator_url.rstrip("/") + CRL_PATH
    try:
        pki = init_pki(args.dir, parties, force=args.force, crl_url=crl_url)
    except FileExistsError as exc:
        print(f"ehis pki init: {exc}", file=sys.stderr)
        return 2
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
