"""Throughput and latency of the hub against its two ceilings, from one run on this machine.

    .venv/bin/python -m bench.bench_hub [--count N] [--broker URL]

1. raw:    aio-pika request/reply to an echo worker (payloads the size of the hub's)
2. direct: httpx POST of a pre-signed GetPerson request to the din simulator
3. hub:    din.person through the hub on amqp:// (BusClient -> RabbitMQ -> worker -> simulator)

Each at concurrency 1 and 64; the simulator, the hub worker and the echo worker are separate
processes, as in production. Ratios are taken within the run: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

import httpx

from bench.harness import CALLER, FINS, Bench, bench
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


def presigned_request(pki) -> bytes:
    """One GetPerson request signed once: the direct path measures the simulator and HTTP alone."""
    service = source("din").service("din.person")
    headers = xroad.RequestHeaders(
        client=xroad.XRoadId("SUBSYSTEM", "AZ", "GOV", "EMSN", CALLER),
        service=xroad.XRoadId("SERVICE", "AZ", "GOV", "din", None, service.operation, "v1"),
        id=str(uuid.uuid4()), user_id="bench", issue="benchmark")
    payload = source("din").codec.encode(service.operation, {"fin": FINS[0]})
    return xroad.serialize(EnvelopeSigner(pki.operator()).sign(xroad.envelope(headers.elements(), payload)))


async def run(count: int, broker: str) -> list[Result]:
    results: list[Result] = []
    async with bench(Path(tempfile.mkdtemp(prefix="ehis-bench-")), broker) as b:
        await _scenarios(results, b, broker, count)
    return results


async def _scenarios(results: list[Result], b: Bench, broker: str, count: int) -> None:
    """Every source call is a miss (fresh=True): this measures the path through the source."""
    pki, sim_url, env = b.pki, b.sim_url, b.env
    with simulators(env, sim_url), worker(env):
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

            for c in CONCURRENCY:
                results.append(await load("hub din.person (amqp)", hub, c, count))

        body = presigned_request(pki)
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as http:
            async def direct(i: int) -> bool:
                response = await http.post(f"{sim_url}/din", content=body, headers={"Content-Type": "text/xml"})
                return response.status_code == 200

            for c in CONCURRENCY:
                results.append(await load("direct httpx -> simulator", direct, c, count))

        queue = f"bench-echo-{uuid.uuid4().hex[:8]}"
        with process(["bench.raw_echo", broker, queue, str(reply_size)], env, ready="ready"):
            async with RawClient(broker, queue) as raw_client:
                payload = b"x" * request_size

                async def raw(i: int) -> bool:
                    return len(await raw_client.call(payload)) == reply_size

                for c in CONCURRENCY:
                    results.append(await load("raw aio-pika echo", raw, c, count * 4))


def client_request_bytes(fin: str) -> bytes:
    from ehis.bus.envelope import Request

    return Request.new("din.person", {"fin": fin}, REQUESTER, 10).to_bytes()


def report(results: list[Result]) -> None:
    for r in results:
        print(r.row())
    by = {(r.name.split()[0], r.concurrency): r for r in results}
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
    report(asyncio.run(run(args.count, args.broker)))


if __name__ == "__main__":
    main()
