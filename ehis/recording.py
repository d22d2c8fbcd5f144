"""Every reply is accounted for before it is sent: one exchange-log record and the metrics.

The worker calls `Recorder.record` for every reply, malformed and late requests included. It
returns only once the record is committed, so a crash can never leave an answered exchange
unrecorded; if the log cannot take it, the caller gets a retryable error instead of the data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError

from ehis import catalogue, sources, tracing
from ehis.audit.durable import DurableLog
from ehis.audit.log import ExchangeLog
from ehis.audit.model import ExchangeRecord
from ehis.bus.envelope import Reply, Request
from ehis.calls import Part
from ehis.monitor.metrics import HubMetrics

REPLY_MARGIN = 0.15  # seconds of the caller's deadline kept for publishing the reply after its record


class StampOverdue(RuntimeError):
    """No checkpoint could be time-stamped for longer than `max_unstamped`: nothing more is answered."""


class Recorder:
    def __init__(self, log: ExchangeLog | None, metrics: HubMetrics | None = None, user_prefix: str = "",
                 overdue: Callable[[], bool] | None = None, durable: DurableLog | None = None):
        self.log = log
        self.durable = durable  # the log with its spool: appends bounded by the caller's deadline  # None only when configured off (benchmarks); the statute requires it
        self.metrics = metrics
        self.user_prefix = user_prefix  # the deployment's broker user prefix: not part of the subsystem
        self.overdue = overdue  # the checkpoints' time-stamps are too late: the hub stops answering

    async def record(self, request: Request | None, reply: Reply, broker_user: str | None, seconds: float,
                     *, redelivered: bool = False, withheld: bool = False) -> None:
        """Record `reply` durably (database or spool) within what is left of the request's deadline.

        `withheld`: the reply is the error that replaced an answer that could not be recorded, so
        this is a last try (the time-stamp check is not repeated)."""
        outcome = reply.error.code if reply.error else "ok"
        caller = self._subsystem(broker_user)
        if not withheld and self.overdue is not None and self.overdue():
            raise StampOverdue("the exchange log has gone longer than max_unstamped without a time-stamp")
        record = exchange_record(request, reply, caller, seconds)
        if redelivered:
            record = record.model_copy(update={"delivery": "redelivered"})
        await self._append(record, None if request is None else request.remaining() - REPLY_MARGIN)
        if self.metrics is not None and request is not None:
            self.metrics.request_done(request.service, caller or request.requester.subsystem, outcome,
                                      reply.meta.cache, seconds)

    def expecting(self) -> AbstractContextManager[None]:
        """Around handling a request that will be recorded: the log may wait for its record to
        share a transaction with others (`ExchangeLog.commit_delay`)."""
        return self.log.expecting() if self.log is not None else nullcontext()

    async def recorded(self, request: Request) -> bool:
        """Whether the log already holds a record of `request`'s id (False when it cannot tell:
        then a second record may be made, which the spool's replay drops if it gets there)."""
        if self.log is None:
            return False
        try:
            async with asyncio.timeout(max(0.05, min(1.0, request.remaining() / 4))):
                return bool(await self.log.recorded([request.id]))
        except Exception:  # noqa: BLE001 - the database is away or slow
            return False

    async def append(self, record: ExchangeRecord) -> None:
        """An exchange the hub made on its own (an event received, delivered or refused)."""
        await self._append(record, None)

    async def _append(self, record: ExchangeRecord, budget: float | None, **span: bool) -> None:
        if self.log is None:
            return
        with tracing.span("exchange log append", **span):
            if self.durable is not None:
                await self.durable.append(record, budget)
            else:
                await self.log.append(record)

    def _subsystem(self, broker_user: str | None) -> str | None:
        """The subsystem a broker user of this deployment stands for; another login as it is."""
        if broker_user is None or not self.user_prefix or not broker_user.startswith(self.user_prefix):
            return broker_user
        return broker_user[len(self.user_prefix):]


    async def record_part(self, request: Request, caller: str, part: Part) -> None:
        """A source call made as part of `request`, as an exchange of its own linked to it."""
        if self.log is None:
            return
        requester = request.requester
        evidence = part.evidence
        record = ExchangeRecord(
            request_id=str(uuid.uuid4()), parent_id=request.id, time=datetime.now(UTC), subsystem=caller,
            user=requester.user, purpose=requester.purpose, service=part.service, source=part.service.split(".")[0],
            subject=part.subject, outcome="ok" if part.error_code is None else "error", error_code=part.error_code,
            cache=part.cache, duration_ms=part.duration_ms, signer=evidence.signer if evidence else None,
            evidence=evidence.digest if evidence else None, endpoint=part.endpoint,
        )
        await self._append(record, request.remaining() - REPLY_MARGIN, part=True)


def exchange_record(request: Request | None, reply: Reply, broker_user: str | None, seconds: float) -> ExchangeRecord:
    requester = request.requester if request is not None else None
    return ExchangeRecord(
        request_id=reply.id,
        time=datetime.now(UTC),
        subsystem=broker_user or (requester.subsystem if requester else ""),
        user=requester.user if requester else "",
        purpose=requester.purpose if requester else "",
        service=request.service if request is not None else "",
        source=_source_of(request) if request is not None else "",
        subject=subject_of(request) if request is not None else None,
        outcome="ok" if reply.error is None else "error",
        error_code=reply.error.code if reply.error else None,
        cache=reply.meta.cache,
        duration_ms=round(seconds * 1000, 2),
        signer=reply.meta.signed_by,
        evidence=reply.meta.evidence,
    )


def _source_of(request: Request) -> str:
    entry = catalogue.SERVICES.get(request.service)
    return entry.system if entry is not None else request.system


def subject_of(request: Request) -> str | None:
    """The identifier of the person or company the request is about: validated and normalised as
    the service reads it, so the log finds it however the caller spelt it; for a value the
    service refused, as written (trimmed, upper-cased, bounded)."""
    params, field = _subject_field(request.service)
    if params is None or field is None:
        return None
    try:
        value = getattr(params.model_validate(request.params), field)
        return None if value is None else str(value)
    except ValidationError:
        raw = request.params.get(field)
        return str(raw).strip().upper()[:64] if raw is not None else None


def _subject_field(name: str) -> tuple[type[BaseModel] | None, str | None]:
    """The params model of a service and the field naming its data subject."""
    from ehis.composites import COMPOSITES

    service = sources.service(name)
    if service is not None:
        return service.params, service.subject
    composite = COMPOSITES.get(name)
    return (composite.params, composite.subject) if composite is not None else (None, None)
