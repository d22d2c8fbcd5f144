"""The simulator's record of what it received: the test double's answer to "what did the hub send?".

Bounded (a deque drops the oldest entries), in memory, readable in-process through
`app.state.journal` and over HTTP at `GET /_admin/journal`. Only what the signature vouches for
is recorded: for a rejected request the headers are not trusted, so they stay empty. The
identifier a request is about is stored masked (`ehis.identifiers.mask`), the way application
logs must keep it. `fault` names what the simulator did to the answer on demand (see
`ehis.simulators.faults`).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_CAPACITY = 10_000


class Outcome(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"  # a well-formed identifier the source does not hold
    INVALID = "invalid"  # the request or its parameters were wrong (a Client fault)
    REJECTED = "rejected"  # unsafe XML, or a missing, tampered or wrong-signer signature
    ERROR = "error"  # a defect in the simulator (a Server fault)


@dataclass(frozen=True)
class Entry:
    """One received request. `signature` is the signer's subject, or why it was rejected."""

    system: str  # the endpoint: the source's code, or a provider's name (kb-akb, yih-ba)
    outcome: Outcome
    signature: str
    signature_ok: bool
    operation: str | None = None
    message_id: str | None = None
    client: str | None = None  # the calling subsystem's code
    user_id: str | None = None
    subject: str | None = None  # the masked identifier the request is about (the FIN)
    detail: str | None = None  # the fault string, when the answer was a fault
    # the fault the simulator applied on demand (`http_503`, `latency+truncated`, ...); `outcome`
    # stays what the source decided, so a tester sees both what was received and what was done
    fault: str | None = None
    time: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"))

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


class Journal:
    """A bounded, append-only list of entries, oldest first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self._entries: deque[Entry] = deque(maxlen=capacity)

    @property
    def capacity(self) -> int:
        return self._entries.maxlen or 0

    def record(self, entry: Entry) -> None:
        self._entries.append(entry)

    def entries(self, system: str | None = None) -> list[Entry]:
        """Oldest first; `system` names a source (all its endpoints: `kb` lists `kb-akb` too) or one endpoint."""
        return [e for e in self._entries if system is None or e.system == system or e.system.startswith(f"{system}-")]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries))
