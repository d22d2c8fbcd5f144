"""The /admin page in headless Chromium over a real socket, against a real hub after real
traffic: the sources table (din's breaker open), a search by subject, escaping of caller text.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import pytest

from ehis.admin import HubAdmin
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.monitor import create_admin_app, serve_admin
from ehis.simulators import create_app
from ehis.simulators.faults import parse_rules
from ehis.testing import hub_in_process, missing_service
from tests.integration.events_helpers import death, push, push_body

from .conftest import HOSTILE_PURPOSE, SUBJECT

DECEASED = "7HJK2LM"  # the subject of a pushed death, not of the searched exchanges

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
TIMEOUT_MS = 10_000


try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - depends on the machine
    missing_service("the playwright package is not installed")


@dataclass(frozen=True)
class AdminSite:
    """A running admin page and what it must show."""

    base_url: str
    credentials: tuple[str, str] | None
    sources: Mapping[str, str]  # source -> breaker state the sources table must show (others may appear)
    subject: str  # a data subject with exchanges in the log
    subject_request_ids: frozenset[str]  # exactly the exchanges a search by `subject` lists
    hostile_purpose: str  # the purpose of one of those exchanges: markup that must stay text


@pytest.fixture
async def admin_site(tmp_path, pki) -> AsyncIterator[AdminSite]:
    """A real hub (memory bus, SQLite log, simulators in process) after real traffic: exchanges
    about SUBJECT (one with a hostile purpose, one refused), another person's, and din failing
    until its breaker opens. The page is served on a real socket, as `ehis serve` does."""
    simulators = create_app(pki)
    policy = {"din": {"attempts": 1, "breaker_window": 2, "breaker_minimum_calls": 2,
                       "breaker_open_initial": 300, "breaker_open_max": 300}}
    credentials = ("admin", "browser-test-password")
    async with hub_in_process(tmp_path, pki, simulators, sources=policy, events=True, events_listen="127.0.0.1:0",
                              event_poll_interval=600) as running:
        def caller(subsystem: str, purpose: str = "contract 2025/118") -> BusClient:
            requester = Requester(subsystem=subsystem, user="AZ0000001", purpose=purpose)
            return BusClient(running.transport, requester=requester)

        ids = [
            (await caller("emek-muqavilesi").request("din.person", {"fin": SUBJECT})).id,
            (await caller("pensiya", HOSTILE_PURPOSE).request("din.person", {"fin": SUBJECT}, fresh=True)).id,
            (await caller("monitorinq").request("din.person", {"fin": SUBJECT})).id,  # refused
        ]
        await caller("emek-muqavilesi").request("din.person", {"fin": "7KQP2LA"})
        simulators.state.faults.add(parse_rules([{"kind": "http_503", "system": "din"}]))
        for fin in ("8RTY2WE", "9UPA3SD"):
            assert (await caller("emek-muqavilesi").request("din.person", {"fin": fin})).error is not None
        await running.parts.outages.flush()
        assert running.events is not None and running.events.inbound_url is not None
        pushed = await push(running.events.inbound_url.removesuffix("/events"), "edliyye",
                            push_body(pki, "edliyye", [death("admin-page-1", DECEASED)]))
        assert pushed.status_code == 200
        while (await running.events.store.stats()).pending:  # published: in the subscribers' queues
            await asyncio.sleep(0.02)
        app = create_admin_app(running.parts.metrics, HubAdmin(running.parts, running.transport, running.events),
                               auth=credentials)
        async with serve_admin(app, "127.0.0.1", 0) as url:
            yield AdminSite(
                base_url=url,
                credentials=credentials,
                sources={"din": "open"},
                subject=SUBJECT,
                subject_request_ids=frozenset(ids),
                hostile_purpose=HOSTILE_PURPOSE,
            )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        missing_service("no chromium on PATH (Debian: apt install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Browser, admin_site: AdminSite) -> AsyncIterator[Page]:
    """/admin loaded; an uncaught error in the page's script fails the test at teardown."""
    context = await browser.new_context(
        http_credentials=({"username": admin_site.credentials[0], "password": admin_site.credentials[1]}
                          if admin_site.credentials else None))
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = await page.goto(f"{admin_site.base_url}/admin")
    assert response is not None and response.status == 200
    yield page
    await context.close()
    assert errors == [], f"the page's script failed: {errors}"


