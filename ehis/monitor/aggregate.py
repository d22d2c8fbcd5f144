"""One admin endpoint for the worker processes of `ehis serve --processes N`.

Each worker process serves its own admin app (ehis.monitor.web) on a unix socket only its parent
reaches; the parent serves this app on `admin_listen` and answers from all of them:

- `/metrics`: every process's scrape, summed sample by sample (counters, histogram buckets, calls
  in flight; `ehis_source_breaker_state` then counts the processes in each state), except
  timestamps and the checkpoint's wait (the largest) and `_created` (the earliest); plus
  `ehis_worker_processes`;
- `/health/ready`: 503 unless every process is ready; each source's breaker as the worst of them;
- `/api/sources`: the shared exchange log's statistics, with each source's status merged;
- anything else (`/admin`, `/api/exchanges`, `/api/outages`, `/health/live`...) is passed to one
  process: they read the shared database, so any process answers for all.

Why the parent collects rather than prometheus_client's multiprocess mode: breaker states, calls
in flight and last successes are read live from each process's guards at scrape time (a custom
collector), which the mode's mmap files cannot carry.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ehis.adapters.events import BreakerState

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
PASSED_REQUEST_HEADERS = ("authorization", "accept", "content-type")
DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection",
                                      "date", "server"})
# gauges that are one moment or one shared state, not a quantity per process: the largest value
LATEST_SUFFIXES = ("_timestamp_seconds", "_unstamped_seconds", "_overdue")
SEVERITY = {BreakerState.CLOSED.value: 0, BreakerState.HALF_OPEN.value: 1, BreakerState.OPEN.value: 2}


def worker_client(socket_path: str, timeout: float = 5.0) -> httpx.AsyncClient:
    """An HTTP client of one worker process's admin app, on its unix socket."""
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket_path), base_url="http://worker",
                             timeout=timeout)


# -- metrics -----------------------------------------------------------------------------------


def merge_metrics(texts: Iterable[str]) -> list[Metric]:
    """Prometheus text expositions of several processes as one set of families, sample by sample."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            slot = values[family.name]
            latest = family.type == "gauge" and family.name.endswith(LATEST_SUFFIXES)
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in slot:
                    slot[key] = sample.value
                elif latest:
                    slot[key] = max(slot[key], sample.value)
                elif sample.name.endswith("_created"):
                    slot[key] = min(slot[key], sample.value)
                else:
                    slot[key] += sample.value
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(families.values())


class _Merged:
    """A collector yielding families already merged (prometheus_client renders them)."""

    def __init__(self, families: list[Metric]):
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def exposition(families: list[Metric], configured: int, answering: int) -> bytes:
    processes = GaugeMetricFamily("ehis_worker_processes", "worker processes of this `ehis serve`, by state",
                                  labels=["state"])
    processes.add_metric(["configured"], configured)
    processes.add_metric(["answering"], answering)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged([*families, processes]))  # type: ignore[arg-type]
    return generate_latest(registry)


# -- breaker statuses --------------------------------------------------------------------------


def _when(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else datetime.min.replace(tzinfo=UTC)


def _latest(values: Iterable[str | None]) -> str | None:
    present = [v for v in values if v]
    return max(present, key=datetime.fromisoformat) if present else None


def merge_status(statuses: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One source's status (ehis.monitor.web.status_json) as several processes report it, as one:
    the worst breaker state, calls in flight summed, the latest success and failure."""
    worst = max(statuses, key=lambda s: SEVERITY.get(s["state"], 0))
    failed = max(statuses, key=lambda s: _when(s.get("last_failure_at")))
    opened = [s["opened_at"] for s in statuses if s.get("opened_at")]
    return {
        "source": worst["source"],
        "state": worst["state"],
        "in_flight": sum(int(s.get("in_flight") or 0) for s in statuses),
        "consecutive_failures": max(int(s.get("consecutive_failures") or 0) for s in statuses),
        "last_success_at": _latest(s.get("last_success_at") for s in statuses),
        "last_failure_at": failed.get("last_failure_at"),
        "last_error": failed.get("last_error"),
        "opened_at": min(opened, key=datetime.fromisoformat) if opened else None,
        "processes": len(statuses),
    }


