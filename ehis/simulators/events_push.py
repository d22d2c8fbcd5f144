"""The pusher: how the simulated sources that push (edliyye, sehiyye) deliver their feeds to the hub.

It runs in a thread of its own, so answering requests never waits for it. Each round takes the
events of every pushing source's feed the hub has not acknowledged, oldest first, at most
MAX_PUSH per message, and sends them as the source would: a `PushEvents` request with X-Road
headers (`push_headers`), encoded by the source's contract, signed with the source's key, POSTed
to `<hub_events_url>/<system>`. Only the hub's signed `PushEventsResponse` (the operator's
signature, the request hash of what was sent) acknowledges an event, and only the ids it lists:
the rest is sent again, with the same ids, after a backoff that doubles up to `backoff_max`
(at least once; the hub deduplicates).

Faults on demand apply to pushes as to answers (rules naming the source and operation
`PushEvents`, or every operation): the message is damaged as an answer would be (a bad or
wrong signature, unsigned, truncated, malformed, empty: the hub refuses it), delayed
(`latency`), or not delivered at all this time (`http_500`, `http_503`, `soap_fault`, `reset`,
and `hang`, which holds the attempt for the client's timeout first).
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from lxml import etree

from ehis.contracts import xroad
from ehis.contracts.provider import CONTENT_TYPE
from ehis.errors import SignatureInvalid
from ehis.events.wire import MAX_PUSH, PUSH, Ministry, push_headers, push_url
from ehis.security.pki import OPERATOR_CN
from ehis.simulators.events import contract_event
from ehis.simulators.faults import NO_FAULT, FaultBoard, FaultKind
from ehis.simulators.provider import Provider, SimulatedSource
from ehis.simulators.world import World
from ehis.simulators.world.overlay import Change
from ehis.sources import sources

log = logging.getLogger(__name__)

NOT_SENT = frozenset({FaultKind.HTTP_500, FaultKind.HTTP_503, FaultKind.SOAP_FAULT, FaultKind.RESET, FaultKind.HANG})


@dataclass
class Delivery:
    """Where one pushed event stands: attempts made, when the hub acknowledged it, the last failure."""

    attempts: int = 0
    delivered_at: datetime | None = None
    error: str | None = None
    fault: str | None = None  # the fault applied on demand to the last attempt

    def as_json(self) -> dict[str, Any]:
        state = "delivered" if self.delivered_at else ("retrying" if self.attempts else "pending")
        return {"state": state, "attempts": self.attempts, "error": self.error, "fault": self.fault,
                "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None}


class PushRefused(Exception):
    """The hub did not acknowledge a push (or the simulator did not send it, on demand)."""


def push_sources() -> tuple[str, ...]:
    return tuple(code for code, s in sources().items() if s.events is not None and s.events.mode == "push")


@dataclass
class Pusher:
    provider: Provider
    board: FaultBoard
    world: World
    hub_events_url: str
    ministry: Ministry = field(default_factory=Ministry)
    timeout: float = 10.0
    backoff_min: float = 0.2
    backoff_max: float = 10.0

    def __post_init__(self) -> None:
        self.sources = push_sources()
        self._state: dict[str, Delivery] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._unlisten = self.world.overlay.listen(self._changed)
        self._thread = threading.Thread(target=self._run, name="simulators-pusher", daemon=True)
        verify: ssl.SSLContext | bool = True
        if self.hub_events_url.startswith("https:"):
            verify = ssl.create_default_context(cafile=str(self.provider.pki.ca_file))
        self._http = httpx.Client(timeout=self.timeout, verify=verify)

    def start(self) -> Pusher:
        self._thread.start()
        return self

    def close(self) -> None:
        self._unlisten()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout + 5)
        self._http.close()

    def delivery(self, change: Change) -> Delivery:
        """A copy of the event's delivery state (pending until the first attempt)."""
        with self._lock:
            found = self._state.get(change.id)
            return Delivery(**vars(found)) if found else Delivery()

    def forget(self) -> None:
        """Drop every delivery state (the feeds were reset: their events are gone)."""
        with self._lock:
            self._state.clear()

    def pending(self) -> dict[str, list[Change]]:
        """Each pushing source's events not acknowledged yet, oldest first."""
        with self._lock:
            done = {i for i, d in self._state.items() if d.delivered_at is not None}
        return {code: [c for c in self.world.feed(code) if c.id not in done] for code in self.sources}

    def push_round(self) -> bool:
        """One push per source with events waiting (MAX_PUSH at most); True when all went through."""
        ok = True
        for code, waiting in self.pending().items():
            if waiting and not self._stop.is_set():
                ok = self._push(code, waiting[:MAX_PUSH]) and ok
        return ok

    # -- the thread ----------------------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        if change.source in self.sources:
            self._wake.set()

    def _run(self) -> None:
        backoff = self.backoff_min
        while not self._stop.is_set():
            self._wake.clear()
            try:
                delivered = self.push_round()
            except Exception as exc:  # noqa: BLE001 - the pusher must outlive any one failure
                log.warning("pushing events failed unexpectedly (%s)", type(exc).__name__)
                delivered = False
            if not delivered:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                continue
            backoff = self.backoff_min
            if not any(self.pending().values()):
                self._wake.wait(1.0)

    def _push(self, code: str, batch: list[Change]) -> bool:
        sim = self.provider.sources[code]
        decision = self.board.pick(code, PUSH, sim.name) if self.board.active else NO_FAULT
        with self._lock:
            for change in batch:
                state = self._state.setdefault(change.id, Delivery())
                state.attempts += 1
                state.fault = decision.label
        try:
            accepted = self._send(sim, batch, decision)
        except PushRefused as exc:
            attempts = self._failed(batch, str(exc))
            if attempts == 1 or attempts % 10 == 0:  # not a line per retry while a hub is away
                log.warning("a push of %d %s events was not acknowledged (%s); it will be sent again "
                            "(attempt %d)", len(batch), code, str(exc)[:200], attempts)
            return False
        now = datetime.now(UTC)
        with self._lock:
            for change in batch:
                state = self._state.setdefault(change.id, Delivery())  # forgotten meanwhile: a reset
                if change.id in accepted:
                    state.delivered_at, state.error = now, None
                else:
                    state.error = "not in the hub's acknowledgement"
        return all(c.id in accepted for c in batch)

    def _send(self, sim: SimulatedSource, batch: list[Change], decision: Any) -> set[str]:
        """The ids the hub acknowledged, or PushRefused."""
        headers = push_headers(sim.system, self.ministry)
        payload = sim.source.codec.encode(PUSH, {"event": [contract_event(c) for c in batch]})
        reply = self.provider.deliver(sim, xroad.envelope(headers.elements(), payload), 200, decision)
        if reply.delay_s and self._stop.wait(reply.delay_s):
            raise PushRefused("the simulators are stopping")
        if decision.failure in NOT_SENT:
            if decision.failure is FaultKind.HANG:
                self._stop.wait(self.timeout)
            raise PushRefused(f"not sent: the simulated fault {decision.failure.value}")
        try:
            response = self._http.post(push_url(self.hub_events_url, sim.system), content=reply.content,
                                       headers={"Content-Type": CONTENT_TYPE})
        except httpx.HTTPError as exc:
            raise PushRefused(f"the hub did not answer ({type(exc).__name__})") from None
        return self._acknowledged(response, reply.content)

    def _acknowledged(self, response: httpx.Response, sent: bytes) -> set[str]:
        """The accepted ids of the hub's answer, once its signature and request hash are checked."""
        try:
            verified = self.provider.verifier.verify(response.content, expected_signer=OPERATOR_CN)
        except SignatureInvalid as exc:
            raise PushRefused(f"HTTP {response.status_code}, not an answer signed by the hub ({exc.message[:80]})") from None
        envelope = verified.envelope
        body = envelope.find(xroad.BODY)
        answer = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if answer is None or answer.tag == xroad.FAULT:
            reason = answer.findtext("faultstring") if answer is not None else "an empty answer"
            raise PushRefused(f"HTTP {response.status_code}, refused: {reason}")
        if envelope.findtext(f"{xroad.HEADER}/{xroad.REQUEST_HASH}") != xroad.request_hash(sent):
            raise PushRefused("the hub's answer is not bound to this push (request hash)")
        if etree.QName(answer).localname != f"{PUSH}Response":
            raise PushRefused(f"the hub answered {etree.QName(answer).localname}")
        return {(e.text or "").strip() for e in answer}

    def _failed(self, batch: list[Change], error: str) -> int:
        """Note the failure on each event; the most attempts any of them has had."""
        with self._lock:
            for change in batch:
                self._state.setdefault(change.id, Delivery()).error = error
            return max(self._state[c.id].attempts for c in batch)
