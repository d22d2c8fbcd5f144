"""What the chaos and cluster tests share: processes one can kill and restart, bounded load over
the real bus, and the checks every scenario ends with (0 hung, 0 lost, one record per request id)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from ehis.audit.log import open_log
from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.testing import Running

CALLER = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")
DEADLINE = 5.0
SLACK = 1.0  # a reply later than its deadline by more than this is "hung"


class Proc:
    """`python -m ehis <args>` that a test may SIGKILL and start again."""

    def __init__(self, args: list[str], env: dict[str, str], ready: str) -> None:
        self.args, self.env, self.ready = args, env, ready
        self.running: Running | None = None

    def start(self, timeout: float = 60) -> Proc:
        proc = subprocess.Popen([sys.executable, "-m", "ehis", *self.args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.running = Running(proc)
        self.running.wait_for(self.ready, timeout)
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye to the broker, unacked requests stay with it."""
        if self.running is not None and self.running.proc.poll() is None:
            os.kill(self.running.proc.pid, signal.SIGKILL)
            self.running.proc.wait()

    def stop(self) -> None:
        if self.running is not None and self.running.proc.poll() is None:
            self.running.proc.terminate()
            try:
                self.running.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.running.output() if self.running else ""


@dataclass
class Outcome:
    request_id: str
    status: str
    code: str | None
    took: float


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "ok"]

    @property
    def success(self) -> float:
        return len(self.ok) / len(self.outcomes)

    @property
    def hung(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.took > DEADLINE + SLACK]

    def codes(self) -> Counter[str]:
        return Counter(o.code or "ok" for o in self.outcomes)


async def load(url: str, fins: list[str], *, concurrency: int = 8, deadline: float = DEADLINE) -> Run:
    """Requests for `fins` (fresh: the source is asked each time), `concurrency` at a time, each with
    `deadline`; a call still waiting at deadline + 2 x SLACK is cut off and counted hung."""
    run = Run()
    started = time.monotonic()
    async with BusClient.open(url, requester=CALLER) as client:
        queue = iter(fins)

        async def one_caller() -> None:
            for fin in queue:
                begun = time.monotonic()
                try:
                    reply: Reply = await asyncio.wait_for(
                        client.request("din.person", {"fin": fin}, fresh=True, timeout=deadline),
                        deadline + 2 * SLACK)
                except TimeoutError:
                    run.outcomes.append(Outcome("?", "hung", "hung", time.monotonic() - begun))
                    continue
                code = str(getattr(reply.error.code, "value", reply.error.code)) if reply.error else None
                run.outcomes.append(Outcome(reply.id, reply.status, code, time.monotonic() - begun))

        await asyncio.gather(*(one_caller() for _ in range(concurrency)))
    run.seconds = time.monotonic() - started
    return run


def fins(count: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return list(dict.fromkeys("".join(rng.choices(alphabet, k=7)) for _ in range(count * 2)))[:count]


async def records_of(database_url: str, ids: set[str], *, within: float = 40.0) -> dict[str, list]:
    """The log's records of `ids`, by request id, once every id whose reply came from a worker is
    there (spools replay after an outage) or `within` s passed."""
    deadline = time.monotonic() + within
    while True:
        async with open_log(database_url) as log:
            found = await log.search(LogQuery(service="din.person", limit=10_000))
        by_id: dict[str, list] = {}
        for record in found:
            if record.request_id in ids:
                by_id.setdefault(record.request_id, []).append(record)
        if set(by_id) >= ids or time.monotonic() > deadline:
            return by_id
        await asyncio.sleep(0.5)


# Replies a caller makes up itself (no worker answered): the request may never have been handled.
CALLER_SIDE = {"deadline_exceeded", "unavailable"}


async def check(run: Run, database_url: str, label: str) -> dict[str, list]:
    """0 hung, 0 `ok` without a record, one record per request id, each worker-made reply recorded."""
    assert not run.hung, f"{label}: {len(run.hung)} callers hung"
    answered = {o.request_id for o in run.outcomes if o.code not in CALLER_SIDE}
    by_id = await records_of(database_url, answered)
    missing = answered - set(by_id)
    assert not missing, f"{label}: {len(missing)} replies without a record (lost), codes {run.codes()}"
    dupes = {k: len(v) for k, v in by_id.items() if len(v) > 1}
    assert not dupes, f"{label}: request ids recorded more than once: {dupes}"
    everything = await records_of(database_url, {o.request_id for o in run.outcomes}, within=0)
    dupes = {k: len(v) for k, v in everything.items() if len(v) > 1}
    assert not dupes, f"{label}: request ids recorded more than once: {dupes}"
    return everything


def report(label: str, run: Run, extra: str = "") -> None:
    times = sorted(o.took for o in run.outcomes)
    print(f"\n{label}: {len(run.outcomes)} requests in {run.seconds:.1f} s, success {run.success:.2%}, "
          f"p99 {times[int(len(times) * 0.99) - 1]:.2f} s, max {times[-1]:.2f} s, {dict(run.codes())} {extra}")