def merge_status_lists(lists: Iterable[Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    by_source: dict[str, list[dict[str, Any]]] = {}
    for status in itertools.chain.from_iterable(lists):
        by_source.setdefault(status["source"], []).append(status)
    return [merge_status(by_source[name]) for name in sorted(by_source)]


# -- the app -----------------------------------------------------------------------------------


def create_aggregate_app(workers: Sequence[httpx.AsyncClient], pids: Sequence[int | None] = ()) -> Starlette:
    """The parent's admin app over `workers` (clients of each process's admin app, in order)."""
    turn = itertools.count()

    async def each(path: str, request: Request | None = None) -> list[httpx.Response | None]:
        headers = _passed(request) if request is not None else {}

        async def one(client: httpx.AsyncClient) -> httpx.Response | None:
            try:
                return await client.get(path, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("worker process admin %s unavailable: %s", path, type(exc).__name__)
                return None

        return list(await asyncio.gather(*(one(c) for c in workers)))

    async def metrics(request: Request) -> Response:
        answers = [r for r in await each("/metrics") if r is not None and r.status_code == 200]
        body = exposition(merge_metrics(r.text for r in answers), len(workers), len(answers))
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)

    async def ready(request: Request) -> Response:
        answers = await each("/health/ready")
        bodies = [_json(r) for r in answers]
        processes = [{"process": i + 1, "pid": pids[i] if i < len(pids) else None,
                      "status": (b or {}).get("status", "unreachable")} for i, b in enumerate(bodies)]
        checks: dict[str, bool] = {}
        for body in bodies:
            for name, ok in (body or {}).get("checks", {}).items():
                checks[name] = checks.get(name, True) and bool(ok)
        states = {p["status"] for p in processes}
        if states - {"ok", "degraded"}:
            status, code = "unavailable", 503
        else:
            status, code = ("degraded" if "degraded" in states else "ok"), 200
        sources = merge_status_lists((b or {}).get("sources", []) for b in bodies)
        return JSONResponse({"status": status, "checks": checks, "sources": sources, "processes": processes},
                            status_code=code, headers=NO_STORE)

    async def sources(request: Request) -> Response:
        answers = await each("/api/sources", request)
        first = next((r for r in answers if r is not None), None)
        if first is None:
            return JSONResponse({"error": "no worker process answers"}, status_code=503, headers=NO_STORE)
        if first.status_code != 200:
            return _relay(first)
        body = first.json()
        others = [_json(r) or {} for r in answers if r is not None and r.status_code == 200]
        statuses: dict[str, list[dict[str, Any]]] = {}
        for other in others:
            for entry in other.get("sources", []):
                if entry.get("status"):
                    statuses.setdefault(entry["source"], []).append(entry["status"])
        for entry in body.get("sources", []):
            mine = statuses.get(entry["source"])
            entry["status"] = merge_status(mine) if mine else None
        return JSONResponse(body, headers=NO_STORE)

    async def passed(request: Request) -> Response:
        """Any other route, answered by one process (in turn: they share the database)."""
        start = next(turn)
        for k in range(len(workers)):
            client = workers[(start + k) % len(workers)]
            try:
                answer = await client.request(request.method, request.url.path, params=request.query_params,
                                              headers=_passed(request), content=await request.body())
            except httpx.HTTPError:
                continue
            return _relay(answer)
        return JSONResponse({"error": "no worker process answers"}, status_code=503, headers=NO_STORE)

    return Starlette(routes=[
        Route("/metrics", metrics, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/api/sources", sources, methods=["GET"]),
        Route("/{path:path}", passed, methods=["GET", "POST", "PUT", "DELETE"]),
    ])


def _passed(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in PASSED_REQUEST_HEADERS}


def _relay(answer: httpx.Response) -> Response:
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS}
    return Response(answer.content, status_code=answer.status_code, headers=headers)


def _json(answer: httpx.Response | None) -> dict[str, Any] | None:
    if answer is None:
        return None
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
