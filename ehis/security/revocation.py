"""Whether a signing certificate has been revoked, from its CA's certificate revocation list.

A CRL comes from configured sources (files or http(s) URLs: `crl_urls`) or, when none is
configured, from the distribution points the certificate names. Each is fetched at most once
per `freshness` seconds and is used only while younger than that (and before its nextUpdate),
so a revocation the CA publishes is noticed within `freshness`. A CRL counts only if it is
issued by the certificate's own issuer and its signature verifies with that issuer's key.

When no usable CRL can be had (the source is down, stale, forged, too large) the status is
*unknown*, and the mode decides: `fail-closed` refuses the answer saying why, `fail-open`
accepts it with a warning and counts it (`ehis_revocation_checks_total{result="unknown_accepted"}`).
A failed fetch is retried after `retry_after`, not on every answer.

Fetching is synchronous and bounded (timeout, bytes) because the verifier is: it runs on the
event loop for small answers and in a thread for large ones. A background task (`keep_fresh`)
renews every source at half its freshness, so the answer path normally only reads memory; on the
event loop an http(s) source already seen is never fetched in line (a thread fetches it while the
answer gets what is known now), only a first sight is (once per source, bounded by the timeout).
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import httpx
from cryptography import x509
from prometheus_client.core import CounterMetricFamily, Metric

from ehis.errors import SignatureInvalid

log = logging.getLogger(__name__)

MAX_CRL_BYTES = 8 * 1024 * 1024
MAX_REVOKED = 4096  # revoked certificates remembered (by issuer and serial)
CLOCK_SKEW = timedelta(minutes=5)
RESULTS = ("good", "revoked", "unknown_refused", "unknown_accepted")


class RevocationMode(StrEnum):
    FAIL_CLOSED = "fail-closed"  # status unknown: the answer is refused
    FAIL_OPEN = "fail-open"  # status unknown: accepted, with a warning and a metric


class CrlUnavailable(Exception):
    """A CRL source gave no usable CRL; the message says why (it names no personal data)."""


@dataclass(frozen=True)
class _Copy:
    """What is known of one source: its last good CRL (if any) and its last failure (if any)."""

    crl: x509.CertificateRevocationList | None = None
    fetched_at: float = -math.inf  # epoch seconds of the last good fetch
    error: str | None = None  # why the last attempt failed, if it did
    failed_at: float = -math.inf

    def fresh(self, now: float, freshness: float) -> bool:
        return self.crl is not None and now - self.fetched_at < freshness


class CrlSources:
    """CRLs by source (path or URL), each fetched at most once per `freshness`, thread-safe.

    On the event loop's thread an http(s) source already seen is never fetched there: a fetch is
    started in a thread and the caller gets what is known now (which may mean "unknown").
    """

    def __init__(self, *, freshness: float = 300.0, timeout: float = 3.0, max_bytes: int = MAX_CRL_BYTES,
                 retry_after: float | None = None, verify: ssl.SSLContext | bool = True,
                 clock: Callable[[], float] = time.time):
        self.freshness = freshness
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retry_after = retry_after if retry_after is not None else min(30.0, freshness)
        self.verify = verify
        self.clock = clock
        self._copies: dict[str, _Copy] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def current(self, source: str) -> _Copy:
        """What is known of `source` now, fetched first if it is due (at most one fetch at a time
        per source; after a failure, none before `retry_after`)."""
        copy = self._copies.get(source)
        if copy is not None and not self._due(copy, self.clock(), self.freshness):
            return copy
        if copy is not None and _is_http(source) and _on_event_loop():
            self._fetch_in_background(source)
            return copy
        self._refresh(source, self.freshness)
        return self._copies[source]

    def refresh_due(self, sources: Iterable[str] | None = None) -> None:
        """Fetch again each known source (or each of `sources`) past half its freshness; for a
        background task, so that the answer path finds them fresh."""
        for source in list(sources if sources is not None else self._copies):
            self._refresh(source, self.freshness / 2)

    def _refresh(self, source: str, age: float) -> None:
        with self._lock(source):
            copy = self._copies.get(source) or _Copy()
            if not self._due(copy, self.clock(), age):  # another thread fetched it meanwhile
                return
            now = self.clock()
            try:
                crl = self._fetch(source)
            except CrlUnavailable as exc:
                log.warning("revocation: no CRL from %s: %s", source, exc)
                # a good copy is kept: it is used while younger than the freshness, not longer
                self._copies[source] = _Copy(copy.crl, copy.fetched_at, str(exc), now)
            else:
                self._copies[source] = _Copy(crl, now)

    def _due(self, copy: _Copy, now: float, age: float) -> bool:
        if copy.crl is not None and now - copy.fetched_at < age:
            return False
        return now - copy.failed_at >= self.retry_after

    def _fetch_in_background(self, source: str) -> None:
        if self._lock(source).locked():
            return  # a fetch is under way
        threading.Thread(target=self._refresh, args=(source, self.freshness), daemon=True,
                         name="crl-fetch").start()

    def _lock(self, source: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(source, threading.Lock())

    def _fetch(self, source: str) -> x509.CertificateRevocationList:
        data = self._read_http(source) if _is_http(source) else self._read_file(source)
        return parse_crl(data)

    def _read_file(self, source: str) -> bytes:
        path = Path(source.removeprefix("file://"))
        try:
            with path.open("rb") as handle:
                data = handle.read(self.max_bytes + 1)
        except OSError as exc:
            raise CrlUnavailable(f"cannot read it ({type(exc).__name__})") from None
        if len(data) > self.max_bytes:
            raise CrlUnavailable(f"larger than {self.max_bytes} bytes")
        return data

    def _read_http(self, source: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        try:
            with httpx.Client(timeout=self.timeout, verify=self.verify, follow_redirects=False) as client, \
                    client.stream("GET", source) as response:
                if response.status_code != 200:
                    raise CrlUnavailable(f"HTTP {response.status_code}")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise CrlUnavailable(f"larger than {self.max_bytes} bytes")
                    if time.monotonic() > deadline:  # a server dripping bytes: bounded all the same
                        raise CrlUnavailable(f"not received within {self.timeout} s")
                    chunks.append(chunk)
        except httpx.TimeoutException:
            raise CrlUnavailable(f"no answer within {self.timeout} s") from None
        except httpx.HTTPError as exc:
            raise CrlUnavailable(f"cannot be fetched ({type(exc).__name__})") from None
        return b"".join(chunks)


def _is_http(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def parse_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL in DER or PEM; anything else is `CrlUnavailable`."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise CrlUnavailable("not a readable CRL") from None


def distribution_points(cert: x509.Certificate) -> list[str]:
    """The http(s) CRL distribution points a certificate names (at most four)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = [name.value for point in points for name in (point.full_name or ())
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith(("http://", "https://"))]
    return urls[:4]


