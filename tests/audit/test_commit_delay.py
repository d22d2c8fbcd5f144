"""Group commit with a commit delay: records of requests in hand share one transaction; a lone
request, or one whose siblings never append, is not held back past the delay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ehis.audit.log import open_log

from .support import record

DELAY = 0.5  # long, so that "did not wait for it" is plain and never a matter of timing


async def test_records_of_requests_in_hand_share_one_transaction(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path / 'log.db'}", commit_delay=DELAY) as log:
        async def request(n: int) -> float:
            with log.expecting():
                await asyncio.sleep(0.05 * n)  # the source answers them at different times
                await log.append(record(n))
                return time.monotonic()

        started = time.monotonic()
        done = await asyncio.gather(*(request(n) for n in range(3)))
        assert log.batches == 1
        assert max(done) - started < DELAY  # committed when the last arrived, not at the delay's end


async def test_a_lone_request_never_waits(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path / 'log.db'}", commit_delay=DELAY) as log:
        for n in range(3):
            started = time.monotonic()
            with log.expecting():
                await log.append(record(n))
            assert time.monotonic() - started < DELAY / 2
        assert log.batches == 3


async def test_a_sibling_that_never_appends_holds_the_batch_no_longer_than_the_delay(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path / 'log.db'}", commit_delay=DELAY) as log:
        with log.expecting(), log.expecting():  # the other request in hand has no record coming soon
            stored = await asyncio.wait_for(log.append(record(1)), timeout=DELAY * 4)
        assert stored.seq == 1 and log.batches == 1


async def test_without_a_delay_nothing_waits(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path / 'log.db'}") as log:
        with log.expecting(), log.expecting():
            started = time.monotonic()
            await log.append(record(1))
            assert time.monotonic() - started < DELAY / 2
