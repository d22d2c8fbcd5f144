"""Test helpers shipped with the package: the hub's parts as real processes on real sockets.

Used by the end to end tests and the benchmarks (nameko ships its testing helpers the same way).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ehis_env(**values: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"EHIS_{k.upper()}": v for k, v in values.items()})
    return env


@contextmanager
def process(args: Sequence[str], env: dict[str, str], *, ready: str, timeout: float = 30.0) -> Iterator[subprocess.Popen]:
    """Run `python -m <args>` until `ready` appears in its output; terminate it on exit."""
    proc = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        seen = []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(f"{args} exited with {proc.returncode}:\n{''.join(seen)}")
            seen.append(line)
            if ready in line:
                break
        else:
            raise RuntimeError(f"{args} not ready within {timeout} s:\n{''.join(seen)}")
        os.set_blocking(proc.stdout.fileno(), False)  # keep reading optional; never block on it
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def simulators(env: dict[str, str], url: str) -> Iterator[subprocess.Popen]:
    with process(["ehis", "simulators", "serve"], env, ready="Uvicorn running") as proc:
        httpx.get(f"{url}/_admin/health", timeout=5).raise_for_status()
        yield proc


@contextmanager
def worker(env: dict[str, str]) -> Iterator[subprocess.Popen]:
    with process(["ehis", "serve"], env, ready="worker serving") as proc:
        yield proc