async def test_sources_table_shows_each_source_and_its_state(page: Page, admin_site: AdminSite) -> None:
    # the log may name sources this worker does not call, so "at least these", not "only these"
    for source, state in admin_site.sources.items():
        row = page.locator(f'#sources-body tr[data-source="{source}"]')
        await expect(row.locator('[data-field="source"]')).to_have_text(source)
        await expect(row.locator('[data-field="state"]')).to_have_text(state)
        await expect(row.locator('[data-field="state"]')).to_have_attribute("data-state", state)
    # every column has been filled in, none left at the placeholder
    for field in ("last_success", "error_rate", "in_flight", "outage"):
        await expect(page.locator(f'#sources-body [data-field="{field}"]').first).not_to_be_empty()
    await expect(page.locator("#outages-body")).not_to_contain_text("loading")
    for source, state in admin_site.sources.items():
        if state == "open":  # an open breaker is an ongoing outage of that source
            await expect(page.locator('#outages-body tr[data-testid="outage-row"]').filter(has_text=source)).not_to_have_count(0)
    await expect(page.locator("#error-banner")).to_be_hidden()


async def test_search_by_subject_lists_exactly_its_exchanges(page: Page, admin_site: AdminSite) -> None:
    await page.fill("#q-subject", admin_site.subject)
    await page.click("#search-submit")
    count = len(admin_site.subject_request_ids)
    await expect(page.locator("#search-status")).to_have_text(re.compile(rf"^{count} records?\b"))
    rows = page.locator('#results-body tr[data-testid="result-row"]')
    await expect(rows).to_have_count(count)
    shown = await rows.locator('[data-field="request_id"]').all_text_contents()
    assert set(shown) == admin_site.subject_request_ids
    assert set(await rows.locator('[data-field="subject"]').all_text_contents()) == {admin_site.subject}
    for field in ("time", "subsystem", "service", "outcome", "duration"):
        assert all(text not in ("", "—") for text in await rows.locator(f'[data-field="{field}"]').all_text_contents()), field
    # a FIN typed in the form must never reach the address bar or the history
    assert admin_site.subject not in page.url


async def test_hostile_purpose_is_shown_as_text(page: Page, admin_site: AdminSite) -> None:
    await page.fill("#q-subject", admin_site.subject)
    await page.click("#search-submit")
    await expect(page.locator('#results-body tr[data-testid="result-row"]')).to_have_count(
        len(admin_site.subject_request_ids))
    purposes = await page.locator('#results-body [data-field="purpose"]').all_text_contents()
    assert admin_site.hostile_purpose in purposes
    assert await page.locator("#results-body img, #results-body script").count() == 0
    assert await page.evaluate("typeof window.__ehisXss") == "undefined"


async def test_bad_search_shows_the_reason(page: Page, admin_site: AdminSite) -> None:
    await page.fill("#q-limit", "0")
    await page.evaluate("document.getElementById('q-limit').removeAttribute('min')")  # let the API refuse it
    await page.click("#search-submit")
    await expect(page.locator("#search-status")).to_have_text(re.compile(r"^Search failed: limit: "))
    await expect(page.locator('#results-body tr')).to_have_count(0)


async def test_events_panel_shows_what_came_in_and_what_waits_for_each_subscriber(page: Page) -> None:
    row = page.locator('#event-sources-body tr[data-source="edliyye"]')
    await expect(row.locator('[data-field="received"]')).to_have_text("1")
    await expect(row.locator('[data-field="polled"]')).to_have_text("pushes")
    await expect(page.locator("#events-outbox")).to_contain_text("Outbox: 0 event(s)")
    for subscriber, waiting in (("pensiya", "1"), ("vemtas", "1"), ("ovladliq", "0"), ("hhe", "0")):
        line = page.locator(f'#event-subscribers-body tr[data-subscriber="{subscriber}"]')
        await expect(line.locator('[data-field="waiting"]')).to_have_text(waiting)
    # counts only: no event's subject on the panel
    assert DECEASED not in await page.locator("#events-section").inner_text()