@dataclass(frozen=True)
class Status:
    result: str  # good, revoked, unknown
    until: float  # epoch seconds until which this status may be reused
    reason: str = ""


class RevocationChecker:
    """Revocation status of a certificate whose chain is already validated, and what to do about it."""

    def __init__(self, sources: Sequence[str] | None, *, mode: RevocationMode = RevocationMode.FAIL_CLOSED,
                 crls: CrlSources | None = None):
        self.sources = list(sources) if sources is not None else None  # None: the certificate's own points
        self.mode = RevocationMode(mode)
        self.crls = crls or CrlSources()
        self.counts: Counter[str] = Counter()
        self._revoked: OrderedDict[tuple[bytes, int], str] = OrderedDict()  # (issuer, serial) -> reason: final
        self._lock = threading.Lock()

    @classmethod
    def beside(cls, ca_file: Path, *, mode: RevocationMode = RevocationMode.FAIL_CLOSED,
               crls: CrlSources | None = None) -> RevocationChecker:
        """The default: the CRL next to the CA file (`ca.crl`, as the test PKI keeps it) if there
        is one, else the distribution points each certificate names."""
        crl = Path(ca_file).with_name("ca.crl")
        return cls([str(crl)] if crl.exists() else None, mode=mode, crls=crls)

    def check(self, cert: x509.Certificate, issuer: x509.Certificate) -> float:
        """Until when `cert` may be trusted as not revoked (epoch s); `SignatureInvalid` if it is
        revoked, or if its status is unknown and the mode is fail-closed."""
        status = self.status(cert, issuer)
        if status.result == "good":
            self.counts["good"] += 1
            return status.until
        if status.result == "revoked":
            self.counts["revoked"] += 1
            raise SignatureInvalid(f"the signing certificate was revoked ({status.reason})")
        if self.mode is RevocationMode.FAIL_CLOSED:
            self.counts["unknown_refused"] += 1
            raise SignatureInvalid(f"cannot learn whether the signing certificate is revoked, so it is not "
                                   f"trusted (revocation = fail-closed): {status.reason}")
        self.counts["unknown_accepted"] += 1
        log.warning("revocation status of %s (serial %x) is unknown; accepted because revocation = fail-open: %s",
                    cert.subject.rfc4514_string(), cert.serial_number, status.reason)
        return status.until

    def status(self, cert: x509.Certificate, issuer: x509.Certificate) -> Status:
        key = (cert.issuer.public_bytes(), cert.serial_number)
        with self._lock:
            known = self._revoked.get(key)
        if known is not None:  # revocation is final: no CRL needs asking again
            return Status("revoked", math.inf, known)
        status = self._learn(cert, issuer)
        if status.result == "revoked":
            with self._lock:
                self._revoked[key] = status.reason
                while len(self._revoked) > MAX_REVOKED:
                    self._revoked.popitem(last=False)
        return status

    def _learn(self, cert: x509.Certificate, issuer: x509.Certificate) -> Status:
        sources = self.sources if self.sources is not None else distribution_points(cert)
        now = self.crls.clock()
        if not sources:
            return Status("unknown", now + self.crls.retry_after,
                          "no CRL is configured and the certificate names no distribution point")
        problems: list[str] = []
        for source in sources:
            copy = self.crls.current(source)
            if copy.crl is None or not copy.fresh(now, self.crls.freshness):
                why = copy.error or "a fetch is under way"
                problems.append(f"{source}: {why}" if copy.crl is None else
                                f"{source}: the CRL is older than {self.crls.freshness:g} s ({why})")
                continue
            problem = _unusable(copy.crl, issuer, now)
            if problem is not None:
                problems.append(f"{source}: {problem}")
                continue
            entry = copy.crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None:
                return Status("revoked", math.inf, f"on {entry.revocation_date_utc:%Y-%m-%d %H:%M} UTC, per {source}")
            next_update = copy.crl.next_update_utc.timestamp() if copy.crl.next_update_utc else math.inf
            return Status("good", min(copy.fetched_at + self.crls.freshness, next_update))
        return Status("unknown", now + self.crls.retry_after, "; ".join(problems)[:500])

    def refresh_due(self) -> None:
        """Keep the configured sources (and every point seen so far) fresh; for a background task."""
        self.crls.refresh_due(self.sources)


