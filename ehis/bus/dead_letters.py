"""The dead-letter queue `<ns>.dead`: bounded, counted, and what an operator does with it.

Expired and poison requests land there with FINs, officials and purposes in their bodies, so the
queue keeps at most DEAD_MAX_LENGTH messages (the oldest dropped first) for at most DEAD_TTL_MS.
`ehis dead list` shows what an operator needs (request id, service, caller, when, why) with
identifiers masked; `ehis dead purge` empties it. Both go through the management API, which
peeks at messages without consuming them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pamqp.common import FieldTable

DEAD_MAX_LENGTH = 10_000  # messages kept; the oldest go first
DEAD_TTL_MS = 24 * 3600 * 1000  # a day: enough to look at an incident, not a store of personal data

DEAD_ARGUMENTS: FieldTable = {"x-max-length": DEAD_MAX_LENGTH, "x-message-ttl": DEAD_TTL_MS,
                              "x-overflow": "drop-head"}
_ID = re.compile(r"^[A-Za-z0-9]{7}$|^\d{10}$")  # a FIN or a VÖEN as a parameter value


@dataclass(frozen=True)
class DeadLetter:
    request_id: str
    service: str
    caller: str
    queue: str
    reason: str  # expired, rejected, delivery_limit, maxlen
    died_at: str
    params: dict[str, str]  # identifiers masked

    def line(self) -> str:
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.died_at}  {self.request_id}  {self.service}  {self.caller}  {self.reason} ({self.queue})  {params}"


def mask(value: str) -> str:
    """An identifier with all but its first and last characters hidden (5GXM4DZ -> 5*****Z)."""
    return value if len(value) < 3 else value[0] + "*" * (len(value) - 2) + value[-1]


def describe(message: dict[str, Any]) -> DeadLetter:
    """A message as the management API returns it (`POST /api/queues/…/get`), without personal data
    beyond masked identifiers: never the official or the purpose."""
    props = message.get("properties") or {}
    headers = props.get("headers") or {}
    deaths = headers.get("x-death") or [{}]
    death = deaths[0] if isinstance(deaths, list) and deaths else {}
    body: dict[str, Any] = {}
    try:
        body = json.loads(message.get("payload") or "{}")
    except (ValueError, TypeError):
        pass
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    shown = {str(k): mask(str(v)) if isinstance(v, str) and _ID.match(v.strip()) else "…" for k, v in params.items()}
    died = death.get("time")
    when = (datetime.fromtimestamp(died, UTC).isoformat(timespec="seconds") if isinstance(died, int | float)
            else str(died or "-"))
    return DeadLetter(
        request_id=str(props.get("correlation_id") or body.get("id") or "-"),
        service=str(message.get("routing_key") or body.get("service") or "-"),
        caller=str(props.get("user_id") or "-"),
        queue=str(death.get("queue") or "-"),
        reason=str(death.get("reason") or "-"),
        died_at=when,
        params=shown,
    )
