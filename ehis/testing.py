"""Test helpers shipped with the package: the hub's parts as real processes on real sockets.

Used by the end to end tests and the benchmarks (nameko ships its testing helpers the same way).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from ehis.runtime import RunningHub
    from ehis.security.pki import Pki


def missing_service(message: str) -> None:
    """A service a test needs does not answer (or a tool it needs is missing): skip on a laptop,
    also from a module's top level; fail when CI is set, so a broken service can never turn the
    suite into silent skips. `message` names no password."""
    import pytest  # only tests call this

    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message, allow_module_level=True)


def where(url: str, default_port: int) -> str:
    """host:port of a service URL, for messages (never its password)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or default_port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ehis_env(**values: str) -> dict[str, str]:
    """The environment of processes a test or benchmark starts: `values` as EHIS_* settings, an
    events endpoint of their own (never a running hub's :8703), which their simulators push to,
    and no admin endpoint unless `admin_listen` is given (never a running hub's :8702)."""
    if "events_listen" not in values:
        port = free_port()
        values = {"events_listen": f"127.0.0.1:{port}", "hub_events_url": f"http://127.0.0.1:{port}/events", **values}
    values = {"admin_listen": "", **values}
    env = dict(os.environ)
    env.update({f"EHIS_{k.upper()}": v for k, v in values.items()})
    return env


def run_ehis(args: Sequence[str], env: dict[str, str], *, timeout: float = 60,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m ehis <args>` to its end, output captured (a one-shot command of a test)."""
    return subprocess.run([sys.executable, "-m", "ehis", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, check=False)


class Running:
    """A started process whose output a thread drains (a full pipe would block the process)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: deque[str] = deque(maxlen=20_000)
        assert proc.stdout is not None
        threading.Thread(target=self._drain, args=(proc.stdout,), daemon=True).start()

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready within {timeout} s:\n{self.output()}")
            time.sleep(0.05)


@contextmanager
def process(args: Sequence[str], env: dict[str, str], *, ready: str, timeout: float = 30.0) -> Iterator[Running]:
    """Run `python -m <args>` until `ready` appears in its output; terminate it on exit."""
    proc = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        running = Running(proc)
        running.wait_for(ready, timeout)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def simulators(env: dict[str, str], url: str) -> Iterator[Running]:
    with process(["ehis", "simulators", "serve"], env, ready="Uvicorn running") as proc:
        httpx.get(f"{url}/_admin/health", timeout=5).raise_for_status()
        yield proc


@contextmanager
def worker(env: dict[str, str]) -> Iterator[Running]:
    with process(["ehis", "serve"], env, ready="worker serving") as proc:
        yield proc


@asynccontextmanager
async def hub_in_process(data_dir: Path, pki: Pki, simulators: Any = None, *,
                         transport: httpx.AsyncBaseTransport | None = None, events: bool = False,
                         **settings: Any) -> AsyncIterator[RunningHub]:
    """The whole hub in this process on its own memory:// bus, its SQLite log in `data_dir`, the
    simulators' ASGI app (or `transport`, e.g. a man in the middle before it) as every source;
    `settings` override the rest (e.g. cache_url). `events`: with the pollers, the publisher and
    (when `events_listen` is given) the inbound endpoint."""
    from ehis.config import Settings
    from ehis.runtime import embedded_hub

    config = Settings(**{
        "data_dir": data_dir, "pki_dir": pki.directory, "broker_url": f"memory://{uuid.uuid4().hex}",
        "simulator_url": "http://simulators.test", "admin_listen": "", "events_listen": "", **settings,
    })
    async with embedded_hub(config, http_transport=transport or httpx.ASGITransport(app=simulators),
                            events=events) as running:
        yield running
