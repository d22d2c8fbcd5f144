"""A search of the exchange log on the admin page is itself an access to personal data: it is
recorded (who, from where, what query, what was shown) before the results leave, and when it
cannot be recorded nothing is shown."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ehis.admin import ADMIN_SOURCE, ADMIN_SUBSYSTEM, SEARCH_SERVICE, HubAdmin
from ehis.audit.model import LogQuery
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.monitor import HubMetrics, create_admin_app
from ehis.security.pki import Pki
from ehis.simulators import create_app
from ehis.testing import hub_in_process

from .conftest import SUBJECT, FakeProvider, populated_provider

AUTH = ("admin", "an admin password")


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _client(provider, auth: tuple[str, str] | None = AUTH, metrics: HubMetrics | None = None) -> httpx.AsyncClient:
    app = create_admin_app(metrics or HubMetrics(), provider, auth=auth)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("192.0.2.7", 50123)),
                             base_url="http://admin.test", headers=_basic(*auth) if auth else None)


async def test_a_search_is_recorded_with_who_what_and_what_was_shown() -> None:
    provider = populated_provider()
    async with _client(provider) as c:
        r = await c.get("/api/exchanges", params={"subject": SUBJECT, "outcome": "ok"})
    assert r.status_code == 200
    [access] = provider.accesses
    assert access.user == "admin" and access.address == "192.0.2.7"
    assert access.query.subject == SUBJECT and access.query.outcome == "ok"
    assert access.count == r.json()["count"] == 2
    assert access.digest == hashlib.sha256(r.content).hexdigest()  # exactly what left


async def test_without_a_password_the_searcher_is_anonymous() -> None:
    provider = populated_provider()
    async with _client(provider, auth=None) as c:
        assert (await c.get("/api/exchanges", params={"subsystem": "pensiya"})).status_code == 200
    assert [a.user for a in provider.accesses] == ["anonymous"]


async def test_when_the_access_cannot_be_recorded_nothing_is_shown() -> None:
    provider = populated_provider()
    provider.fail.add("record_access")
    async with _client(provider) as c:
        r = await c.get("/api/exchanges", params={"subject": SUBJECT})
    assert r.status_code == 503 and "records" not in r.json()
    assert SUBJECT not in r.text and "req-" not in r.text


@pytest.mark.parametrize("query", ["limit=0", "since=yesterday", "bogus=1", "subject=a&subject=b"])
async def test_a_refused_query_shows_nothing_and_records_nothing(query: str) -> None:
    provider = populated_provider()
    async with _client(provider) as c:
        assert (await c.get(f"/api/exchanges?{query}")).status_code == 400
    assert provider.accesses == [] and provider.queries == []


async def test_an_unauthenticated_search_records_nothing() -> None:
    provider = FakeProvider()
    app = create_admin_app(HubMetrics(), provider, auth=AUTH)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin.test") as c:
        assert (await c.get("/api/exchanges", params={"subject": SUBJECT})).status_code == 401
    assert provider.accesses == []


async def test_the_hub_records_admin_searches_in_its_chained_log(tmp_path, pki: Pki) -> None:
    """On a real hub (SQLite log): the search is a record of its own, chained like any exchange,
    found in the subject's access report, and not counted as a source's traffic."""
    simulators = create_app(pki)
    async with hub_in_process(tmp_path, pki, simulators) as running:
        requester = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")
        assert (await BusClient(running.transport, requester=requester).request(
            "din.person", {"fin": SUBJECT})).status == "ok"
        admin = HubAdmin(running.parts, running.transport)
        async with _client(admin, metrics=running.parts.metrics) as c:
            r = await c.get("/api/exchanges", params={"subject": SUBJECT, "since": "2000-01-01T00:00:00Z"})
            assert r.status_code == 200 and r.json()["count"] == 1  # the search does not list itself
            again = await c.get("/api/exchanges", params={"subject": SUBJECT})
            assert {rec["service"] for rec in again.json()["records"]} == {"din.person", SEARCH_SERVICE}
            sources = (await c.get("/api/sources")).json()["sources"]
        log = running.parts.log
        searches = await log.search(LogQuery(service=SEARCH_SERVICE))
        assert len(searches) == 2
        first = searches[-1]
        assert (first.subsystem, first.user, first.source, first.subject) == (ADMIN_SUBSYSTEM, "admin",
                                                                              ADMIN_SOURCE, SUBJECT)
        assert first.outcome == "ok" and first.evidence == hashlib.sha256(r.content).hexdigest()
        assert "192.0.2.7" in first.purpose and "since=2000-01-01T00:00:00+00:00" in first.purpose
        assert "1 record shown" in first.purpose
        assert abs(first.time - datetime.now(UTC)) < timedelta(minutes=5)
        report = await log.subject_report(SUBJECT)
        assert [a.subsystem for a in report.accesses] == ["emek-muqavilesi", ADMIN_SUBSYSTEM, ADMIN_SUBSYSTEM]
        assert (await log.verify()).ok
        assert ADMIN_SOURCE not in {entry["source"] for entry in sources}
