"""Fixtures for tests against real services other than the broker (Redis)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from ehis.testing import missing_service, where

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


async def _redis_answers(url: str) -> str | None:
    """None when Redis at `url` answers PING, else why not."""
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - refused, timed out, auth: all mean "no Redis"
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis URL (EHIS_TEST_REDIS_URL or db 15 on the local default).

    A laptop without Redis skips these tests; with CI set they fail instead, so a broken
    Redis can never turn the integration suite into silent skips.
    """
    url = os.environ.get("EHIS_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    problem = asyncio.run(_redis_answers(url))
    if problem is not None:
        missing_service(f"Redis at {where(url, 6379)} does not answer ({problem})")
    yield url
