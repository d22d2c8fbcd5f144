"""The event store on SQLite and PostgreSQL: one poller per source across workers (a lease in the
database), the cursor moving with the events in one transaction, each event stored once, the
outbox published in order; and two hubs over one store, of which only one polls a source."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ehis.events.models import Event
from ehis.events.store import EventStore, LeaseLost, open_event_store
from ehis.simulators import create_app
from ehis.simulators.events import emit
from ehis.simulators.world import world
from ehis.sources import sources
from ehis.testing import hub_in_process
from tests.audit.conftest import postgres_database, postgres_url  # noqa: F401 - fixtures

LEASE = "poll:din"


def event(n: int) -> Event:
    now = datetime.now(UTC)
    return Event(id=f"din:ch-{n}", key="din.address-changed", source_event_id=f"ch-{n}", subject="5GXM4DZ",
                 occurred_at=now, received_at=now, via="poll", signed_by="CN=din", evidence="0" * 64, data={"n": n})


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[EventStore]:
    if store_url.startswith("postgresql"):  # one database for the module: each test starts empty
        import asyncpg

        connection = await asyncpg.connect(store_url)
        await connection.execute("DROP TABLE IF EXISTS event_outbox, event_cursor, event_lease")
        await connection.close()
    async with open_event_store(store_url) as opened:
        yield opened


async def test_one_holder_at_a_time_until_its_lease_lapses_or_is_handed_back(store: EventStore) -> None:
    assert await store.lease(LEASE, "worker-a", ttl=0.5)
    assert not await store.lease(LEASE, "worker-b", ttl=0.5)
    assert await store.lease(LEASE, "worker-a", ttl=0.5)  # renewed by its holder
    await asyncio.sleep(0.6)
    assert await store.lease(LEASE, "worker-b", ttl=30)  # lapsed: taken over
    assert not await store.lease(LEASE, "worker-a", ttl=30)
    await store.release(LEASE, "worker-a")  # not its own: nothing happens
    assert not await store.lease(LEASE, "worker-a", ttl=30)
    await store.release(LEASE, "worker-b")
    assert await store.lease(LEASE, "worker-a", ttl=30)


async def test_only_the_lease_holder_stores_a_poll_and_moves_the_cursor(store: EventStore) -> None:
    assert await store.lease(LEASE, "worker-a", ttl=30)
    new = await store.add([event(1), event(2)], cursor=("din", "c2"), lease=(LEASE, "worker-a"))
    assert [e.id for e in new] == ["din:ch-1", "din:ch-2"] and await store.position("din") == "c2"
    with pytest.raises(LeaseLost):
        await store.add([event(3)], cursor=("din", "c3"), lease=(LEASE, "worker-b"))
    assert await store.position("din") == "c2"  # neither the event nor the cursor
    assert await store.held(["din:ch-3"]) == set()


async def test_an_event_is_stored_once_and_published_in_order(store: EventStore) -> None:
    assert [e.id for e in await store.add([event(1), event(2)])] == ["din:ch-1", "din:ch-2"]
    assert [e.id for e in await store.add([event(2), event(3)])] == ["din:ch-3"]  # ch-2 again: held already
    pending = await store.pending()
    assert [p.event.id for p in pending] == ["din:ch-1", "din:ch-2", "din:ch-3"]
    await store.published([pending[0].seq])
    assert [p.event.id for p in await store.pending()] == ["din:ch-2", "din:ch-3"]
    stats = await store.stats()
    assert stats.pending == 2 and stats.received == {"din": 3}


async def test_two_hubs_over_one_store_poll_a_source_from_one_of_them(tmp_path: Path, pki) -> None:
    """Two workers (in process, one SQLite database): the din poller runs in one only, the
    changes are stored once, and when that one stops the other takes the poller over."""
    world().reset_overlay()
    app = create_app(pki)
    shared = {"database_url": f"sqlite:///{tmp_path / 'shared.db'}", "event_poll_interval": 0.2,
              "event_lease": 1.0, "serve_sources": ["din"]}
    din = sources()["din"]
    async with hub_in_process(tmp_path / "a", pki, app, events=True, **shared) as a, \
            hub_in_process(tmp_path / "b", pki, app, events=True, **shared) as b:
        assert a.events is not None and b.events is not None
        hubs = {a.events.hub.holder: a, b.events.hub.holder: b}
        for _ in range(3):
            emit(world(), "din.address-changed", rng=random.Random(7))
        async with asyncio.timeout(20):
            while (await a.events.store.stats()).received.get("din", 0) < 1:
                await asyncio.sleep(0.05)
        holder = (await a.events.store.stats()).leases["poll:din"][0]
        other = next(h for name, h in hubs.items() if name != holder)
        assert await other.events.hub.poll_once(din, other.parts.calls) is None  # not its turn
        await asyncio.sleep(1.0)
        stored = (await a.events.store.stats()).received["din"]
        assert stored == len(world().feed("din"))  # every change once, whoever stored it
        await hubs[holder].events.hub.stop()  # hands its leases back
        async with asyncio.timeout(10):
            while (await a.events.store.stats()).leases.get("poll:din", ("",))[0] != other.events.hub.holder:
                await asyncio.sleep(0.05)
    world().reset_overlay()

