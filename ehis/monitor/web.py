"""The hub's operator endpoints: /metrics, /health/*, the admin JSON API and the /admin page.

The app knows nothing about the hub: it reads metrics from `HubMetrics` and everything else from
an `AdminProvider`, so tests drive it with a fake and the hub plugs in its breakers and stores.

/metrics and /health/* stay open (Prometheus and the orchestrator probe them); /api/* and /admin
show the exchange log, which is personal data, so they take HTTP Basic auth when `auth` is set.
A search of the exchange log is itself an access to personal data: before its results leave, the
provider records it (`record_access`: who, from where, what query, how many records, a digest of
what was shown); if that record cannot be written, nothing is shown.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ehis.adapters.events import BreakerState, SourceStatus
from ehis.audit.model import LogQuery, Outage, SourceStats, StoredRecord
from ehis.errors import ErrorCode
from ehis.identifiers import normalize_subject
from ehis.monitor.metrics import HubMetrics

log = logging.getLogger(__name__)

ERROR_RATE_WINDOW = timedelta(hours=1)
CHECK_TIMEOUT = 5.0  # seconds a readiness probe waits for the worker's own dependencies
QUERY_FIELDS = ("subject", "subsystem", "service", "outcome", "error_code", "since", "until", "limit")
# answers can hold personal data: never cached; and never sniffed into HTML by a browser
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class LogAccess:
    """One search of the exchange log by an operator: what the record of that access says."""

    user: str  # the admin who authenticated, or "anonymous" when the page takes no password
    address: str  # where the request came from
    query: LogQuery
    count: int  # records shown
    digest: str  # SHA-256 of the exact JSON shown
    seconds: float


class AdminProvider(Protocol):
    """What the admin app needs from a running hub."""

    def sources(self) -> list[SourceStatus]:
        """Every source this worker calls, as its resilience layer sees it now."""
        ...

    async def checks(self) -> dict[str, bool]:
        """Readiness of the worker's own dependencies, e.g. {"bus": True, "exchange_log": True}."""
        ...

    async def search(self, query: LogQuery) -> list[StoredRecord]:
        ...

    async def record_access(self, access: LogAccess) -> None:
        """Record a search of the log as an access; raise if it cannot be recorded."""
        ...

    async def outages(self, source: str | None = None) -> list[Outage]:
        ...

    async def source_stats(self, since: datetime) -> list[SourceStats]:
        ...


class BadQuery(ValueError):
    """A query string the API refuses, with a message meant for the operator."""


