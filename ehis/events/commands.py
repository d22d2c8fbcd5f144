"""`ehis events tail|status`: a subsystem's events as they come, and how delivery stands.

`tail` logs in as the subsystem (its own queue: the broker lets no one else read it), prints each
event and acknowledges it once printed, so what it showed is taken off the queue; `--peek` gives
them back instead. Events carry personal data: printed to the operator's terminal on purpose,
never to the application log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from contextlib import AsyncExitStack, aclosing
from pathlib import Path
from typing import Any

from ehis.config import Settings
from ehis.events.models import Event
from ehis.events.status import delivery_status


def register(commands: argparse._SubParsersAction) -> None:
    """Add `events` (tail, status) to the `ehis` command."""
    events = commands.add_parser("events", help="events from the sources: tail a subsystem's, delivery status")
    actions = events.add_subparsers(dest="sub", required=True, metavar="ACTION")

    tail = actions.add_parser("tail", help="print the events a subsystem receives, as they come")
    tail.add_argument("--as", dest="subsystem", required=True,
                      help="the receiving subsystem, e.g. pensiya: the broker user it logs in as (password from "
                           "the credentials file when the URL has none)")
    tail.add_argument("--count", type=int, default=None, metavar="N", help="stop after N events")
    tail.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help="stop when no event came for this long")
    tail.add_argument("--peek", action="store_true",
                      help="leave the events on the queue (rejected back to it) instead of acknowledging them")
    tail.add_argument("--seen", type=Path, default=None, metavar="FILE",
                      help="remember acknowledged event ids in FILE, and skip repeats across runs")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--broker", default=None,
                      help="amqp://[user:password@]host:port/vhost (env EHIS_BROKER_URL); without a password "
                           "it logs in as --as, its password from the credentials file")
    tail.set_defaults(run=_tail)

    status = actions.add_parser("status", help="the outbox, the polled sources' cursors and the subscribers' queues")
    status.add_argument("--json", action="store_true", help="machine-readable")
    status.add_argument("--broker", default=None, help="where the subscribers' queues are (env EHIS_BROKER_URL)")
    status.set_defaults(run=_status)


def line(event: Event, deliveries: int = 1) -> str:
    """One event as the terminal shows it: when, what, about whom, its id, then its data."""
    again = f" (delivery {deliveries})" if deliveries > 1 else ""
    data = json.dumps(event.data, ensure_ascii=False, default=str, separators=(",", ":"))
    return (f"{event.occurred_at.isoformat(timespec='seconds')} {event.key} {event.subject or '-'} "
            f"{event.id}{again} {data}")


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.cli import Failure, UsageError

    if args.count is not None and args.count < 1:
        raise UsageError("--count must be 1 or more")
    if args.subsystem not in settings.event_access or not settings.event_access[args.subsystem]:
        receivers = ", ".join(sorted(s for s, kinds in settings.event_access.items() if kinds))
        raise UsageError(f"{args.subsystem} receives no event kind (event_access); those that do: {receivers}")
    from ehis.runtime import is_embedded

    if is_embedded(settings.broker_url):
        raise UsageError("events are delivered on RabbitMQ: give --broker amqp://… or set EHIS_BROKER_URL "
                         "(the embedded broker lives in one process)")
    shown = asyncio.run(_tail_events(args, settings))
    if args.count is not None and shown < args.count:
        raise Failure(f"{shown} of {args.count} events came within {args.timeout} s")
    return 0


async def _tail_events(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.bus.client import BusClient
    from ehis.bus.credentials import with_credentials
    from ehis.bus.envelope import Requester
    from ehis.bus.events import SeenEvents
    from ehis.bus.transport import open_transport

    url = with_credentials(settings.broker_url, args.subsystem, credentials=settings.broker_credentials_path,
                           prefix=settings.broker_user_prefix)
    seen = SeenEvents(str(args.seen)) if args.seen else None
    shown = 0
    async with open_transport(url, namespace=settings.bus_namespace) as transport:
        client = BusClient(transport, requester=Requester(subsystem=args.subsystem, user="ehis-events-tail",
                                                          purpose="events tail"))
        async with aclosing(client.events(seen=seen)) as stream:
            while args.count is None or shown < args.count:
                try:
                    async with asyncio.timeout(args.timeout):
                        received = await anext(stream)
                except (TimeoutError, StopAsyncIteration):
                    break
                event = received.event
                print(json.dumps(event.model_dump(mode="json"), ensure_ascii=False) if args.json
                      else line(event, received.deliveries), flush=True)
                shown += 1
                await (received.reject() if args.peek else received.ack())
    return shown


def _status(args: argparse.Namespace, settings: Settings) -> int:
    report = asyncio.run(status(settings))
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else render(report))
    return 0


async def status(settings: Settings) -> dict[str, Any]:
    """The delivery status (ehis.events.status), from the database and the broker `settings` name."""
    from ehis.bus.events import open_event_bus
    from ehis.events.store import open_event_store
    from ehis.events.wiring import receivers
    from ehis.runtime import is_embedded

    async with open_event_store(settings.database) as store, AsyncExitStack() as stack:
        bus = None
        if not is_embedded(settings.broker_url):
            from ehis.bus.broker_setup import WORKER_USER
            from ehis.bus.credentials import with_credentials

            url = with_credentials(settings.broker_url, WORKER_USER, credentials=settings.broker_credentials_path,
                                   prefix=settings.broker_user_prefix)
            try:
                bus = await stack.enter_async_context(open_event_bus(url, namespace=settings.bus_namespace))
            except Exception as exc:  # noqa: BLE001 - the broker's side is unknown; the database's still shown
                logging.getLogger(__name__).warning("events status: the broker does not answer (%s)",
                                                    type(exc).__name__)
        return await delivery_status(store, bus, list(receivers(settings)))


def render(report: dict[str, Any]) -> str:
    out = report["outbox"]
    lines = [f"outbox: {out['pending']} waiting" + (f", oldest {out['oldest_pending_seconds']} s"
                                                   if out["oldest_pending_seconds"] is not None else ""),
             f"publisher: {report['publisher'] or 'none holds the lease'}", "sources:"]
    for code, s in report["sources"].items():
        polled = (f", cursor {s['cursor']!r} polled {s['polled_seconds_ago']} s ago by {s['poller'] or 'no one now'}"
                  if s["polled_seconds_ago"] is not None else "")
        lines.append(f"  {code}: {s['received']} received{polled}")
    if not report["sources"]:
        lines.append("  none yet")
    lines.append("subscribers (events waiting in their queues):")
    lines += [f"  {sub}: {'unknown' if n is None else n}" for sub, n in report["subscribers"].items()]
    return "\n".join(lines)

