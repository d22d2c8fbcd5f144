"""Fixtures shared by every test directory."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator

import pytest

from ehis.security.pki import Pki, init_pki, pki_parties
from ehis.testing import missing_service, where

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
# compiled contract plans go to a cache of the tests' own (processes they start inherit it)
os.environ.setdefault("EHIS_CONTRACT_CACHE", tempfile.mkdtemp(prefix="ehis-test-contracts-"))


async def _broker_answers(url: str) -> str | None:
    """None when an AMQP handshake with `url` succeeds, else why not."""
    import aio_pika

    try:
        connection = await asyncio.wait_for(aio_pika.connect(url), timeout=5)
    except Exception as exc:  # noqa: BLE001 - refused, timed out, bad credentials: all mean "no broker"
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The broker URL (EHIS_TEST_AMQP_URL or the local default).

    A laptop without RabbitMQ skips these tests; with CI set they fail instead, so a broken
    broker can never turn the integration suite into silent skips.
    """
    url = os.environ.get("EHIS_TEST_AMQP_URL", DEFAULT_AMQP_URL)
    problem = asyncio.run(_broker_answers(url))
    if problem is not None:
        missing_service(f"RabbitMQ at {where(url, 5672)} does not answer ({problem})")
    yield url


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One test PKI for the session, as `ehis pki init` makes it: every party of the catalogue."""
    return init_pki(tmp_path_factory.mktemp("pki") / "pki", pki_parties())
