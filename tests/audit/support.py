"""What every exchange log test uses: a record factory and the raw SQL handle a tamperer would use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ehis.audit import ExchangeRecord

NOW = datetime.now(UTC).replace(microsecond=123456)
FIN = "5GXM4DZ"  # personal data: never in the application log
OFFICIAL = "official-7731"
PURPOSE = "checking an applicant's identity for a work contract"


def record(n: int = 0, **fields: Any) -> ExchangeRecord:
    values: dict[str, Any] = {
        "request_id": f"req-{n}", "time": NOW + timedelta(seconds=n), "subsystem": "emek-muqavilesi",
        "user": OFFICIAL, "purpose": PURPOSE, "service": "din.person", "source": "din", "subject": FIN,
        "outcome": "ok", "cache": "miss", "duration_ms": 12.5, "signer": "CN=din", "evidence": "ab" * 32,
    }
    return ExchangeRecord(**(values | fields))


class Raw(Protocol):
    async def execute(self, sql: str) -> None: ...

    async def scalar(self, sql: str) -> Any: ...
