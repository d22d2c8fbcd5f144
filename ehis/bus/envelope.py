"""The JSON envelopes that cross the bus (DESIGN.md, "The bus"), validated by pydantic.

Only JSON ever crosses the bus: never pickle, whose loads would run code a publisher chose.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ehis.errors import BadRequest, EhisError, error_for
from ehis.evidence import Evidence

MAX_ENVELOPE_BYTES = 256 * 1024
REPLY_MARGIN_S = 0.05  # kept back from the caller's deadline so the reply itself arrives in time


def utcnow() -> datetime:
    return datetime.now(UTC)


class Requester(BaseModel):
    """Who asks and why: the statute wants the official and the purpose of every access."""

    model_config = ConfigDict(extra="forbid")

    subsystem: str = Field(min_length=1, max_length=64)
    user: str = Field(default="", max_length=128)
    purpose: str = Field(default="", max_length=512)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=64)
    service: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)
    requester: Requester
    deadline: datetime
    fresh: bool = False  # the caller asks for data fetched now, not from a cache

    @classmethod
    def new(
        cls,
        service: str,
        params: dict[str, Any],
        requester: Requester,
        timeout: float,
        *,
        fresh: bool = False,
    ) -> Request:
        return cls(
            service=service,
            params=params,
            requester=requester,
            deadline=utcnow() + timedelta(seconds=timeout),
            fresh=fresh,
        )

    @property
    def system(self) -> str:
        return self.service.split(".", 1)[0]

    def remaining(self) -> float:
        """Seconds left before the caller's deadline (negative once it has passed)."""
        deadline = self.deadline if self.deadline.tzinfo else self.deadline.replace(tzinfo=UTC)
        return (deadline - utcnow()).total_seconds()

    def budget(self) -> float:
        """Seconds the hub may work on this request and still have its reply reach the caller in
        time, so a slow source ends in a reply that says so rather than the caller's own timeout."""
        remaining = self.remaining()
        return remaining - min(REPLY_MARGIN_S, remaining / 10)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class ErrorInfo(BaseModel):
    code: str
    message: str
    retryable: bool = False
    source: str | None = None

    def to_exception(self) -> EhisError:
        return error_for(self.code, self.message, source=self.source, retryable=self.retryable)


class Meta(BaseModel):
    system: str | None = None
    cache: Literal["miss", "hit", "coalesced"] | None = None
    signed_by: str | None = None
    fetched_at: datetime | None = None
    evidence: str | None = None  # SHA-256 digest of the signed source response, as the exchange log keeps it
    duration_ms: float | None = None

    def set_evidence(self, evidence: Evidence) -> None:
        """Say which signed answer the reply comes from (data, or a signed business fault)."""
        self.signed_by, self.evidence, self.fetched_at = evidence.signer, evidence.digest, evidence.fetched_at


class Reply(BaseModel):
    id: str
    status: Literal["ok", "error"]
    data: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    meta: Meta = Field(default_factory=Meta)

    @classmethod
    def ok(cls, request_id: str, data: dict[str, Any], meta: Meta) -> Reply:
        return cls(id=request_id, status="ok", data=data, meta=meta)

    @classmethod
    def failure(cls, request_id: str, exc: EhisError, meta: Meta | None = None) -> Reply:
        info = ErrorInfo(code=exc.code.value, message=exc.message, retryable=exc.retryable, source=exc.source)
        return cls(id=request_id, status="error", error=info, meta=meta or Meta(system=exc.source))

    def result(self) -> dict[str, Any]:
        """The data of an ok reply, or the typed error an error reply describes, raised."""
        if self.status == "error":
            assert self.error is not None
            raise self.error.to_exception()
        return self.data or {}

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def parse_request(body: bytes) -> Request:
    """Validate a request body, turning every defect into a `BadRequest` that says what is wrong."""
    if len(body) > MAX_ENVELOPE_BYTES:
        raise BadRequest(f"request is {len(body)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    try:
        return Request.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(f"malformed request: {describe(exc)}") from None


def parse_reply(body: bytes) -> Reply:
    try:
        return Reply.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(f"malformed reply: {describe(exc)}") from None


def request_id_of(body: bytes) -> str:
    """Best effort: the id of a request too malformed to parse, so its error reply can echo it."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    value = doc.get("id") if isinstance(doc, dict) else None
    return value[:64] if isinstance(value, str) else ""


def describe(exc: ValidationError) -> str:
    """Field paths and reasons, without the offending values (they may be personal data)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
