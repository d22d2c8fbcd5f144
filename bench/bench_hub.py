"""Throughput and latency of the hub against its two ceilings, from one run on this machine.

    .venv/bin/python -m bench.bench_hub [--count N] [--broker URL]

1. raw:    aio-pika request/reply to an echo worker (payloads the size of the hub's)
2. direct: httpx POST of a pre-signed GetPerson request to the din simulator
3. hub:    din.person through the hub on amqp:// (BusClient -> RabbitMQ -> worker -> simulator)

Each at concurrency 1 and 64; the simulator, the hub worker and the echo worker are separate
processes, as in production. Ratios are taken within the run: the machine is shared and noisy.
Every scenario also reads the CPU seconds the worker, the simulator and this client used from
their process counters (/proc), printed per request: unlike req/s, that figure does not move
when others share the machine. The hub is measured once more at concurrency 16 with the exchange
log on (SQLite, the default), the issue's `hub worker CPU per request` figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from pathlib import Path

import httpx

from bench.harness import CALLER, FINS, Bench, CpuMeter, bench
from bench.raw_echo import RawClient
from bench.stats import Result, load
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.bus.transport import open_transport
from ehis.contracts import xroad
from ehis.security.signing import EnvelopeSigner
from ehis.sources import source
from ehis.testing import process, simulators, worker

REQUESTER = Requester(subsystem=CALLER, user="bench", purpose="benchmark")
CONCURRENCY = (1, 64)
CPU_CONCURRENCY = 16  # the issue's figure: worker CPU per uncached request at c=16, log on
Cpu = dict[tuple[str, int], dict[str, float]]


def presigned_request(pki) -> bytes:
    """One GetPerson request signed once: the direct path measures the simulator and HTTP alone."""
    service = source("din").service("din.person")
    headers = xroad.RequestHeaders(
        client=xroad.XRoadId("SUBSYSTEM", "AZ", "GOV", "EMSN", CALLER),
        service=xroad.XRoadId("SERVICE", "AZ", "GOV", "din", None, service.operation, "v1"),
        id=str(uuid.uuid4()), user_id="bench", issue="benchmark")
    payload = source("din").codec.encode(service.operation, {"fin": FINS[0]})
    return xroad.serialize(EnvelopeSigner(pki.operator()).sign(xroad.envelope(headers.elements(), payload)))


async def run(count: int, broker: str) -> tuple[list[Result], Cpu]:
    results: list[Result] = []
    cpu: Cpu = {}
    async with bench(Path(tempfile.mkdtemp(prefix="ehis-bench-")), broker) as b:
        await _scenarios(results, cpu, b, broker, count)
    return results, cpu


async def measured(results: list[Result], cpu: Cpu, meter: CpuMeter, name: str, call, c: int, count: int,
                   warmup: int = 50) -> None:
    """One load run with the CPU each process used during it, per request (warm-up included)."""
    with meter:
        results.append(result := await load(name, call, c, count, warmup=warmup))
    cpu[(name.split()[0], c)] = meter.per_request_ms(count + warmup)
    assert result.errors == 0 or name.startswith("raw"), f"{name}: {result.errors} errors"


async def _scenarios(results: list[Result], cpu: Cpu, b: Bench, broker: str, count: int) -> None:
    """Every source call is a miss (fresh=True): this measures the path through the source."""
    pki, sim_url, env = b.pki, b.sim_url, b.env
    with simulators(env, sim_url) as sim, worker(env) as hub_worker:
        meter = CpuMeter(worker=hub_worker.proc.pid, simulator=sim.proc.pid, client=os.getpid())
        # the sizes the raw echo must match: one real hub exchange
        async with open_transport(b.caller_url, namespace="ehis") as transport:
            client = BusClient(transport, requester=REQUESTER)
            sample = await client.request("din.person", {"fin": FINS[0]}, fresh=True)
            assert sample.status == "ok", sample.error
            request_size = len(client_request_bytes(FINS[0]))
            reply_size = len(sample.to_bytes())

            async def hub(i: int) -> bool:
                reply = await client.request("din.person", {"fin": FINS[i % len(FINS)]}, fresh=True)
                return reply.status == "ok"

            for c in (*CONCURRENCY, CPU_CONCURRENCY):
                await measured(results, cpu, meter, "hub din.person (amqp)", hub, c, count)

        body = presigned_request(pki)
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as http:
            async def direct(i: int) -> bool:
                response = await http.post(f"{sim_url}/din", content=body, headers={"Content-Type": "text/xml"})
                return response.status_code == 200

            for c in CONCURRENCY:
                await measured(results, cpu, meter, "direct httpx -> simulator", direct, c, count)

        queue = f"bench-echo-{uuid.uuid4().hex[:8]}"
        with process(["bench.raw_echo", broker, queue, str(reply_size)], env, ready="ready") as echo:
            meter = CpuMeter(worker=echo.proc.pid, client=os.getpid())
            async with RawClient(broker, queue) as raw_client:
                payload = b"x" * request_size

                async def raw(i: int) -> bool:
                    return len(await raw_client.call(payload)) == reply_size

                for c in CONCURRENCY:
                    await measured(results, cpu, meter, "raw aio-pika echo", raw, c, count * 4)


def client_request_bytes(fin: str) -> bytes:
    from ehis.bus.envelope import Request

    return Request.new("din.person", {"fin": fin}, REQUESTER, 10).to_bytes()


def report(results: list[Result], cpu: Cpu) -> None:
    for r in results:
        used = cpu.get((r.name.split()[0], r.concurrency), {})
        print(r.row() + "  CPU/req " + "  ".join(f"{k} {v:.2f} ms" for k, v in used.items()))
    by = {(r.name.split()[0], r.concurrency): r for r in results}
    print()
    figure = cpu[("hub", CPU_CONCURRENCY)]
    print(f"hub worker CPU per request: {figure['worker']:.2f} ms   (uncached din.person, c={CPU_CONCURRENCY}, "
          f"exchange log on; target <= 1.5 ms)")
    print(f"simulator CPU per request: {figure['simulator']:.2f} ms   (through the hub; "
          f"direct {cpu[('direct', 64)]['simulator']:.2f} ms)")
    print(f"benchmark client CPU per request: {figure['client']:.2f} ms")
    print()
    for c in CONCURRENCY:
        hub, raw, direct = by[("hub", c)], by[("raw", c)], by[("direct", c)]
        print(f"c={c:<3} hub/raw throughput {hub.rps / raw.rps:.3f}   hub/direct throughput {hub.rps / direct.rps:.3f}   "
              f"p50 hub/raw {hub.p50_ms / raw.p50_ms:.1f}x   p50 hub/direct {hub.p50_ms / direct.p50_ms:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="requests per scenario (raw runs 4x)")
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    report(*asyncio.run(run(args.count, args.broker)))


if __name__ == "__main__":
    main()
