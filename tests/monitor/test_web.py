"""The admin app in process through httpx.ASGITransport, against a fake provider."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ehis.adapters.events import BreakerState
from ehis.monitor import HubMetrics, create_admin_app

from .conftest import HOSTILE_PURPOSE, NOW, SUBJECT, FakeProvider, status

AUTH = ("operator", "s3cret-pässword")


def client_for(provider: FakeProvider, *, auth: tuple[str, str] | None = None,
               metrics: HubMetrics | None = None, **kw: float) -> httpx.AsyncClient:
    metrics = metrics or HubMetrics(sources=provider.sources)
    app = create_admin_app(metrics, provider, auth=auth, **kw)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin.test")


@pytest.fixture
async def client(provider: FakeProvider) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(provider) as c:
        yield c


# --- /metrics and /health ---------------------------------------------------------------------

async def test_metrics_exposes_the_registry(provider: FakeProvider) -> None:
    metrics = HubMetrics(sources=provider.sources)
    metrics.request_done("din.person", "emek-muqavilesi", "ok", "hit", 0.003)
    async with client_for(provider, metrics=metrics) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert 'ehis_requests_total{caller="emek-muqavilesi",outcome="ok",service="din.person"} 1.0' in r.text
    assert 'ehis_source_breaker_state{source="vergiler",state="open"} 1.0' in r.text


async def test_live(client: httpx.AsyncClient) -> None:
    r = await client.get("/health/live")
    assert (r.status_code, r.json()) == (200, {"status": "alive"})


async def test_ready_ok_when_checks_pass_and_breakers_closed() -> None:
    provider = FakeProvider(statuses=[status("din", in_flight=1)])
    async with client_for(provider) as c:
        r = await c.get("/health/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"bus": True, "exchange_log": True}
    assert body["sources"] == [{
        "source": "din", "state": "closed", "in_flight": 1, "consecutive_failures": 0,
        "last_success_at": NOW.isoformat(), "last_failure_at": None, "last_error": None, "opened_at": None,
    }]


@pytest.mark.parametrize("state", [BreakerState.OPEN, BreakerState.HALF_OPEN])
async def test_ready_degraded_but_200_with_a_breaker_not_closed(state: BreakerState) -> None:
    provider = FakeProvider(statuses=[status("din"), status("vergiler", state)])
    async with client_for(provider) as c:
        r = await c.get("/health/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "degraded"
    assert {s["source"]: s["state"] for s in r.json()["sources"]} == {"din": "closed", "vergiler": state.value}


async def test_ready_503_when_a_check_fails() -> None:
    provider = FakeProvider(statuses=[status("din")], check_results={"bus": True, "exchange_log": False})
    async with client_for(provider) as c:
        r = await c.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    assert r.json()["checks"] == {"bus": True, "exchange_log": False}


async def test_ready_503_when_checks_raise_or_hang() -> None:
    async with client_for(FakeProvider(fail={"checks"})) as c:
        r = await c.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["problems"] == ["checks: ConnectionError"]
    assert SUBJECT not in r.text  # the exception's message is not repeated

    async with client_for(FakeProvider(check_delay=5), check_timeout=0.05) as c:
        r = await c.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["problems"] == ["checks: TimeoutError"]


async def test_health_and_metrics_stay_open_with_auth(provider: FakeProvider) -> None:
    async with client_for(provider, auth=AUTH) as c:
        assert (await c.get("/metrics")).status_code == 200
        assert (await c.get("/health/live")).status_code == 200
        assert (await c.get("/health/ready")).status_code == 200


# --- /api/exchanges ---------------------------------------------------------------------------

async def test_search_passes_every_parameter(client: httpx.AsyncClient, provider: FakeProvider) -> None:
    r = await client.get("/api/exchanges", params={
        "subject": SUBJECT, "subsystem": "emek-muqavilesi", "service": "din.person", "outcome": "ok",
        "since": "2025-03-14T08:00:00Z", "until": "2025-03-14T14:00:00+04:00", "limit": "2"})
    assert r.status_code == 200, r.text
    (query,) = provider.queries
    assert query.subject == SUBJECT
    assert query.subsystem == "emek-muqavilesi"
    assert query.service == "din.person"
    assert query.outcome == "ok"
    assert query.since == datetime(2025, 3, 14, 8, tzinfo=UTC)
    assert query.until == datetime(2025, 3, 14, 10, tzinfo=UTC)
    assert query.limit == 2
    body = r.json()
    assert [rec["request_id"] for rec in body["records"]] == ["req-0003", "req-0001"]
    assert (body["count"], body["limit"], body["truncated"]) == (2, 2, True)
    first = body["records"][0]
    assert first["subject"] == SUBJECT and first["purpose"] == HOSTILE_PURPOSE
    assert first["time"] == (NOW - timedelta(minutes=30)).isoformat()
    assert set(first) >= {"request_id", "time", "subsystem", "user", "purpose", "service", "subject",
                          "outcome", "error_code", "cache", "duration_ms", "signer", "seq", "hash"}


async def test_search_empty_fields_are_absent_and_naive_dates_utc(client: httpx.AsyncClient,
                                                                  provider: FakeProvider) -> None:
    r = await client.get("/api/exchanges?subject=&subsystem=+&service=&outcome=&since=2025-03-14T09:00&until=&limit=")
    assert r.status_code == 200, r.text
    (query,) = provider.queries
    assert query.model_dump() == {"subject": None, "subsystem": None, "service": None, "outcome": None, "error_code": None,
                                  "since": datetime(2025, 3, 14, 9, tzinfo=UTC), "until": None, "limit": 100}
    assert r.json()["truncated"] is False


@pytest.mark.parametrize(("query", "message"), [
    ("since=yesterday", "since: not an ISO 8601 date-time"),
    ("until=2025-13-01", "until: not an ISO 8601 date-time"),
    ("since=2025-03-14T10:00Z&until=2025-03-14T09:00Z", "since is after until"),
    ("limit=0", "limit: Input should be greater than or equal to 1"),
    ("limit=10001", "limit: Input should be less than or equal to 10000"),
    ("limit=ten", "limit: Input should be a valid integer"),
    ("subjet=5GXM4DZ", "unknown parameter 'subjet'"),
    ("subject=5GXM4DZ&subject=7KQP2LA", "subject: give it once"),
])
async def test_search_bad_input_is_400(client: httpx.AsyncClient, provider: FakeProvider,
                                       query: str, message: str) -> None:
    r = await client.get(f"/api/exchanges?{query}")
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert provider.queries == []


async def test_search_failure_is_503_without_details() -> None:
    async with client_for(FakeProvider(fail={"search"})) as c:
        r = await c.get("/api/exchanges", params={"subject": SUBJECT})
    assert r.status_code == 503
    assert r.json() == {"error": "exchange log unavailable"}


async def test_api_answers_are_json_never_cached_nor_sniffed(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/exchanges", params={"subject": SUBJECT})
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert HOSTILE_PURPOSE in [rec["purpose"] for rec in r.json()["records"]]  # data, not markup


# --- /api/sources and /api/outages ------------------------------------------------------------

async def test_sources_overview(client: httpx.AsyncClient, provider: FakeProvider) -> None:
    before = datetime.now(UTC)
    r = await client.get("/api/sources")
    assert r.status_code == 200
    body = r.json()
    assert body["window_seconds"] == 3600
    (since,) = provider.stats_since
    assert before - timedelta(hours=1, seconds=5) <= since <= datetime.now(UTC) - timedelta(hours=1)
    by_name = {s["source"]: s for s in body["sources"]}
    assert list(by_name) == ["din", "dsk", "kb", "vergiler"]

    assert by_name["din"]["status"]["state"] == "closed"
    assert by_name["din"]["status"]["in_flight"] == 2
    assert by_name["din"]["last_hour"] == {"calls": 40, "errors": 2, "error_rate": 0.05, "caller_errors": 0,
                                           "other_errors": 0, "last_ok_at": NOW.isoformat()}
    assert by_name["din"]["outages"] == {"count": 0, "ongoing": None}

    vergiler = by_name["vergiler"]
    assert vergiler["status"]["state"] == "open"
    assert vergiler["last_hour"]["error_rate"] == 1.0
    assert vergiler["outages"]["count"] == 2
    assert vergiler["outages"]["ongoing"] == {"source": "vergiler", "started_at": (NOW - timedelta(minutes=3)).isoformat(),
                                              "ended_at": None, "reason": "unavailable: connection refused"}

    assert by_name["dsk"]["last_hour"] == {"calls": 0, "errors": 0, "error_rate": None, "caller_errors": 0,
                                           "other_errors": 0, "last_ok_at": None}
    assert by_name["kb"]["status"] is None  # in the shared log, but not called by this worker


async def test_outages_filtered_and_newest_first(client: httpx.AsyncClient, provider: FakeProvider) -> None:
    r = await client.get("/api/outages", params={"source": "vergiler"})
    assert r.status_code == 200
    assert provider.outage_requests == ["vergiler"]
    outages = r.json()["outages"]
    assert [o["ended_at"] is None for o in outages] == [True, False]
    r = await client.get("/api/outages", params={"source": ""})
    assert provider.outage_requests == ["vergiler", None]
    r = await client.get("/api/outages", params={"source": "din"})
    assert r.json() == {"outages": []}


async def test_outage_store_failure_is_503() -> None:
    async with client_for(FakeProvider(fail={"outages"})) as c:
        assert (await c.get("/api/outages")).status_code == 503
        assert (await c.get("/api/sources")).json() == {"error": "outage store unavailable"}


# --- auth -------------------------------------------------------------------------------------

def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", ["/admin", "/api/exchanges?subject=5GXM4DZ", "/api/sources", "/api/outages"])
async def test_admin_and_api_require_basic_auth(provider: FakeProvider, path: str) -> None:
    async with client_for(provider, auth=AUTH) as c:
        r = await c.get(path)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic realm=")
        assert SUBJECT not in r.text
        for headers in (basic("operator", "wrong"), basic("someone", AUTH[1]), basic("operator", ""),
                        {"Authorization": "Basic !!!notbase64"}, {"Authorization": "Bearer x"},
                        {"Authorization": "Basic " + base64.b64encode(b"operator").decode()}):
            assert (await c.get(path, headers=headers)).status_code == 401, headers
        assert (await c.get(path, headers=basic(*AUTH))).status_code == 200
    assert len(provider.queries) == (1 if "exchanges" in path else 0)  # searched only when authenticated


async def test_without_auth_configured_admin_is_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin")).status_code == 200
    assert (await client.get("/api/sources")).status_code == 200


# --- /admin -----------------------------------------------------------------------------------

STABLE_IDS = ["sources-table", "sources-body", "outages-table", "outages-body", "search-form", "q-subject",
              "q-subsystem", "q-service", "q-outcome", "q-since", "q-until", "q-limit", "search-submit",
              "search-status", "results-table", "results-body", "error-banner"]


async def test_admin_page_is_self_contained(client: httpx.AsyncClient) -> None:
    r = await client.get("/admin")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    for element_id in STABLE_IDS:
        assert f'id="{element_id}"' in html, element_id
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)  # nothing fetched from elsewhere
    assert "http://" not in html and "https://" not in html


async def test_admin_page_never_parses_data_as_html(client: httpx.AsyncClient) -> None:
    html = (await client.get("/admin")).text
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL).group(1)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "textContent" in script


async def test_admin_page_csp_allows_exactly_its_inline_code(client: httpx.AsyncClient) -> None:
    r = await client.get("/admin")
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["connect-src"] == "'self'"
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", r.text, re.DOTALL).group(1)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert csp[directive] == f"'sha256-{digest}'"  # no 'unsafe-inline': injected markup cannot run
    assert r.headers["cache-control"] == "no-store"
