"""A hostile answer through the whole hub in one process: it ends in a typed error, and the other
requests in flight meanwhile keep their latency (verification of a large answer runs off the
event loop, and the shape limits refuse the costly ones before any verification)."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import httpx
import pytest
from lxml import etree

from ehis.adapters.soap import SoapAdapter
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.contracts import xroad
from ehis.simulators import create_app
from ehis.testing import hub_in_process
from tests.contract.support import Rewriting, replaced

HOSTILE_FIN = "9ZZZZZ9"
CALLER = Requester(subsystem="pensiya", user="AZ1", purpose="latency under attack")


_BLOATED: list[bytes] = []


def bloat(response: httpx.Response, body: bytes) -> httpx.Response:
    """For one FIN, the answer grown to just under the size limit with 40,000 elements: the most a
    source may send, and costly to canonicalise and verify. Built once (by the warm-up request),
    so the attacker's own cost does not count against the hub's loop."""
    if HOSTILE_FIN.encode() not in body:
        return replaced(response, body)
    if not _BLOATED:
        doc = etree.fromstring(body)
        junk = etree.SubElement(doc.find(xroad.BODY)[0], "{urn:x}junk")
        for i in range(40_000):
            etree.SubElement(junk, "{urn:x}j", a=str(i)).text = "x" * 20
        _BLOATED.append(xroad.serialize(doc))
    return replaced(response, _BLOATED[0])


SLOWER_MACHINE = 0.3  # seconds added to verifying a large answer: a window the heartbeat can be counted in


async def test_normal_requests_keep_their_latency_while_a_hostile_answer_is_processed(
        tmp_path: Path, pki, monkeypatch: pytest.MonkeyPatch) -> None:
    verify = SoapAdapter._answer

    def slower(self: SoapAdapter, *args: object) -> object:
        """The real verification, as long as a slower machine would take (here it takes ~50 ms):
        blocking, as the CPU work it stands for blocks whatever thread runs it."""
        if len(args[4]) > 1_000_000:  # the bloated answer (about 2 MB)
            time.sleep(SLOWER_MACHINE)
        return verify(self, *args)

    monkeypatch.setattr(SoapAdapter, "_answer", slower)
    transport = Rewriting(httpx.ASGITransport(app=create_app(pki)), bloat)
    async with hub_in_process(tmp_path, pki, transport=transport) as hub:
        client = BusClient(hub.transport, requester=CALLER)

        async def normal(n: int) -> float:
            started = time.perf_counter()
            reply = await client.request("din.person", {"fin": f"5GXM{n:03d}"}, fresh=True)
            assert reply.status == "ok", reply.error
            return time.perf_counter() - started

        await client.request("din.person", {"fin": HOSTILE_FIN}, fresh=True, timeout=20)  # warm-up: builds it
        baseline = [await normal(n) for n in range(10)]
        ticks: list[float] = []

        async def heartbeat() -> None:  # a 5 ms timer: a loop held by the verification stops ticking
            while True:
                await asyncio.sleep(0.005)
                ticks.append(time.perf_counter())

        beat = asyncio.create_task(heartbeat())
        started = time.perf_counter()
        hostile = asyncio.create_task(client.request("din.person", {"fin": HOSTILE_FIN}, fresh=True, timeout=20))
        during: list[float] = []
        n = 10
        while not hostile.done():
            during.append(await normal(n))
            n += 1
        ended = time.perf_counter()
        took = ended - started
        beat.cancel()
        reply = hostile.result()
    assert reply.error is not None and reply.error.code == "signature_invalid"
    # Not a benchmark: what would show the verification on the loop. There it would hold the loop
    # from the answer's arrival to the reply, so the 5 ms heartbeat could tick only in the few ms
    # before; off the loop it goes on ticking while the answer is verified. (A bound on the
    # heartbeat's largest delay failed once on the loaded 2-core CI machine, where the OS did not
    # run the process for 370 ms: the loop's progress is what is asserted, not its timing.)
    assert during, f"no normal request was answered during the {took:.2f} s of the hostile answer"
    ticked = sum(started < t < ended for t in ticks)
    # on the loop: a tick or two before the answer arrives; off it, one every 5 ms of the 0.3 s at best
    assert ticked >= 10, f"the loop ticked {ticked} times in the {took:.2f} s of the hostile answer"
    assert statistics.median(during) < max(5 * statistics.median(baseline), 0.1), (baseline, during)
