"""What the admin page and health checks read from a running hub (`ehis.monitor.web.AdminProvider`).

Breaker states and in-flight calls are this worker's own; the exchange log and the outages
come from the shared database, so they cover every worker.

An operator's search of the exchange log is recorded in it as an access, like a caller's request:
subsystem `ehis-admin` (no MEİS subsystem has that name, so it is never taken for a caller),
service `admin.log-search`, source `ehis` (the data came from the hub's own log), the admin as
the official, the searched subject as the data subject (so `ehis log report FIN` shows who
looked the person up on the admin page), the query and the address in the purpose, and the
SHA-256 of what was shown as evidence.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from ehis.adapters.events import SourceStatus
from ehis.audit.model import ExchangeRecord, LogQuery, Outage, SourceStats, StoredRecord
from ehis.bootstrap import HubParts
from ehis.bus.transport import Transport
from ehis.events.status import delivery_status
from ehis.events.wiring import RunningEvents
from ehis.monitor.web import LogAccess

log = logging.getLogger(__name__)

ADMIN_SUBSYSTEM = "ehis-admin"
SEARCH_SERVICE = "admin.log-search"
ADMIN_SOURCE = "ehis"
PURPOSE_FIELDS = ("subsystem", "service", "outcome", "since", "until", "limit")


def access_record(access: LogAccess) -> ExchangeRecord:
    """The exchange-log record of an operator's search of that log."""
    query = access.query
    filters = ", ".join(f"{name}={value.isoformat() if isinstance(value, datetime) else value}"
                        for name in PURPOSE_FIELDS if (value := getattr(query, name)) is not None)
    purpose = (f"admin page search of the exchange log from {access.address or 'unknown address'}: {filters}; "
               f"{access.count} record{'' if access.count == 1 else 's'} shown")
    return ExchangeRecord(
        request_id=str(uuid.uuid4()), time=datetime.now(UTC), subsystem=ADMIN_SUBSYSTEM, user=access.user,
        purpose=purpose[:1000], service=SEARCH_SERVICE, source=ADMIN_SOURCE,
        subject=query.subject[:64] if query.subject else None, outcome="ok",
        duration_ms=round(access.seconds * 1000, 2), evidence=access.digest,
    )


class HubAdmin:
    def __init__(self, parts: HubParts, transport: Transport, events: RunningEvents | None = None):
        self.parts = parts
        self.transport = transport
        self.events = events

    async def event_status(self) -> dict[str, Any] | None:
        """The events panel: the outbox, the sources' events and pollers, the subscribers' queues."""
        if self.events is None:
            return None
        return await delivery_status(self.events.store, self.events.bus, self.events.subscribers)

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

    async def record_access(self, access: LogAccess) -> None:
        if self.parts.log is not None:  # off only for benchmarks, and then there is nothing to search
            await self.parts.log.append(access_record(access))

    async def outages(self, source: str | None = None) -> list[Outage]:
        return await self.parts.outages.list(source)

    async def source_stats(self, since: datetime) -> list[SourceStats]:
        if self.parts.log is None:
            return []
        # the admin's own searches are not a source's traffic
        return [s for s in await self.parts.log.source_stats(since) if s.source != ADMIN_SOURCE]
