"""Events through the hub: from a source's signed push to a subscriber's receipt, beside raw RabbitMQ.

A worker process (`ehis serve`, SQLite exchange log and outbox) serves the inbound endpoint; the
benchmark plays edliyye, pushing signed death events over HTTP, and `pensiya` subscribes with
`BusClient.events()` on its own queue (a death goes to five subsystems' queues: the others fill
up unread). Printed, from one run:

- latency, one event per push, one at a time: push sent -> subscriber has it, p50 and p99;
- throughput, pushes of 100 events from 4 concurrent pushers: events/s acknowledged by the
  inbound endpoint and events/s received by the subscriber;
- the same two figures for raw aio-pika on this broker (publisher confirms, a durable quorum
  queue, manual acks, no signing, no database), and the ratios hub/raw.

The hub's path holds, per push: parsing, verifying the source's signature, validating and mapping
each event, one database transaction (outbox + received records), a signed acknowledgement, then
the publisher's delivery records, a confirmed publish and the outbox's bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from contextlib import aclosing
from pathlib import Path
from typing import Self

import aio_pika
import httpx

from bench.harness import FINS, bench
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.bus.transport import open_transport
from ehis.testing import simulators, worker
from tests.integration.events_helpers import death, push_body

SUBSCRIBER = "pensiya"


def quantiles(ms: list[float]) -> tuple[float, float]:
    return statistics.median(ms), statistics.quantiles(ms, n=100)[98]


class Subscriber:
    """Takes `pensiya`'s events as they come, noting when each id arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.arrived: dict[str, float] = {}
        self.duplicates = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        ready = asyncio.Event()

        async def run() -> None:
            async with open_transport(self.url) as transport:
                client = BusClient(transport, requester=Requester(subsystem=SUBSCRIBER, user="bench", purpose="bench"))
                async with aclosing(client.events(prefetch=256)) as stream:
                    ready.set()
                    async for received in stream:
                        if received.event.id in self.arrived:
                            self.duplicates += 1
                        self.arrived.setdefault(received.event.id, time.perf_counter())
                        await received.ack()

        self._task = asyncio.create_task(run())
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(0.2)  # the consumer is registered with the broker
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def wait_for(self, ids: list[str], within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while not all(i in self.arrived for i in ids):
            if time.monotonic() > deadline:
                missing = sum(i not in self.arrived for i in ids)
                raise RuntimeError(f"{missing} of {len(ids)} events never reached the subscriber")
            await asyncio.sleep(0.002)


async def hub_figures(b, endpoint: str, latency_n: int, throughput_n: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(timeout=30) as http, Subscriber(b.accounts.url_for(SUBSCRIBER)) as sub:
        async def push(events: list[dict]) -> None:
            body = push_body(b.pki, "edliyye", events)
            response = await http.post(endpoint, content=body, headers={"Content-Type": "text/xml; charset=utf-8"})
            response.raise_for_status()

        for i in range(20):  # warm-up: connections, certificate checks, the publisher's lease
            await push([death(f"w-{run}-{i}", FINS[i])])
        await sub.wait_for([f"edliyye:w-{run}-{i}" for i in range(20)])

        latencies = []
        for i in range(latency_n):
            event_id = f"l-{run}-{i}"
            started = time.perf_counter()
            await push([death(event_id, FINS[i % len(FINS)])])
            await sub.wait_for([f"edliyye:{event_id}"])
            latencies.append((sub.arrived[f"edliyye:{event_id}"] - started) * 1000)

        bodies = [[death(f"t-{run}-{k}-{j}", FINS[(k * 100 + j) % len(FINS)]) for j in range(100)]
                  for k in range(throughput_n // 100)]
        queue: asyncio.Queue[list[dict]] = asyncio.Queue()
        for events in bodies:
            queue.put_nowait(events)

        async def pusher() -> None:
            while not queue.empty():
                await push(queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(pusher() for _ in range(4)))
        acked = time.perf_counter() - started
        await sub.wait_for([f"edliyye:{e['id']}" for events in bodies for e in events])
        delivered = time.perf_counter() - started
        p50, p99 = quantiles(latencies)
        n = sum(len(events) for events in bodies)
        return {"p50": p50, "p99": p99, "acked_per_s": n / acked, "delivered_per_s": n / delivered,
                "duplicates": sub.duplicates}


async def raw_figures(url: str, latency_n: int, throughput_n: int) -> dict[str, float]:
    """Publisher confirms into a durable quorum queue, a consumer acking each: RabbitMQ's own cost."""
    connection = await aio_pika.connect(url)
    async with connection:
        publisher = await connection.channel(publisher_confirms=True)
        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=256)
        name = f"bench-raw-events-{uuid.uuid4().hex[:6]}"
        queue = await consumer.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        arrived: dict[str, float] = {}
        waiting: dict[str, asyncio.Future[None]] = {}

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            arrived[message.message_id] = time.perf_counter()
            await message.ack()
            if (future := waiting.pop(message.message_id, None)) is not None and not future.done():
                future.set_result(None)

        await queue.consume(on_message)
        body = b"x" * 1200  # about one event's JSON

        async def publish(message_id: str) -> None:
            await publisher.default_exchange.publish(
                aio_pika.Message(body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=name)

        latencies = []
        for i in range(latency_n):
            future = waiting[f"l{i}"] = asyncio.get_running_loop().create_future()
            started = time.perf_counter()
            await publish(f"l{i}")
            await future
            latencies.append((arrived[f"l{i}"] - started) * 1000)

        ids = [f"t{i}" for i in range(throughput_n)]
        started = time.perf_counter()
        for chunk in range(0, len(ids), 100):
            await asyncio.gather(*(publish(i) for i in ids[chunk:chunk + 100]))
        acked = time.perf_counter() - started
        while not all(i in arrived for i in ids):
            await asyncio.sleep(0.002)
        delivered = time.perf_counter() - started
        await queue.delete(if_unused=False, if_empty=False)
        p50, p99 = quantiles(latencies)
        return {"p50": p50, "p99": p99, "acked_per_s": len(ids) / acked, "delivered_per_s": len(ids) / delivered}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with bench(Path(tmp), args.broker) as b:
            env = b.worker_env(event_lease="5")
            endpoint = env["EHIS_HUB_EVENTS_URL"] + "/edliyye"
            with simulators(env, b.sim_url), worker(env):
                hub = await hub_figures(b, endpoint, args.latency_n, args.throughput_n)
        raw = await raw_figures(args.broker, args.latency_n, args.throughput_n)  # a queue of its own, deleted
    print(f"events: {args.latency_n} one at a time, {args.throughput_n} in pushes of 100 from 4 pushers")
    print(f"{'path':<46} {'p50 ms':>8} {'p99 ms':>8} {'acked/s':>9} {'received/s':>11}")
    for name, f in (("hub: signed push -> pensiya's BusClient.events()", hub),
                    ("raw aio-pika: confirmed publish -> consumer", raw)):
        print(f"{name:<46} {f['p50']:>8.2f} {f['p99']:>8.2f} {f['acked_per_s']:>9.0f} {f['delivered_per_s']:>11.0f}")
    print(f"ratios hub/raw: p50 {hub['p50'] / raw['p50']:.1f}x, p99 {hub['p99'] / raw['p99']:.1f}x, "
          f"received/s {hub['delivered_per_s'] / raw['delivered_per_s']:.2f}")
    print(f"duplicates the subscriber saw: {hub['duplicates']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--latency-n", type=int, default=300)
    parser.add_argument("--throughput-n", type=int, default=2000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
