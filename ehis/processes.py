"""`ehis serve --processes N`: N worker processes on one host, one admin endpoint for them.

A worker is one asyncio loop, and signing, verifying and parsing XML are CPU work: one process
uses at most one core. N processes consume the same RabbitMQ queues (the broker spreads the
requests), share the exchange log (SQLite under `BEGIN IMMEDIATE`, or PostgreSQL) and, with
`cache_url = "redis://…"`, the cache. On `memory://` each process would have a bus of its own
that nobody else reaches, so N > 1 needs RabbitMQ.

The parent starts each child as `python -m ehis serve` with its admin app on a unix socket in a
private directory, serves one admin app over all of them (ehis.monitor.aggregate) on
`admin_listen`, forwards SIGTERM/SIGINT to every child and waits for them to finish the requests
in hand. If a child dies, the parent stops the others and exits 1, for the service manager to
restart the whole: half a worker pool that looks healthy is worse than a clear restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ehis.bootstrap import ConfigurationError
from ehis.bus.transport import open_transport
from ehis.config import Settings
from ehis.monitor.aggregate import create_aggregate_app, worker_client
from ehis.monitor.server import serve_admin
from ehis.runtime import ServeError, bind_admin, describe_served, is_embedded, redacted

log = logging.getLogger(__name__)

WORKER_OF = "EHIS_WORKER_OF"  # set in a child: the parent's pid
START_TIMEOUT = 120.0  # seconds every child gets to connect and start consuming
STOP_GRACE = 30.0  # seconds the children get to finish the requests in hand


@dataclass
class Child:
    index: int
    socket: Path
    proc: asyncio.subprocess.Process | None = None
    client: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


async def serve_processes(settings: Settings, count: int, services: list[str]) -> None:
    """Run `count` worker processes until cancelled; `settings.broker_url` holds its login already.

    Raises ServeError when one cannot start or dies.
    """
    if is_embedded(settings.broker_url):
        raise ConfigurationError("--processes needs RabbitMQ: on memory:// each process would have a bus of its own "
                         "that no caller reaches; give --broker amqp://host:port/vhost (or EHIS_BROKER_URL)")
    sock = bind_admin(settings.admin_listen)
    try:
        async with open_transport(settings.broker_url, namespace=settings.bus_namespace):
            pass  # one clear message now for a wrong password or vhost, rather than N later
        with tempfile.TemporaryDirectory(prefix="ehis-workers-") as tmp:
            children = [Child(i, Path(tmp) / f"worker-{i}.sock") for i in range(1, count + 1)]
            try:
                await _run(settings, children, sock, services)
            finally:
                await _stop(children)
    finally:
        if sock is not None:
            sock.close()


async def _run(settings: Settings, children: list[Child], sock: socket.socket | None, services: list[str]) -> None:
    env = _child_env(settings)
    for child in children:
        child.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ehis", "serve",
            # one endpoint for the sources' pushes, in the first child (pollers and the publisher
            # run in every child and take turns by lease)
            env=env | {"EHIS_ADMIN_LISTEN": f"unix:{child.socket}",
                       "EHIS_EVENTS_LISTEN": settings.events_listen if child.index == 1 else ""},
            start_new_session=True)  # a terminal's Ctrl-C reaches the parent only, which stops them in order
        child.client = worker_client(str(child.socket))
    await _started(children)
    app = create_aggregate_app([c.client for c in children if c.client is not None],
                               [c.proc.pid if c.proc else None for c in children])
    where = ""
    async with contextlib.AsyncExitStack() as stack:
        if sock is not None:
            url = await stack.enter_async_context(serve_admin(app, sock=sock))
            where = f"; admin page, metrics and health on {url}/admin"
        log.info("%d worker processes serving %s on %s%s", len(children), describe_served(services),
                 redacted(settings.broker_url), where)
        ended = await _first_exit(children)
        raise ServeError(f"worker process {ended.index} (pid {ended.proc.pid if ended.proc else '?'}) exited with "
                         f"code {ended.proc.returncode if ended.proc else '?'}; the others were stopped")


def _child_env(settings: Settings) -> dict[str, str]:
    """What a child needs that the command line or the parent decided (the login is in the URL)."""
    import json

    env = dict(os.environ) | {"EHIS_BROKER_URL": settings.broker_url, WORKER_OF: str(os.getpid())}
    if settings.serve_sources is not None:
        env["EHIS_SERVE_SOURCES"] = json.dumps(settings.serve_sources)
    return env


async def _started(children: list[Child]) -> None:
    """Wait until every child's admin app answers; raise if one exits first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    waiting = list(children)
    while waiting:
        for child in list(waiting):
            if not child.running:
                code = child.proc.returncode if child.proc else None
                raise ServeError(f"worker process {child.index} exited with code {code} while starting "
                                 "(its own message is above)")
            assert child.client is not None
            with contextlib.suppress(httpx.HTTPError, OSError):
                if (await child.client.get("/health/live")).status_code == 200:
                    waiting.remove(child)
        if loop.time() > deadline:
            raise ServeError(f"{len(waiting)} worker process(es) did not start within {START_TIMEOUT:.0f} s")
        if waiting:
            await asyncio.sleep(0.1)


async def _first_exit(children: list[Child]) -> Child:
    waits = {asyncio.ensure_future(c.proc.wait()): c for c in children if c.proc is not None}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    return waits[next(iter(done))]


async def _stop(children: list[Child]) -> None:
    """SIGTERM every child still running, wait up to STOP_GRACE seconds, then SIGKILL the rest."""
    running = [c for c in children if c.running]
    for child in running:
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(signal.SIGTERM)
    if running:
        log.info("stopping %d worker processes: they finish the requests in hand", len(running))
        waits = [asyncio.ensure_future(c.proc.wait()) for c in running if c.proc is not None]
        _, late = await asyncio.wait(waits, timeout=STOP_GRACE)
        for child in running:
            if child.running and child.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
        if late:
            await asyncio.wait(late, timeout=5)
    for child in children:
        if child.client is not None:
            await child.client.aclose()


def die_with_parent(environ: Mapping[str, str] = os.environ) -> None:
    """In a child: be sent SIGTERM when the parent dies, however it dies (Linux), so no worker is
    left consuming after its supervisor was killed."""
    parent = environ.get(WORKER_OF)
    if not parent or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if str(os.getppid()) != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
