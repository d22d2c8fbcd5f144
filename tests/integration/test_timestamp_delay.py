"""The hub while no checkpoint can be time-stamped: the delay in /metrics and on the admin API,
then, past `max_unstamped`, no answers and a failing readiness check; a stamp lets it answer again."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from prometheus_client import generate_latest

from ehis.admin import HubAdmin
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.simulators import create_app
from ehis.testing import hub_in_process

CALLER = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")


async def test_a_hub_without_time_stamps_stops_answering_past_the_limit(tmp_path: Path, pki) -> None:
    simulators = create_app(pki, rng=random.Random(5))
    async with hub_in_process(tmp_path, pki, simulators, max_unstamped=0.2) as hub:
        client = BusClient(hub.transport, requester=CALLER, default_timeout=10)
        checkpoints, admin = hub.parts.checkpoints, HubAdmin(hub.parts, hub.transport)
        assert (await client.request("din.person", {"fin": "2KLM3NP"})).status == "ok"
        simulators.state.tsa.fail = True  # the TSA answers, but will not stamp
        await checkpoints.checkpoint()
        assert checkpoints.unstamped_since is not None and checkpoints.last_error
        await asyncio.sleep(0.3)
        metrics = generate_latest(hub.parts.metrics.registry).decode()
        assert "ehis_checkpoint_stamp_overdue 1.0" in metrics
        delay = float(next(line.split()[1] for line in metrics.splitlines()
                           if line.startswith("ehis_checkpoint_unstamped_seconds ")))
        assert delay > 0.2
        status = admin.timestamps()
        assert status is not None and status["overdue"] and status["delay_seconds"] > 0.2
        assert (await admin.checks())["timestamps"] is False
        refused = await client.request("din.person", {"fin": "2KLM3NP"})
        assert refused.status == "error" and refused.error.code == "internal" and refused.error.retryable
        assert refused.data is None

        simulators.state.tsa.fail = False
        assert await checkpoints.stamp() is not None  # one token covers the waiting checkpoint
        assert checkpoints.delay() == 0.0 and not checkpoints.overdue()
        assert (await client.request("din.person", {"fin": "2KLM3NP"})).status == "ok"
        assert "ehis_checkpoint_unstamped_seconds 0.0" in generate_latest(hub.parts.metrics.registry).decode()
