"""Fixtures shared by every test directory."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator

import pytest

from ehis.security.pki import Pki, init_pki, pki_parties
from ehis.testing import missing_service, where

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# compiled contract plans go to a cache of the tests' own (processes they start inherit it)
os.environ.setdefault("EHIS_CONTRACT_CACHE", tempfile.mkdtemp(prefix="ehis-test-contracts-"))


async def _broker_answers(url: str) -> str | None:
    """None when an AMQP handshake with `url` succeeds, else why not."""
    import aio_pika

    try:
        connection = await asyncio.wait_for(aio_pika.connect(url), timeout=5)
    except Exception as exc:  # noqa: BLE001 - refused, timed out, bad credentials: all mean "no broker"
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The broker URL (EHIS_TEST_AMQP_URL or the local default).

    A laptop without RabbitMQ skips these tests; with CI set they fail instead, so a broken
    broker can never turn the integration suite into silent skips.
    """
    url = os.environ.get("EHIS_TEST_AMQP_URL", DEFAULT_AMQP_URL)
    problem = asyncio.run(_broker_answers(url))
    if problem is not None:
        missing_service(f"RabbitMQ at {where(url, 5672)} does not answer ({problem})")
    yield url


@pytest.fixture(scope="session")
def admin_url(rabbitmq_url: str) -> str:
    """EHIS_TEST_ADMIN_URL, or the management API on the AMQP broker's host with its login."""
    from urllib.parse import urlsplit

    import httpx

    amqp = urlsplit(rabbitmq_url)
    login = f"{amqp.username or 'guest'}:{amqp.password or 'guest'}"
    url = os.environ.get("EHIS_TEST_ADMIN_URL") or f"http://{login}@{amqp.hostname}:15672"
    try:
        httpx.get(f"http://{amqp.hostname}:15672/api/overview", auth=(urlsplit(url).username or "guest",
                                                                      urlsplit(url).password or "guest"),
                  timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        missing_service(f"the RabbitMQ management API does not answer ({type(exc).__name__})")
    return url


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One test PKI for the session, as `ehis pki init` makes it: every party of the catalogue."""
    return init_pki(tmp_path_factory.mktemp("pki") / "pki", pki_parties())


HANG_REPORT_AFTER = 240.0  # seconds; pytest-timeout (pyproject) fails the test at 300


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """A test still running after HANG_REPORT_AFTER prints every thread's stack and every pending
    asyncio task's (to the test's captured stderr): pytest-timeout alone shows only an idle event
    loop, which does not say what a hung test waits for."""
    import threading

    timer = threading.Timer(HANG_REPORT_AFTER, _report_hang, args=(item.nodeid,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _report_hang(nodeid: str) -> None:
    import gc
    import sys
    import traceback

    out = sys.stderr
    print(f"\n=== {nodeid} still running after {HANG_REPORT_AFTER:.0f} s: threads ===", file=out)
    for ident, frame in sys._current_frames().items():
        print(f"--- thread {ident}", file=out)
        traceback.print_stack(frame, file=out)
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()]
    for loop in loops:
        print(f"=== loop {loop!r} (running: {loop.is_running()}): tasks ===", file=out)
        for task in list(asyncio.all_tasks(loop)):
            print(f"--- {task.get_name()}", file=out)
            for where_ in _awaiting(task.get_coro()):
                print(f"    {where_}", file=out)
    out.flush()


def _awaiting(coro: object) -> list[str]:
    """file:line of each coroutine in the chain of awaits `coro` hangs in (print_stack shows the top one only)."""
    chain = []
    while coro is not None and len(chain) < 60:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain or [repr(coro)]
