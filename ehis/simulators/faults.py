"""Faults on demand: rules that make a simulated source misbehave the way real sources do.

Integration testers switch faults on and off at run time (`/_admin/faults`) or load them from
a file at start-up (`load_faults`), to see how the hub copes with a source that is slow, down,
answers garbage or signs with the wrong key. A `FaultBoard` holds the active rules and decides,
per request, what to do: at most one *failure* and, on top of it, at most one `latency`.

This module only decides and damages; `ehis.simulators.app` applies the decision to the reply
(and to the TCP connection, for `reset` and `hang`).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from cryptography.x509.oid import NameOID
from lxml import etree
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ehis.security.pki import OPERATOR_CN, Identity, Pki, issue
from ehis.security.signing import SOAP_NS


class FaultKind(StrEnum):
    LATENCY = "latency"  # answer late (latency_ms plus up to jitter_ms); combines with one failure
    HTTP_500 = "http_500"  # a proxy's HTML error page, not SOAP
    HTTP_503 = "http_503"
    SOAP_FAULT = "soap_fault"  # a signed soap:Server fault echoing the request's headers
    MALFORMED = "malformed"  # 200 with XML that is not well-formed
    TRUNCATED = "truncated"  # the signed answer cut in half (Content-Length matches the cut)
    EMPTY = "empty"  # 200 with an empty body
    BAD_SIGNATURE = "bad_signature"  # the answer altered after it was signed
    WRONG_SIGNER = "wrong_signer"  # signed with another party's key
    EXPIRED_CERT = "expired_cert"  # signed by the right CN with an expired certificate
    REVOKED_CERT = "revoked_cert"  # signed by the right CN with a certificate the PKI's CRL lists
    UNSIGNED = "unsigned"
    RESET = "reset"  # the TCP connection is reset instead of answered
    HANG = "hang"  # never answers, until the client goes away


LATENCY_MAX_MS = 600_000.0


class FaultRule(BaseModel):
    """One way to misbehave, for which requests, how often. `id`, `matched`, `fired` are the board's."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    system: str | None = Field(None, min_length=1)  # None: every source
    operation: str | None = Field(None, min_length=1)  # None: every operation
    probability: float = Field(1.0, ge=0, le=1)
    first: int | None = Field(None, ge=1)  # only the first N matching requests, then the source recovers
    latency_ms: float = Field(0.0, ge=0, le=LATENCY_MAX_MS)
    jitter_ms: float = Field(0.0, ge=0, le=LATENCY_MAX_MS)  # a random uniform extra, up to this
    id: str | None = None  # assigned by the board
    matched: int = Field(0, ge=0)  # requests the rule was considered for (what `first` counts)
    fired: int = Field(0, ge=0)  # requests it was applied to

    @field_validator("latency_ms", "jitter_ms")
    @classmethod
    def _only_for_latency(cls, value: float, info: ValidationInfo) -> float:
        kind = info.data.get("kind")
        if value and kind is not None and kind is not FaultKind.LATENCY:
            raise ValueError(f"applies only to kind 'latency', not {kind.value!r}")
        return value

    def matches(self, system: str, operation: str | None, endpoint: str | None = None) -> bool:
        """`system` names a source (every endpoint of it) or one endpoint (a bureau, an authority)."""
        return (self.system is None or self.system in (system, endpoint)) and (
            self.operation is None or self.operation == operation
        )

    @property
    def spent(self) -> bool:
        return self.first is not None and self.matched >= self.first


@dataclass(frozen=True)
class Decision:
    """What the simulator does to one request: wait `delay_s`, then apply `failure` (if any)."""

    delay_s: float = 0.0
    failure: FaultKind | None = None
    latency: bool = False

    @property
    def label(self) -> str | None:
        """What the journal shows: `latency`, `http_503`, `latency+http_503` or None."""
        if self.failure is None and not self.latency:
            return None
        kinds = ([FaultKind.LATENCY.value] if self.latency else []) + ([self.failure.value] if self.failure else [])
        return "+".join(kinds) or None


NO_FAULT = Decision()


