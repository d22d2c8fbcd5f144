"""What the admin page and health checks read from a running hub (`ehis.monitor.web.AdminProvider`).

Breaker states and in-flight calls are this worker's own; the exchange log and the outages
come from the shared database, so they cover every worker.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ehis.adapters.events import SourceStatus
from ehis.audit.model import LogQuery, Outage, SourceStats, StoredRecord
from ehis.bootstrap import HubParts
from ehis.bus.transport import Transport

log = logging.getLogger(__name__)


class HubAdmin:
    def __init__(self, parts: HubParts, transport: Transport):
        self.parts = parts
        self.transport = transport

    def sources(self) -> list[SourceStatus]:
        return self.parts.hub.source_statuses()

    async def checks(self) -> dict[str, bool]:
        checks = {"bus": self.transport.connected}
        if self.parts.log is not None:
            try:
                await self.parts.log.ping()
                checks["exchange_log"] = True
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                log.warning("exchange log not ready: %s", type(exc).__name__)
                checks["exchange_log"] = False
        if self.parts.checkpoints is not None:
            checks["timestamps"] = not self.parts.checkpoints.overdue()
        return checks

    def timestamps(self) -> dict[str, Any] | None:
        """How the checkpoints' time-stamping stands (the admin page's line about it)."""
        cp = self.parts.checkpoints
        if cp is None:
            return None
        return {"enabled": cp.tsa is not None, "delay_seconds": round(cp.delay(), 1), "overdue": cp.overdue(),
                "max_unstamped": cp.max_unstamped, "last_error": cp.last_error}

    async def search(self, query: LogQuery) -> list[StoredRecord]:
        return await self.parts.log.search(query) if self.parts.log is not None else []

    async def outages(self, source: str | None = None) -> list[Outage]:
        return await self.parts.outages.list(source)

    async def source_stats(self, since: datetime) -> list[SourceStats]:
        return await self.parts.log.source_stats(since) if self.parts.log is not None else []
