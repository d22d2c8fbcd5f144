"""Composite services under per-source latency: do the parts really run at once?

The simulators answer each source after a latency of its own (50 to 200 ms, different per
source); the hub runs on RabbitMQ with a worker process. Every request is `fresh` (no stored
answer), so each composite asks all its parts again. Printed, from one run:

- each part service alone through the hub (p50), the slowest of them, and the sum of them;
- each composite (p50, p99), and the ratios: composite / slowest part, composite / sum of parts.

The household means test has two stages by nature: the household (found through the
applicant's district: din.person, then yih.household) must be known before its members' facts
can be asked; its critical path is printed too, and the hub's own work for all its parts (the
same composite with no injected latency: signing, verifying and mapping some fifty exchanges on
two shared cores), which adds to the critical path rather than overlapping it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import bench
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.bus.transport import open_transport
from ehis.composites.means_test import FACTS
from ehis.sources import sources
from ehis.testing import simulators, worker

APPLICANT = "P9TCV69"  # a household of four
PERIOD = {"from": "2024-01-01", "to": "2024-12-31"}
CITIZEN, EMPLOYER = "5GXM4DZ", "1402345671"


def latencies() -> dict[str, int]:
    """50..200 ms, a different one per source, spread over the statute's order."""
    codes = list(sources())
    return {code: 50 + round(150 * i / (len(codes) - 1)) for i, code in enumerate(codes)}


async def timed(client: BusClient, service: str, params: dict, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        reply = await client.request(service, params, fresh=True, timeout=30)
        if reply.status != "ok":
            raise RuntimeError(f"{service}: {reply.error}")
        times.append((time.perf_counter() - started) * 1000)
    return times


def p50(times: list[float]) -> float:
    return statistics.median(times)


def p99(times: list[float]) -> float:
    return sorted(times)[min(len(times) - 1, int(len(times) * 0.99))]


async def run(count: int, broker: str) -> None:
    delays = latencies()
    async with bench(Path(tempfile.mkdtemp(prefix="ehis-bench-comp-")), broker) as b:
        with simulators(b.env, b.sim_url), worker(b.env):
            async with open_transport(b.accounts.url_for("vemtas"), namespace="ehis") as bus:
                client = BusClient(bus, requester=Requester(subsystem="vemtas", user="bench", purpose="bench"))
                await timed(client, "vemtas.means-test", {"fin": APPLICANT, **PERIOD}, 3)  # warm
                floor = p50(await timed(client, "vemtas.means-test", {"fin": APPLICANT, **PERIOD}, count))
            async with httpx.AsyncClient(base_url=b.sim_url) as admin:
                rules = [{"kind": "latency", "system": code, "latency_ms": ms} for code, ms in delays.items()]
                (await admin.post("/_admin/faults", json=rules)).raise_for_status()
            async with open_transport(b.accounts.url_for("vemtas"), namespace="ehis") as vemtas_bus, \
                    open_transport(b.accounts.url_for("emek-muqavilesi"), namespace="ehis") as emek_bus:
                vemtas = BusClient(vemtas_bus, requester=Requester(subsystem="vemtas", user="bench", purpose="bench"))
                emek = BusClient(emek_bus, requester=Requester(subsystem="emek-muqavilesi", user="bench",
                                                               purpose="bench"))
                await report_prefill(emek, count, delays)
                await report_means_test(vemtas, count, delays, floor)


async def report_prefill(client: BusClient, count: int, delays: dict[str, int]) -> None:
    parts = {"din.person": {"fin": CITIZEN}, "vergiler.taxpayer": {"voen": EMPLOYER}}
    alone = {s: p50(await timed(client, s, p, count)) for s, p in parts.items()}
    composite = await timed(client, "emek.contract-prefill", {"employer_voen": EMPLOYER, "employee_fin": CITIZEN},
                            count)
    _print("emek.contract-prefill (a citizen: two parts at once)", alone, composite, delays)


async def report_means_test(client: BusClient, count: int, delays: dict[str, int], floor: float) -> None:
    household = await client.call("yih.household", {"fin": APPLICANT})
    members = [m["fin"] for m in household["members"]]
    alone: dict[str, float] = {}
    for service, dated in FACTS.values():
        alone[service] = p50(await timed(client, service, {"fin": APPLICANT, **(PERIOD if dated else {})}, count))
    alone["dsk.subsistence-minimum"] = p50(await timed(client, "dsk.subsistence-minimum",
                                                       {"year": 2024, "group": "total"}, count))
    routing = p50(await timed(client, "yih.household", {"fin": APPLICANT}, count))  # din.person, then yih
    composite = await timed(client, "vemtas.means-test", {"fin": APPLICANT, **PERIOD}, count)
    total_parts = routing + sum(v for k, v in alone.items() if k != "dsk.subsistence-minimum") * len(members) \
        + alone["dsk.subsistence-minimum"]
    _print(f"vemtas.means-test (a household of {len(members)}: {len(members) * len(FACTS) + 3} parts)",
           alone, composite, delays, total=total_parts)
    slowest = max(alone.values())
    print(f"  critical path: the household (din.person then yih.household, p50 {routing:.0f} ms) then the "
          f"slowest fact ({slowest:.0f} ms) = {routing + slowest:.0f} ms; composite / critical path "
          f"{p50(composite) / (routing + slowest):.2f}")
    print(f"  the hub's own work for every part, measured with no injected latency: p50 {floor:.0f} ms; "
          f"composite / (critical path + that) {p50(composite) / (routing + slowest + floor):.2f}")


def _print(title: str, alone: dict[str, float], composite: list[float], delays: dict[str, int],
           total: float | None = None) -> None:
    print(f"\n{title}")
    for service, ms in sorted(alone.items(), key=lambda kv: kv[1]):
        print(f"  part {service:<26} injected {delays[service.split('.')[0]]:>3} ms   p50 {ms:7.1f} ms")
    slowest = max(alone.values())
    total = total if total is not None else sum(alone.values())
    c50 = p50(composite)
    print(f"  composite p50 {c50:.1f} ms, p99 {p99(composite):.1f} ms over {len(composite)} requests")
    print(f"  composite / slowest part {c50 / slowest:.2f}   composite / sum of parts {c50 / total:.3f} "
          f"(sum {total:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="requests per measurement")
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    asyncio.run(run(args.count, args.broker))


if __name__ == "__main__":
    main()