class InvalidFaults(ValueError):
    """Rules that cannot be used; `errors` names each bad field (`0.kind`, `system`, ...)."""

    def __init__(self, errors: list[dict[str, str]], prefix: str = "invalid fault rule"):
        self.errors = errors
        super().__init__(f"{prefix}: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors))

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "invalid fault rule") -> InvalidFaults:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]) or "rule",
             "message": err["msg"].removeprefix("Value error, ")}
            for err in exc.errors(include_input=False, include_url=False)[:10]
        ]
        return cls(errors, prefix)


_RULES = TypeAdapter(list[FaultRule])


def parse_rules(data: Any) -> list[FaultRule]:
    """Rules from decoded JSON/TOML: one rule object or a list of them."""
    try:
        if isinstance(data, list):
            return _RULES.validate_python(data)
        return [FaultRule.model_validate(data)]
    except ValidationError as exc:
        raise InvalidFaults.from_validation(exc) from None


def load_faults(path: str | Path) -> list[FaultRule]:
    """Rules from a TOML file of `[[fault]]` tables, or a JSON file holding a list of rules.

    JSON may also be `{"faults": [...]}`, what `GET /_admin/faults` returns, so a listing can be
    saved and replayed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            document: Any = tomllib.loads(path.read_text(encoding="utf-8"))
            unknown = sorted(set(document) - {"fault"})
            if unknown:
                raise InvalidFaults(
                    [{"field": k, "message": "unknown table; rules are [[fault]] tables"} for k in unknown], f"{path}")
            data = document.get("fault", [])
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and set(data) == {"faults"}:
                data = data["faults"]
            if not isinstance(data, list):
                raise InvalidFaults([{"field": "file", "message": "must hold a list of rules"}], f"{path}")
        else:
            raise InvalidFaults([{"field": "file", "message": "must end in .toml or .json"}], f"{path}")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        problem = {"field": "file", "message": f"not valid {suffix[1:].upper()}: {exc}"}
        raise InvalidFaults([problem], f"{path}") from None
    try:
        return parse_rules(data)
    except InvalidFaults as exc:
        raise InvalidFaults(exc.errors, f"{path}") from None


class FaultBoard:
    """The active rules and the per-request decision; thread-safe (tests drive it from outside)."""

    def __init__(
        self,
        rules: Iterable[FaultRule] = (),
        *,
        rng: random.Random | None = None,
        known: Mapping[str, Collection[str]] | None = None,
    ):
        self.rng = rng if rng is not None else random.Random()
        self._known = known  # system -> operations, to refuse rules that can never match
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self._lock = threading.Lock()
        self.add(list(rules))

    @property
    def active(self) -> bool:
        """Whether any rule is set: the request path skips the board entirely when not."""
        return bool(self._rules)

    def restrict_to(self, known: Mapping[str, Collection[str]]) -> None:
        """Refuse, from now on, rules naming a system or operation that is not simulated."""
        self._check(self.rules(), known)
        self._known = known

    def add(self, rules: FaultRule | Iterable[FaultRule]) -> list[FaultRule]:
        """Add copies of `rules` with fresh ids and zero counts (all or none); returns them."""
        batch = [rules] if isinstance(rules, FaultRule) else list(rules)
        if self._known is not None:
            self._check(batch, self._known, indexed=not isinstance(rules, FaultRule))
        added = []
        with self._lock:
            for rule in batch:
                added.append(rule.model_copy(update={"id": f"f{self._next_id}", "matched": 0, "fired": 0}))
                self._next_id += 1
            self._rules = [*self._rules, *added]
        return [r.model_copy() for r in added]

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            kept = [r for r in self._rules if r.id != rule_id]
            found = len(kept) != len(self._rules)
            self._rules = kept
        return found

    def reset(self) -> None:
        """Clear every rule: every source answers normally again."""
        with self._lock:
            self._rules = []

    def rules(self) -> list[FaultRule]:
        """Snapshots of the rules with their counts, in the order they are considered."""
        with self._lock:
            return [r.model_copy() for r in self._rules]

    def pick(self, system: str, operation: str | None, endpoint: str | None = None) -> Decision:
        """The fault(s) for one request to `system`'s `endpoint` (`operation` None: the request was
        unreadable).

        Rules are considered in the order they were added: the first latency rule and the first
        failure rule that match and fire win; a rule not considered does not count towards `first`.
        """
        if not self._rules:
            return NO_FAULT
        delay: float | None = None
        failure: FaultKind | None = None
        with self._lock:
            for rule in self._rules:
                is_latency = rule.kind is FaultKind.LATENCY
                if (delay if is_latency else failure) is not None:
                    continue
                if rule.spent or not rule.matches(system, operation, endpoint):
                    continue
                rule.matched += 1
                if not self._fires(rule.probability):
                    continue
                rule.fired += 1
                if is_latency:
                    extra = self.rng.uniform(0, rule.jitter_ms) if rule.jitter_ms else 0.0
                    delay = (rule.latency_ms + extra) / 1000
                else:
                    failure = rule.kind
                if delay is not None and failure is not None:
                    break
        if delay is None and failure is None:
            return NO_FAULT
        return Decision(delay_s=delay or 0.0, failure=failure, latency=delay is not None)

    def _fires(self, probability: float) -> bool:
        if probability >= 1:
            return True
        return probability > 0 and self.rng.random() < probability

    @staticmethod
    def _check(rules: Iterable[FaultRule], known: Mapping[str, Collection[str]], *, indexed: bool = True) -> None:
        errors = []
        for n, rule in enumerate(rules):
            at = f"{n}." if indexed else ""
            if rule.system is not None and rule.system not in known:
                errors.append({"field": f"{at}system", "message": f"no simulated source {rule.system!r}"})
                continue
            offered = known[rule.system] if rule.system is not None else {o for ops in known.values() for o in ops}
            if rule.operation is not None and rule.operation not in offered:
                errors.append({"field": f"{at}operation", "message": f"no simulated operation {rule.operation!r}"})
        if errors:
            raise InvalidFaults(errors)


# --- damaging an answer ---------------------------------------------------------------------------

PROXY_PAGES: dict[FaultKind, tuple[int, bytes]] = {
    FaultKind.HTTP_500: (500, (b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
                               b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
                               b"</body>\r\n</html>\r\n")),
    FaultKind.HTTP_503: (503, (b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
                               b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
                               b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")),
}
MALFORMED_BODY = (b'<?xml version="1.0" encoding="utf-8"?>\n'
                  b'<soap:Envelope xmlns:soap="' + SOAP_NS.encode() + b'"><soap:Body><answer></soap:Body>')
SIMULATED_FAULT_STRING = "the source failed to process the request (simulated fault)"


class ConnectionReset(httpx.ReadError):
    """Raised by the app for `reset` when no real socket can be reset (httpx.ASGITransport).

    It is an `httpx.ReadError`, so an in-process httpx client sees a transport error exactly as
    it would for a reset connection.
    """

    def __init__(self, message: str = "connection reset by the simulator"):
        super().__init__(message)


def tamper(envelope: etree._Element) -> etree._Element:
    """Alter signed content in place, the way a man in the middle would: the signature no longer verifies."""
    body = envelope.find(f"{{{SOAP_NS}}}Body")
    target = body if body is not None else envelope
    for element in target.iter():
        if isinstance(element.tag, str) and element.text and element.text.strip():
            text = element.text
            element.text = text[:-1] + ("0" if text[-1] != "0" else "1")
            return envelope
    target.set("tampered", "1")
    return envelope


def other_identity(pki: Pki, name: str) -> Identity:
    """Another party of the PKI to sign as `name`'s impostor: another source, else the operator."""
    others = sorted(p.stem for p in pki.directory.glob("*.key") if p.stem not in {"ca", name, OPERATOR_CN})
    return pki.identity(others[0] if others else OPERATOR_CN)


def revoked_identity(pki: Pki, name: str) -> Identity:
    """`name` with a certificate of the PKI's own CA, valid in every way but listed on its CRL
    (the test PKI issues one per party and revokes it from the start: see ehis.security.pki)."""
    return pki.revoked_identity(name)


def expired_identity(pki: Pki, name: str) -> Identity:
    """`name` with a certificate from the PKI's own CA that has expired; made once per process."""
    return _expired_identity(pki.directory.resolve(), name)


@cache
def _expired_identity(directory: Path, name: str) -> Identity:
    pki = Pki(directory)
    ca = pki.identity("ca")
    orgs = pki.identity(name).cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(orgs[0].value) if orgs else name
    now = dt.datetime.now(dt.UTC)
    key, cert = issue(ca.key, ca.cert, name, org, not_before=now - dt.timedelta(days=60),
                      not_after=now - dt.timedelta(days=1))
    return Identity(name, key, cert)