class _Unavailable(Exception):
    """A provider call failed; answered as 503 with the message (which names no data)."""


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 with an offset; a naive datetime is UTC, as everywhere in the hub."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _parse_time(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"{name}: not an ISO 8601 date-time (e.g. 2025-01-31T09:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_log_query(params: QueryParams | Mapping[str, str]) -> LogQuery:
    """The exchange-log query in a query string; empty fields are absent, as a form sends them."""
    values: dict[str, str] = {}
    for name in params:
        if name not in QUERY_FIELDS:
            raise BadQuery(f"unknown parameter {name!r}; expected {', '.join(QUERY_FIELDS)}")
        given = params.getlist(name) if isinstance(params, QueryParams) else [params[name]]
        if len(given) > 1:
            raise BadQuery(f"{name}: give it once")
        if given[0].strip():
            values[name] = given[0].strip()
    data: dict[str, Any] = dict(values)
    _check_codes(data)
    for name in ("since", "until"):
        if name in values:
            data[name] = _parse_time(name, values[name])
    if "since" in data and "until" in data and data["since"] > data["until"]:
        raise BadQuery("since is after until")
    try:
        return LogQuery.model_validate(data)
    except ValidationError as exc:
        # only field names and pydantic's message: never echo a value (a subject is a FIN)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BadQuery(problems) from None


def _check_codes(data: dict[str, Any]) -> None:
    """The subject as the log keeps it (a FIN in capitals), outcome and error code from their
    closed sets: a typo is a 400 saying so, never an empty answer."""
    if "subject" in data:
        try:
            data["subject"] = normalize_subject(data["subject"])
        except ValueError as exc:
            raise BadQuery(f"subject: {exc}") from None
    if "outcome" in data:
        data["outcome"] = data["outcome"].lower()
        if data["outcome"] not in ("ok", "error"):
            raise BadQuery("outcome: ok or error (error_code takes one error code)")
    if "error_code" in data:
        data["error_code"] = data["error_code"].lower()
        if data["error_code"] not in {code.value for code in ErrorCode}:
            raise BadQuery(f"error_code: one of {', '.join(code.value for code in ErrorCode)}")


def status_json(status: SourceStatus) -> dict[str, Any]:
    return {
        "source": status.source,
        "state": status.state.value,
        "in_flight": status.in_flight,
        "consecutive_failures": status.consecutive_failures,
        "last_success_at": _iso(status.last_success_at),
        "last_failure_at": _iso(status.last_failure_at),
        "last_error": status.last_error,
        "opened_at": _iso(status.opened_at),
    }


def outage_json(outage: Outage) -> dict[str, Any]:
    return {"source": outage.source, "started_at": _iso(outage.started_at),
            "ended_at": _iso(outage.ended_at), "reason": outage.reason}


def record_json(record: StoredRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    data["time"] = _iso(record.time)
    return data


def source_overview(statuses: list[SourceStatus], stats: list[SourceStats],
                    outages: list[Outage]) -> list[dict[str, Any]]:
    """One entry per source known to this worker, the log or the outage store, by name."""
    by_status = {s.source: s for s in statuses}
    by_stats = {s.source: s for s in stats}
    names = sorted(set(by_status) | set(by_stats) | {o.source for o in outages})
    entries = []
    for name in names:
        status, stat = by_status.get(name), by_stats.get(name)
        mine = [o for o in outages if o.source == name]
        ongoing = max((o for o in mine if o.ended_at is None), key=lambda o: o.started_at, default=None)
        calls, errors = (stat.total, stat.errors) if stat else (0, 0)
        entries.append({
            "source": name,
            "status": status_json(status) if status else None,  # None: this worker does not call it
            # errors: the source failing (ehis.errors.SOURCE_FAILURES), the one rate held against it;
            # a caller's forbidden, invalid or not-found request is counted apart
            "last_hour": {"calls": calls, "errors": errors, "error_rate": errors / calls if calls else None,
                          "caller_errors": stat.caller_errors if stat else 0,
                          "other_errors": stat.other_errors if stat else 0,
                          "last_ok_at": _iso(stat.last_ok_at) if stat else None},
            "outages": {"count": len(mine), "ongoing": outage_json(ongoing) if ongoing else None},
        })
    return entries


@cache
def admin_page() -> tuple[bytes, str]:
    """The page and its Content-Security-Policy, which allows its own inline script and style only."""
    html = resources.files("ehis.monitor").joinpath("static/admin.html").read_text(encoding="utf-8")

    def digest(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
        if len(blocks) != 1:
            raise RuntimeError(f"admin.html must hold exactly one inline <{tag}>")
        return "'sha256-" + base64.b64encode(hashlib.sha256(blocks[0].encode()).digest()).decode() + "'"

    csp = (f"default-src 'none'; script-src {digest('script')}; style-src {digest('style')}; "
           "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html.encode("utf-8"), csp


def _basic_auth_ok(header: str | None, user: bytes, password: bytes) -> bool:
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        given_user, sep, given_password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return False
    # both comparisons always run, in constant time, so timing tells neither which part was wrong
    user_ok = hmac.compare_digest(given_user, user)
    password_ok = hmac.compare_digest(given_password, password)
    return bool(sep) and user_ok and password_ok


def _error(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=NO_STORE)


def create_admin_app(metrics: HubMetrics, provider: AdminProvider, *,
                     auth: tuple[str, str] | None = None, check_timeout: float = CHECK_TIMEOUT) -> Starlette:
    """The operator app; with `auth` = (user, password), /admin and /api/* take HTTP Basic auth."""
    credentials = (auth[0].encode("utf-8"), auth[1].encode("utf-8")) if auth else None

    def protected(handler: Handler) -> Handler:
        if credentials is None:
            return handler

        async def guarded(request: Request) -> Response:
            if not _basic_auth_ok(request.headers.get("authorization"), *credentials):
                return Response("authentication required", status_code=401, media_type="text/plain",
                                headers={**NO_STORE, "WWW-Authenticate": 'Basic realm="EHIS admin", charset="UTF-8"'})
            return await handler(request)

        return guarded

    async def call(what: str, action: Awaitable[Any]) -> Any:
        """A provider call; on failure, a 503 naming only what failed and the exception type."""
        try:
            return await action
        except Exception as exc:  # the message could carry personal data: log the type only
            log.error("admin api: %s failed: %s", what, type(exc).__name__)
            raise _Unavailable(f"{what} unavailable") from exc

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "alive"}, headers=NO_STORE)

    async def ready(request: Request) -> Response:
        problems: list[str] = []
        statuses: list[SourceStatus] = []
        checks: dict[str, bool] = {}
        try:
            statuses = provider.sources()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"sources: {type(exc).__name__}")
        try:
            checks = dict(await asyncio.wait_for(provider.checks(), timeout=check_timeout))
        except Exception as exc:  # noqa: BLE001 - a hung or failing check makes the worker not ready
            problems.append(f"checks: {type(exc).__name__}")
        if problems or not all(checks.values()):
            status, code = "unavailable", 503
        elif any(s.state is not BreakerState.CLOSED for s in statuses):
            status, code = "degraded", 200  # still answers other sources, fails fast for these
        else:
            status, code = "ok", 200
        body: dict[str, Any] = {"status": status, "checks": checks, "sources": [status_json(s) for s in statuses]}
        if problems:
            body["problems"] = problems
        return JSONResponse(body, status_code=code, headers=NO_STORE)

    async def exchanges(request: Request) -> Response:
        try:
            query = parse_log_query(request.query_params)
        except BadQuery as exc:
            return _error(str(exc), 400)
        started = time.perf_counter()
        records = await call("exchange log", provider.search(query))
        response = JSONResponse({"count": len(records), "limit": query.limit,
                                 "truncated": len(records) >= query.limit,
                                 "records": [record_json(r) for r in records]}, headers=NO_STORE)
        access = LogAccess(user=auth[0] if auth else "anonymous",
                           address=request.client.host if request.client else "",
                           query=query, count=len(records), digest=hashlib.sha256(response.body).hexdigest(),
                           seconds=time.perf_counter() - started)
        await call("exchange log", provider.record_access(access))  # recorded, or nothing is shown
        return response

    async def sources(request: Request) -> Response:
        since = datetime.now(UTC) - ERROR_RATE_WINDOW
        stats = await call("source statistics", provider.source_stats(since))
        outages = await call("outage store", provider.outages())
        body = {"window_seconds": int(ERROR_RATE_WINDOW.total_seconds()),
                "sources": source_overview(provider.sources(), stats, outages)}
        stamps = getattr(provider, "timestamps", None)  # optional: hubs with an exchange log have it
        if stamps is not None and (status := stamps()) is not None:
            body["timestamps"] = status
        return JSONResponse(body, headers=NO_STORE)

    async def outages(request: Request) -> Response:
        source = request.query_params.get("source", "").strip() or None
        found = await call("outage store", provider.outages(source))
        found = sorted(found, key=lambda o: o.started_at, reverse=True)
        return JSONResponse({"outages": [outage_json(o) for o in found]}, headers=NO_STORE)

    async def events(request: Request) -> Response:
        status = getattr(provider, "event_status", None)  # optional: a hub without events has none
        body = await call("event store", status()) if status is not None else None
        return JSONResponse({"enabled": body is not None, **(body or {})}, headers=NO_STORE)

    async def page(request: Request) -> Response:
        content, csp = admin_page()
        return HTMLResponse(content, headers={**NO_STORE, "Content-Security-Policy": csp,
                                              "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"})

    async def unavailable(request: Request, exc: Exception) -> Response:
        return _error(str(exc), 503)

    app = Starlette(
        routes=[
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            Route("/api/exchanges", protected(exchanges), methods=["GET"]),
            Route("/api/sources", protected(sources), methods=["GET"]),
            Route("/api/outages", protected(outages), methods=["GET"]),
            Route("/api/events", protected(events), methods=["GET"]),
            Route("/admin", protected(page), methods=["GET"]),
        ],
        exception_handlers={_Unavailable: unavailable},
    )

    return app

