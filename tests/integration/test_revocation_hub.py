"""Revocation through the whole hub (memory bus, SQLite log, simulators in process): an answer
signed with a revoked certificate is a typed signature_invalid reply, recorded and counted by the
source's breaker; the settings decide what an unknown status does; a revocation published while
the hub runs is noticed within the freshness, by the background refresh."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.security.pki import Pki, revoke
from ehis.simulators import create_app
from ehis.simulators.faults import parse_rules
from ehis.testing import hub_in_process

REQUESTER = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")
FIN = "5GXM4DZ"


def _client(running) -> BusClient:
    return BusClient(running.transport, requester=REQUESTER)


async def test_an_answer_signed_with_a_revoked_certificate_is_refused_and_recorded(tmp_path: Path, pki: Pki) -> None:
    simulators = create_app(pki)
    simulators.state.faults.add(parse_rules({"kind": "revoked_cert", "system": "din"}))
    policy = {"din": {"attempts": 1, "breaker_window": 1, "breaker_minimum_calls": 1}}
    async with hub_in_process(tmp_path, pki, simulators, sources=policy) as running:
        reply = await _client(running).request("din.person", {"fin": FIN})
        assert reply.error is not None and reply.error.code == "signature_invalid"
        assert "revoked" in reply.error.message and reply.data is None and not reply.error.retryable
        [record] = await running.parts.log.search(LogQuery(subject=FIN))
        assert record.error_code == "signature_invalid"
        assert {s.source: s.state.value for s in running.parts.hub.source_statuses()}["din"] == "open"
        value = running.parts.metrics.registry.get_sample_value
        assert value("ehis_revocation_checks_total", {"result": "revoked"}) == 1


@pytest.mark.parametrize(("mode", "outcome"), [("fail-closed", "signature_invalid"), ("fail-open", None)])
async def test_an_unknown_status_is_decided_by_the_setting(tmp_path: Path, pki: Pki, mode: str,
                                                           outcome: str | None) -> None:
    simulators = create_app(pki)
    settings = {"revocation": mode, "crl_urls": [str(tmp_path / "no-such.crl")],
                "sources": {"din": {"attempts": 1}}}
    async with hub_in_process(tmp_path, pki, simulators, **settings) as running:
        reply = await _client(running).request("din.person", {"fin": FIN})
        value = running.parts.metrics.registry.get_sample_value
        if outcome is None:
            assert reply.status == "ok"
            assert value("ehis_revocation_checks_total", {"result": "unknown_accepted"}) == 1
        else:
            assert reply.error is not None and reply.error.code == outcome
            assert "cannot learn whether the signing certificate is revoked" in reply.error.message
            assert value("ehis_revocation_checks_total", {"result": "unknown_refused"}) == 1


async def test_a_revocation_published_while_the_hub_runs_is_noticed(tmp_path: Path, pki: Pki) -> None:
    own = Pki(tmp_path / "pki")
    shutil.copytree(pki.directory, own.directory)
    simulators = create_app(own)
    async with hub_in_process(tmp_path, own, simulators, revocation_freshness=1.0,
                              sources={"din": {"attempts": 1}}) as running:
        assert (await _client(running).request("din.person", {"fin": FIN}, fresh=True)).status == "ok"
        revoke(own.directory, "din")
        deadline = time.monotonic() + 20  # the freshness is 1 s; generous for a loaded machine
        while True:
            reply = await _client(running).request("din.person", {"fin": FIN}, fresh=True)
            if reply.error is not None or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert reply.error is not None and reply.error.code == "signature_invalid"
        assert "revoked" in reply.error.message
