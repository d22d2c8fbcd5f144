"""A broker that stops answering (a hung node, a network that drops every byte) while a worker
sets up its queues or shuts down: a clear error or a finished shutdown, never a hang."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import pytest

from ehis.bus import amqp
from ehis.bus.connection import BusConnectionError
from ehis.bus.transport import open_transport
from ehis.bus.worker import Worker
from tests.integration.servers import TcpProxy

from .contract import SERVED, scripted_dispatch
from .test_amqp import _delete_namespace

pytestmark = pytest.mark.rabbitmq


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}").geturl()


async def test_queue_setup_and_shutdown_on_a_silent_broker_end_in_time(rabbitmq_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amqp, "BROKER_ANSWER", 1.0)
    namespace = f"ehis-test-{uuid.uuid4().hex[:12]}"
    real = urlsplit(rabbitmq_url)
    try:
        async with TcpProxy((real.hostname or "127.0.0.1", real.port or 5672)) as proxy:
            transport = open_transport(through(proxy, rabbitmq_url), namespace=namespace)
            await transport.connect()
            worker = Worker(transport, scripted_dispatch)
            await worker.serve("din", SERVED)  # answered: the broker is still talking
            proxy.freeze()
            with pytest.raises(BusConnectionError, match="did not answer .*vergiler within 1 s"):
                await asyncio.wait_for(worker.serve("vergiler", ["vergiler.taxpayer"]), timeout=20)
            await asyncio.wait_for(transport.close(), timeout=20)  # the consumer's cancel and close give up
    finally:
        await _delete_namespace(rabbitmq_url, namespace)
