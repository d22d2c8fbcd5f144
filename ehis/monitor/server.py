"""Serve the admin app from inside the hub's own event loop.

The hub already runs an event loop for the bus; the admin endpoints share it rather than a
thread or a process, so /health/ready and /metrics read the live breakers without locking.
uvicorn is told not to touch signals (the hub owns them) and not to run a lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp

SHUTDOWN_GRACE = 5.0  # seconds open connections get to finish when the hub stops


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn releases call this instead
        return None


def parse_listen(value: str) -> tuple[str, int] | None:
    """`admin_listen` ("host:port", "[::1]:8702", "" = off) as (host, port)."""
    value = value.strip()
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"admin_listen must be host:port, not {value!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def bind_listen(value: str) -> socket.socket | None:
    """A listening socket for `admin_listen`: "host:port", or "unix:PATH" (a worker process of
    `ehis serve --processes N`, reached by its parent only); None when empty. A busy port is an
    OSError (EADDRINUSE) here, before anything else starts."""
    if value.strip().startswith("unix:"):
        path = value.strip().removeprefix("unix:")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock
    listen = parse_listen(value)
    return None if listen is None else _bind(*listen)


def _bind(host: str, port: int) -> socket.socket:
    """Bind here, not in uvicorn: a busy port is then an OSError, not uvicorn's sys.exit."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _base_url(sock: socket.socket) -> str:
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # a wildcard is not an address to dial
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serve_admin(app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *,
                      sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Run `app` on host:port (or on `sock`, bound already: `bind_listen`) for the duration of the
    block; yields the base URL once it accepts.

    Port 0 picks a free port, and the URL names the real one. Leaving the block stops accepting,
    gives open connections SHUTDOWN_GRACE seconds and waits for the server to finish.
    """
    sock = sock if sock is not None else _bind(host, port)
    url = _base_url(sock)
    path = sock.getsockname() if sock.family == socket.AF_UNIX else None  # uvicorn closes the socket
    # log_config None: uvicorn's loggers propagate to the hub's logging instead of replacing it
    config = uvicorn.Config(app, access_log=False, lifespan="off", log_config=None, log_level="warning",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE)
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"ehis-admin {url}")
    error: BaseException | None = None
    try:
        while not server.started:
            if task.done():
                cause = None if task.cancelled() else task.exception()
                raise RuntimeError("the admin server stopped before it accepted connections") from cause
            await asyncio.sleep(0.01)
        yield url
    finally:
        server.should_exit = True
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # cancelled while stopping: do not leave the server behind
            task.cancel()
            raise
        finally:
            sock.close()
            if path:
                _unlink(path)
        error = None if task.cancelled() else task.exception()  # retrieved here even when the block failed
    if error is not None:
        raise error


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
