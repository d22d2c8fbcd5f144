"""The hub's own metaservices on the bus (after PR-META): which services exist, which the caller
may use, and each contract; answered by a worker and recorded like any request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ehis import catalogue
from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.composites import COMPOSITES
from ehis.policy import DEFAULT_ACCESS, AccessPolicy
from ehis.runtime import RunningHub
from ehis.simulators import create_app
from ehis.sources import services
from ehis.testing import hub_in_process


@pytest.fixture
async def hub(tmp_path: Path, pki) -> AsyncIterator[RunningHub]:
    async with hub_in_process(tmp_path, pki, create_app(pki)) as running:
        yield running


def as_(running: RunningHub, subsystem: str) -> BusClient:
    return BusClient(running.transport, requester=Requester(subsystem=subsystem, user="u", purpose="discovery"))


async def test_list_methods_names_every_service_of_the_statute_and_what_is_served(hub) -> None:
    listed = (await as_(hub, "monitorinq").call("meta.list-methods", {}))["services"]
    assert [s["name"] for s in listed] == list(catalogue.SERVICES)
    served = {s["name"] for s in listed if s["served"]}
    assert served == set(services()) | set(COMPOSITES)
    one = next(s for s in listed if s["served"])
    assert one["operation"] and one["params"] and all({"name", "type", "required"} <= set(p) for p in one["params"])


@pytest.mark.parametrize("subsystem", ["monitorinq", "vemtas", "tapsiriqlar"])
async def test_allowed_methods_are_what_the_policy_lets_this_caller_use(hub, subsystem) -> None:
    allowed = (await as_(hub, subsystem).call("meta.allowed-methods", {}))["services"]
    policy = AccessPolicy(DEFAULT_ACCESS)
    assert {s["name"] for s in allowed} == {n for n in [*services(), *COMPOSITES] if policy.allows(subsystem, n)}


async def test_wsdl_gives_the_contract_and_every_schema_it_imports(hub) -> None:
    name, service = next(iter(services().items()))
    answer = await as_(hub, "monitorinq").call("meta.wsdl", {"service": name})
    assert answer["operation"] == service.operation and service.operation in answer["wsdl"]
    assert {"xroad.xsd", "identifiers.xsd", "ehis.xsd", "common.wsdl"} <= set(answer["schemas"])
    unknown = await as_(hub, "monitorinq").request("meta.wsdl", {"service": "no.such"})
    assert unknown.error is not None and unknown.error.code == "unknown_service"
    bad = await as_(hub, "monitorinq").request("meta.wsdl", {})
    assert bad.error is not None and bad.error.code == "invalid_input"


async def test_metaservice_requests_are_recorded(hub) -> None:
    reply = await as_(hub, "vemtas").request("meta.allowed-methods", {})
    records = await hub.parts.log.search(LogQuery(limit=10))
    assert [(r.request_id, r.service, r.subsystem, r.outcome) for r in records] == [
        (reply.id, "meta.allowed-methods", "vemtas", "ok")]
