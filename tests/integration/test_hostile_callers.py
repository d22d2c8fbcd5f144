"""Hostile callers through the whole hub in one process: whatever a caller sends ends in a typed
reply and one exchange-log record, and nothing it sends reaches or counts against a source."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.runtime import RunningHub
from ehis.simulators import create_app
from ehis.testing import hub_in_process


@pytest.fixture
def simulators(pki):
    return create_app(pki)


@pytest.fixture
async def hub(tmp_path: Path, pki, simulators) -> AsyncIterator[RunningHub]:
    async with hub_in_process(tmp_path, pki, simulators) as running:
        yield running


def body(purpose: str = "check", **changes: object) -> bytes:
    doc = {"id": str(uuid.uuid4()), "service": "din.person", "params": {"fin": "5GXM4DZ"},
           "requester": {"subsystem": "emek-muqavilesi", "user": "official", "purpose": purpose},
           "deadline": (datetime.now(UTC) + timedelta(seconds=10)).isoformat()} | changes
    return json.dumps(doc).encode()


async def test_a_caller_cannot_open_a_sources_circuit_for_everyone(hub, simulators) -> None:
    for n in range(20):
        reply = await hub.transport.send("din.person", body(purpose=f"bad\u0000{n}"), correlation_id=f"c{n}",
                                         timeout=5)
        assert reply.error is not None and reply.error.code == "invalid_input"
    assert simulators.state.journal.entries("din") == []  # nothing reached the source
    din = next(s for s in hub.parts.hub.source_statuses() if s.source == "din")
    assert din.state == "closed" and din.consecutive_failures == 0
    ok = await BusClient(hub.transport, requester=Requester(subsystem="pensiya")).request("din.person",
                                                                                        {"fin": "5GXM4DZ"})
    assert ok.status == "ok"


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"id": "n-1", "params": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b"\xff\xfe not json",
    body(params={"fin": {"$where": "1"}}),
    body(service="din.person\u0000"),
])
async def test_every_message_gets_a_reply_and_a_record(hub, raw: bytes) -> None:
    reply = await hub.transport.send("din.person", raw, correlation_id="raw-1", timeout=5)
    assert reply.error is not None and reply.error.code in ("bad_request", "invalid_input")
    records = await hub.parts.log.search(LogQuery(limit=10))
    assert len(records) == 1 and records[0].error_code == reply.error.code


async def test_a_fin_that_only_folds_to_a_valid_one_reaches_no_source(hub, simulators) -> None:
    reply = await BusClient(hub.transport, requester=Requester(subsystem="pensiya")).request(
        "din.person", {"fin": "5GXM4Dſ"})
    assert reply.error is not None and reply.error.code == "invalid_input"
    assert simulators.state.journal.entries() == []
