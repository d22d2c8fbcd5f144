"""The breaker under ordinary faults and under an outage, with the simulators on a real socket
(uvicorn) and the hub in process: 20 % mixed faults and 20 % slow answers at concurrency 32 must
not open it; a source down for 5 s must cost little more than those 5 s."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx

from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.runtime import RunningHub
from ehis.simulators import create_app
from ehis.simulators.faults import parse_rules
from ehis.testing import free_port, hub_in_process
from tests.integration.servers import serving

CALLER = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")
FAILURE_KINDS = ("http_503", "reset", "soap_fault", "malformed")


def mixed_faults(share: float = 0.2, system: str = "din") -> list[dict]:
    """`share` of requests failing, spread evenly over FAILURE_KINDS (rules are tried in order, so
    each later one fires with the probability that keeps the four equal), plus `share` slowed by
    150-450 ms."""
    each, rules, left = share / len(FAILURE_KINDS), [], 1.0
    for kind in FAILURE_KINDS:
        rules.append({"kind": kind, "system": system, "probability": min(1.0, each / left)})
        left -= each
    return [{"kind": "latency", "system": system, "probability": share, "latency_ms": 150, "jitter_ms": 300}, *rules]


def fins(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return list(dict.fromkeys("".join(rng.choices(alphabet, k=7)) for _ in range(count * 2)))[:count]


async def load(hub: RunningHub, people: list[str], concurrency: int = 32,
               stop: asyncio.Event | None = None) -> list[tuple[float, Reply]]:
    """Requests for `people` (fresh: the source is asked each time) `concurrency` at a time;
    each reply with the monotonic time it came."""
    client = BusClient(hub.transport, requester=CALLER, default_timeout=5)
    queue = iter(people)
    out: list[tuple[float, Reply]] = []

    async def one_caller() -> None:
        for fin in queue:
            if stop is not None and stop.is_set():
                return
            reply = await client.request("din.person", {"fin": fin}, fresh=True, timeout=5)
            out.append((time.monotonic(), reply))

    await asyncio.gather(*(one_caller() for _ in range(concurrency)))
    return out


async def test_20_percent_faults_and_latency_at_concurrency_32_leave_99_percent_success(tmp_path: Path, pki) -> None:
    app = create_app(pki, rng=random.Random(11))
    app.state.faults.add(parse_rules(mixed_faults()))
    port = free_port()
    with serving(app, port):
        async with hub_in_process(tmp_path, pki, transport=httpx.AsyncHTTPTransport(),
                                  simulator_url=f"http://127.0.0.1:{port}") as hub:
            replies = [r for _, r in await load(hub, fins(640, seed=21))]
            states = {s.source: s.state.value for s in hub.parts.hub.source_statuses()}
    fired = {r.kind.value: r.fired for r in app.state.faults.rules()}
    ok = sum(r.status == "ok" for r in replies)
    errors = sorted({r.error.code for r in replies if r.error is not None})
    print(f"success {ok / len(replies):.4f} errors {errors} fired {fired}")
    assert len(replies) == 640
    assert sum(fired[k] for k in FAILURE_KINDS) > 0.1 * 640  # the faults did fire
    assert ok / len(replies) >= 0.99, (ok, errors)
    assert states["din"] == "closed"


async def source_outage(base: Path, pki, seed: int) -> tuple[list[tuple[float, Reply]], float, float]:
    """din down (HTTP 503) for 5 s under load at concurrency 8, over real HTTP: (time, reply) of
    every request, and when the source went down and came back (the test asserts, the bench prints)."""
    app = create_app(pki, rng=random.Random(seed))
    port = free_port()
    with serving(app, port):
        async with hub_in_process(base, pki, transport=httpx.AsyncHTTPTransport(),
                                  simulator_url=f"http://127.0.0.1:{port}") as hub:
            stop = asyncio.Event()
            running = asyncio.create_task(load(hub, fins(100_000, seed=seed + 10), concurrency=8, stop=stop))
            await asyncio.sleep(1.0)
            [rule] = app.state.faults.add(parse_rules({"kind": "http_503", "system": "din"}))
            down = time.monotonic()
            await asyncio.sleep(5.0)
            app.state.faults.remove(rule.id)
            up = time.monotonic()
            await asyncio.sleep(12.0)
            stop.set()
            return await running, down, up


async def test_a_5_second_outage_costs_little_more_than_5_seconds(tmp_path: Path, pki) -> None:
    replies, down, up = await source_outage(tmp_path, pki, seed=12)
    failed = [at for at, r in replies if r.error is not None]
    assert failed, "the outage was not seen"
    recovered_after = max(failed) - up  # the last failure, measured from the source's return
    print(f"failures for {max(failed) - down:.2f} s, last {recovered_after:.2f} s after the source returned")
    assert all(r.status == "ok" for at, r in replies if at > up + 8.0)
    # the old breaker (fixed 30 s reset, one probe) failed for about 25 s after such an outage
    assert max(failed) - down < 5.0 + 6.0, f"failures for {max(failed) - down:.1f} s, {recovered_after:.1f} s after"
