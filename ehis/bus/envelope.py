"""The JSON envelopes that cross the bus (DESIGN.md, "The bus"), validated by pydantic.

Only JSON ever crosses the bus: never pickle, whose loads would run code a publisher chose.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from ehis.errors import BadRequest, EhisError, InvalidInput, error_for
from ehis.evidence import Evidence

MAX_ENVELOPE_BYTES = 256 * 1024
REPLY_MARGIN_S = 0.05  # kept back from the caller's deadline so the reply itself arrives in time


def utcnow() -> datetime:
    return datetime.now(UTC)


def _text(value: str) -> str:
    """Free text a caller sends (the official, the purpose): what an XML header can carry, with no
    control characters, so nothing a caller writes can make building a source request fail."""
    if _UNSAFE_TEXT.search(value):
        raise ValueError("contains control characters or characters XML cannot carry")
    return value


# C0 and C1 controls (tab included), DEL, surrogates and the non-characters XML 1.0 excludes
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
Text = Annotated[str, AfterValidator(_text)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
MAX_PARAMS = 32
MAX_PARAM_CHARS = 256


def _flat(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters are flat (no service takes nested ones): strings of safe text, numbers, booleans."""
    for name, value in params.items():
        if isinstance(value, str):
            if len(value) > MAX_PARAM_CHARS:
                raise ValueError(f"{name!r} is longer than {MAX_PARAM_CHARS} characters")
            _text(value)
        elif not (value is None or isinstance(value, int | float | bool)):
            raise ValueError(f"{name!r} must be a string, a number or a boolean")
    return params



class Requester(BaseModel):
    """Who asks and why: the statute wants the official and the purpose of every access."""

    model_config = ConfigDict(extra="forbid")

    subsystem: Name = Field(min_length=1, max_length=64)
    user: Text = Field(default="", max_length=128)
    purpose: Text = Field(default="", max_length=512)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=64,
                    pattern=r"^[!-~]+$")  # printable ASCII: it reaches logs and AMQP headers
    service: Name = Field(min_length=1, max_length=128)
    params: Annotated[dict[Name, Any], AfterValidator(_flat)] = Field(default_factory=dict, max_length=MAX_PARAMS)
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
    """Validate a request body: a malformed envelope is a `BadRequest`; a well-formed one whose
    caller-written values (the official, the purpose, the params) are unacceptable is
    `InvalidInput`. Either way it is refused here, before anything can reach, or count against, a source."""
    if len(body) > MAX_ENVELOPE_BYTES:
        raise BadRequest(f"request is {len(body)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    try:
        return Request.model_validate_json(body)
    except ValidationError as exc:
        if all(_callers_value(error["loc"]) for error in exc.errors()):
            raise InvalidInput(f"invalid request: {describe(exc)}") from None
        raise BadRequest(f"malformed request: {describe(exc)}") from None


def _callers_value(loc: tuple[Any, ...]) -> bool:
    return loc[:1] == ("params",) or loc[:2] in (("requester", "user"), ("requester", "purpose"))


def parse_reply(body: bytes) -> Reply:
    try:
        return Reply.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(f"malformed reply: {describe(exc)}") from None


def request_id_of(body: bytes) -> str:
    """Best effort: the id of a request too malformed to parse, so its error reply can echo it.

    Read with pydantic's JSON parser (bounded recursion), never `json.loads`, which a deeply
    nested body drives into RecursionError; only a printable id is echoed.
    """
    try:
        doc = _ANY_JSON.validate_json(body[:MAX_ENVELOPE_BYTES])
    except ValidationError:
        return ""
    value = doc.get("id") if isinstance(doc, dict) else None
    return value[:64] if isinstance(value, str) and _PRINTABLE_ID.fullmatch(value[:64]) else ""


_ANY_JSON: TypeAdapter[Any] = TypeAdapter(Any)
_PRINTABLE_ID = re.compile(r"[!-~]+")


def describe(exc: ValidationError) -> str:
    """Field paths and reasons, without the offending values (they may be personal data)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