def _unusable(crl: x509.CertificateRevocationList, issuer: x509.Certificate, now: float) -> str | None:
    """Why `crl` cannot speak for certificates of `issuer` at `now`, or None."""
    if crl.issuer != issuer.subject:
        return "issued by another CA"
    try:
        if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            return "its signature does not verify with the issuer's key"
    except (TypeError, ValueError):
        return "its signature cannot be checked"
    moment = datetime.fromtimestamp(now, UTC)
    if crl.last_update_utc > moment + CLOCK_SKEW:
        return f"issued in the future ({crl.last_update_utc:%Y-%m-%d %H:%M} UTC)"
    if crl.next_update_utc is not None and crl.next_update_utc < moment:
        return f"out of date since {crl.next_update_utc:%Y-%m-%d %H:%M} UTC"
    return None


class RevocationCollector:
    """`ehis_revocation_checks_total{result}`: statuses learned (not cache hits), read at scrape time."""

    def __init__(self, checker: RevocationChecker):
        self.checker = checker

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for result in RESULTS:
            family.add_metric([result], float(self.checker.counts[result]))
        return [family]

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily("ehis_revocation_checks", "revocation statuses of signing certificates learned, "
                                   "by result (unknown_accepted: fail-open let one through)", labels=["result"])


async def keep_fresh(checker: RevocationChecker) -> None:
    """Fetch due CRLs in a thread every quarter of the freshness, until cancelled, so that the
    answer path finds them in memory (a fetch there would hold the event loop)."""
    interval = max(1.0, checker.crls.freshness / 4)
    while True:
        try:
            await asyncio.to_thread(checker.refresh_due)
        except Exception as exc:  # noqa: BLE001 - a failed refresh is logged per source; keep going
            log.warning("revocation: CRL refresh failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)
