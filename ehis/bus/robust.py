"""A robust AMQP connection that comes back fast and moves between broker nodes.

aio-pika's `RobustConnection` retries every `reconnect_interval` (5 s by default) against one
address: a connection dropped by a broker that is up again at once still waits 5 s, and a worker
whose node died keeps knocking on the dead node. `HubConnection` instead

* tries again at once, then after short, growing, jittered pauses (0.05 s, x2, at most 2 s:
  a restarted broker is back in well under a second, a long outage costs one try every ~2 s, and
  the jitter keeps a hundred clients from reconnecting in step);
* takes several broker addresses (`amqp://u:p@host1:5672,host2:5673/vhost`, the form other AMQP
  clients accept) and on each attempt tries them all, starting after the one that failed, so a
  client whose node died moves to a live one in the same attempt;
* logs "broker connection restored after N s" (host and port only, never the login).

It overrides `reconnect_interval` (read by aio-pika before each pause) and the one step of
aio-pika's retry loop that opens a transport (`_RobustConnection__connect_transport`, private in
aio-pika 9/10; `tests/bus/test_reconnect.py` fails if an upgrade renames it).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from aio_pika.abc import AbstractRobustConnection
from aio_pika.robust_connection import RobustConnection
from yarl import URL

from ehis.bus.connection import addresses
from ehis.security.tls import broker_context

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.05  # seconds before the second attempt
GROWTH = 2.0
MAX_PAUSE = 2.0
JITTER = 0.25  # +-25 % of each pause


def pause(failures: int, rng: random.Random | None = None) -> float:
    """The pause after `failures` failed attempts in a row (0 before any): short, growing, jittered."""
    if failures <= 0:
        return 0.0
    base = min(MAX_PAUSE, FIRST_PAUSE * GROWTH ** (failures - 1))
    return base * (1 + JITTER * (2 * (rng or random).random() - 1))


class HubConnection(RobustConnection):
    """`RobustConnection` with fast jittered retries over several broker addresses (module doc)."""

    def __init__(self, url: URL, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        self._addresses: list[URL] = [URL(url)]
        self._current = 0
        self._failures = 0
        self._lost_at: float | None = None
        self._pause = 0.0
        super().__init__(url, loop=loop, **kwargs)

    # aio-pika sets `url` in __init__ (and on update_secret): keep every address, read the current one.
    @property  # type: ignore[override]
    def url(self) -> URL:
        return self._addresses[self._current]

    @url.setter
    def url(self, value: URL) -> None:
        self._addresses = [URL(value)]
        self._current = 0

    def use_addresses(self, urls: list[str]) -> None:
        """Every broker address this connection may use, in order of preference."""
        self._addresses = [URL(u) for u in urls]
        self._current = 0

    @property
    def address(self) -> str:
        """host:port of the node in use (for logs: no login)."""
        return f"{self.url.host}:{self.url.port}"

    @property  # type: ignore[override]
    def reconnect_interval(self) -> float:
        return self._pause

    @reconnect_interval.setter
    def reconnect_interval(self, value: float) -> None:
        """aio-pika's fixed interval is ignored: the pauses follow `pause`."""

    async def _on_connection_close(self, closing: asyncio.Future) -> None:
        if self._lost_at is None and not (self._close_called or self.is_closed):
            self._lost_at = time.monotonic()
            log.warning("broker connection to %s lost; reconnecting", self.address)
        await super()._on_connection_close(closing)

    async def _RobustConnection__connect_transport(self) -> None:
        """One attempt: each address once, from the one after the node that failed last."""
        count = len(self._addresses)
        start = (self._current + (1 if self._lost_at is not None or self._failures else 0)) % count
        error: BaseException | None = None
        for step in range(count):
            self._current = (start + step) % count
            try:
                await RobustConnection._RobustConnection__connect_transport(self)  # type: ignore[attr-defined]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next address, then aio-pika's loop decides
                error = exc
                continue
            self._restored()
            return
        self._failures += 1
        self._pause = pause(self._failures)
        assert error is not None
        raise error

    def _restored(self) -> None:
        if self._lost_at is not None:
            log.warning("broker connection restored after %.2f s (%s, %d failed attempts)",
                        time.monotonic() - self._lost_at, self.address, self._failures)
        self._lost_at = None
        self._failures = 0
        self._pause = 0.0


CONNECT_TIMEOUT = 5.0  # seconds per address and attempt: a black-holed node must not stall the others


async def connect(url: str, *, name: str, timeout: float = CONNECT_TIMEOUT) -> AbstractRobustConnection:
    """A `HubConnection` to the broker(s) of `url` (comma-separated hosts allowed), named `name`
    in the management UI; TLS from the URL (ehis.security.tls). Fails at once when no address
    answers (aio-pika's fail_fast): a process that cannot start says so."""
    urls = addresses(url)
    connection = HubConnection(URL(urls[0]), client_properties={"connection_name": name},
                               ssl_context=broker_context(urls[0]))
    connection.use_addresses(urls)
    await connection.connect(timeout=timeout)
    return connection


