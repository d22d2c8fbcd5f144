"""`ehis demo`: simulators, worker and callers in one process on memory://, real lookups.

The simulators run in-process behind httpx.ASGITransport: the same app `ehis simulators serve`
puts on a socket. Every request travels the real path: bus envelope, worker, access policy,
cache, guarded signed SOAP call, verified signed response, mapping, exchange log. The cases come
from the source registry (each built service's example, with a caller the policy allows) and
from the hub's rules (not found, malformed input, a forbidden caller, an unknown service, faults
on demand). Each outcome is checked: ✓ means "as expected", and the demo exits non-zero if one
is not. It writes its exchange log into a directory of its own, never the worker's.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ehis import catalogue
from ehis.audit import ExchangeLog
from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.config import Settings
from ehis.policy import AccessPolicy
from ehis.runtime import RunningHub, embedded_hub
from ehis.security.pki import ensure_pki
from ehis.simulators.app import create_app, stop_events
from ehis.simulators.events import emit
from ehis.simulators.faults import parse_rules
from ehis.simulators.world import world
from ehis.sources import sources
from ehis.sources.spec import Service


@dataclass(frozen=True)
class Case:
    title: str
    subsystem: str
    service: str
    params: dict[str, Any]
    expect: str  # "ok" or an error code
    faults: list[dict[str, Any]] = field(default_factory=list)  # simulator faults during this case
    timeout: float | None = None


CITIZEN = "P9TCV69"  # the world's head of a household of four, with work, property, loans and utilities
SOCIAL_ASSISTANCE = "vemtas"
BAKU_RESIDENT = "5GXM4DZ"  # registered in Bakı, whose own authority answers
EXPIRED_PERMIT = ("ZTPDSRQ", "9966619221")  # a foreign worker, and the employer his work permit (expired) names


def for_citizen(service: Service, fin: str) -> dict[str, Any]:
    """The service's example params, about `fin` when the service is about a person."""
    return {**service.example, "fin": fin} if service.subject == "fin" else dict(service.example)


def citizen_cases(policy: AccessPolicy) -> Iterator[Case]:
    """One citizen across every source vemtas may ask; the bureaus, with one down; two districts."""
    for service in (s for src in sources().values() for s in src.services):
        if policy.allows(SOCIAL_ASSISTANCE, service.name):
            yield Case(catalogue.service(service.name).summary, SOCIAL_ASSISTANCE, service.name,
                       for_citizen(service, CITIZEN), "ok")
    yield Case("the credit bureaus, merged: one loan per id, each naming its bureaus", SOCIAL_ASSISTANCE,
               "kb.credit-report", {"fin": CITIZEN}, "ok")
    yield Case("one bureau down: the reply names it and still brings the others' loans", SOCIAL_ASSISTANCE,
               "kb.credit-report", {"fin": CITIZEN}, "ok", faults=[{"kind": "http_503", "system": "kb-mkr"}])
    yield Case("a household routed to the authority of the person's district (Bakı)", SOCIAL_ASSISTANCE,
               "yih.household", {"fin": BAKU_RESIDENT}, "ok")
    yield Case("the citizen's household means test: every member's facts from every source, at once",
               SOCIAL_ASSISTANCE, "vemtas.means-test", {"fin": CITIZEN, "from": "2024-01-01", "to": "2024-12-31"}, "ok")
    yield Case("an employment contract prefilled for a foreign employee whose work permit has expired",
               "emek-muqavilesi", "emek.contract-prefill",
               {"employer_voen": EXPIRED_PERMIT[1], "employee_fin": EXPIRED_PERMIT[0], "on": "2025-01-01"}, "ok")


def cases(policy: AccessPolicy, callers: list[str]) -> Iterator[Case]:
    """The demo's cases, from the registry and the access policy."""
    def caller_of(service: Service) -> str | None:
        return next((c for c in callers if policy.allows(c, service.name)), None)

    yield from citizen_cases(policy)
    built = [s for src in sources().values() for s in src.services if caller_of(s)]
    first = built[0]
    who = caller_of(first) or ""
    missing = next((s for s in built if s.missing is not None), None)
    if missing is not None:
        yield Case("a record the source does not hold", caller_of(missing) or "", missing.name,
                   dict(missing.missing or {}), "not_found")
    if first.subject:
        yield Case("a malformed identifier", who, first.name, {**first.example, first.subject: "12-34"},
                   "invalid_input")
    outsider = next((c for c in callers if not policy.allows(c, first.name)), None)
    if outsider is not None:
        yield Case("a caller the policy forbids", outsider, first.name, dict(first.example), "forbidden")
    yield Case("a service that is not in the statute", who, f"{first.system}.no-such-service", {}, "unknown_service")
    unbuilt = next((name for name, entry in catalogue.SERVICES.items()
                    if not entry.composite and entry.system not in sources()
                    and any(policy.allows(c, name) for c in callers)), None)
    if unbuilt is not None:
        yield Case("a service of the statute this hub does not serve", next(
            c for c in callers if policy.allows(c, unbuilt)), unbuilt, {}, "not_served")
    system = first.system
    yield Case("the source answers 503 twice, the hub retries", who, first.name, dict(first.example), "ok",
               faults=[{"kind": "http_503", "system": system, "first": 2}])
    yield Case("the source hangs; the caller's 1.5 s deadline still holds", who, first.name, dict(first.example),
               "deadline_exceeded", faults=[{"kind": "hang", "system": system}], timeout=1.5)
    yield Case("the source signs with the wrong key", who, first.name, dict(first.example), "signature_invalid",
               faults=[{"kind": "wrong_signer", "system": system}])


def describe(reply: Reply) -> str:
    if reply.status == "error" and reply.error:
        signed = f"\n    signed by {reply.meta.signed_by}" if reply.meta.signed_by else ""
        return f"error {reply.error.code}: {reply.error.message}{signed}"
    data = reply.data or {}
    shown = ", ".join(f"{k}={_short(v)}" for k, v in list(data.items())[:6])
    lines = [f"ok  {shown}"]
    for bureau in data.get("bureaus", []):  # a merged answer: each provider's part
        state = "answered" if bureau["answered"] else f"failed: {bureau['error_code']}"
        lines.append(f"    bureau {bureau['bureau']}: {state}" + (f", signed by {bureau['signed_by']}"
                                                                     if bureau.get("signed_by") else ""))
    if "authority" in data:
        lines.append(f"    answered by {data['authority']} for {data['address']['district']}")
    if "permits" in data:
        permits = data["permits"]
        lines.append(f"    work permit: {permits['work_permit_status']}; residence permit: {permits['residence_status']}; "
                     f"refused: {', '.join(r['field'] for r in data['refused'])}")
    if "incomplete" in data:
        facts = sum(1 for m in data["members"] for v in m.values() if isinstance(v, dict) and "part" in v)
        lines.append(f"    {len(data['members'])} members, {facts} facts, authority {data['household']['authority']}; "
                     f"incomplete: {', '.join(m['fact'] for m in data['incomplete']) or 'none'}")
    signed = f"signed by {reply.meta.signed_by}; " if reply.meta.signed_by else ""
    lines.append(f"    {signed}cache {reply.meta.cache}; {reply.meta.duration_ms} ms")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} record{'' if len(value) == 1 else 's'}"
    text = str(value) if not isinstance(value, dict) else "{" + ", ".join(list(value)[:3]) + ", …}"
    return text if len(text) <= 40 else text[:37] + "..."


async def run_demo(settings: Settings, data_dir: Path | None = None) -> int:
    """Run every case; the exchange log goes to `data_dir` (default: a temporary directory)."""
    pki = ensure_pki(settings.pki_path)
    with tempfile.TemporaryDirectory(prefix="ehis-demo-") as scratch:
        demo_settings = settings.model_copy(update={
            "broker_url": "memory://demo", "simulator_url": "http://simulators.demo", "pki_dir": pki.directory,
            "data_dir": data_dir or Path(scratch), "database_url": None, "admin_listen": "",
            "events_listen": "127.0.0.1:0", "event_poll_interval": 0.5,
        })
        return await _run(demo_settings, pki)


async def _run(settings: Settings, pki) -> int:
    simulators = create_app(pki)
    policy = AccessPolicy(settings.access)
    planned = list(cases(policy, list(settings.access)))
    failures = 0
    print("Each case shows who asks what, then the hub's reply; ✓ means the outcome is the one expected.")
    print(f"First, one citizen ({CITIZEN}) across every source the social-assistance subsystem may ask:")
    async with embedded_hub(settings, http_transport=httpx.ASGITransport(app=simulators)) as running:
        client = BusClient(running.transport, default_timeout=settings.request_timeout)
        for case in planned:
            simulators.state.faults.reset()
            if case.faults:
                simulators.state.faults.add(parse_rules(case.faults))
            requester = Requester(subsystem=case.subsystem, user="demo", purpose="ehis demo")
            started = time.monotonic()
            reply = await client.request(case.service, case.params, requester=requester, timeout=case.timeout,
                                         fresh=bool(case.faults))
            took = time.monotonic() - started
            outcome = reply.error.code if reply.error else "ok"
            mark = "✓" if outcome == case.expect else "✗ expected " + case.expect
            faults = f"  [simulator fault: {', '.join(f['kind'] for f in case.faults)}]" if case.faults else ""
            print(f"\n▶ {case.title}{faults}\n  {case.subsystem} → {case.service} {case.params}  {mark}  ({took:.2f} s)")
            print("  " + describe(reply).replace("\n", "\n  "))
            failures += outcome != case.expect
        simulators.state.faults.reset()
        failures += await show_events(running, pki)
        total = len(planned) + EVENT_CHECKS
        if running.parts.log is not None:
            await show_log(running.parts.log, CITIZEN)
    print(f"\n{total - failures} of {total} outcomes as expected")
    return 1 if failures else 0


EVENT_CHECKS = 3  # show_events: the death received, din saying so, the address change received


async def show_events(running: RunningHub, pki) -> int:
    """Proactive events: a death the Ministry of Justice pushes, an address change the hub polls
    from Internal Affairs, each delivered to the subsystems that act on it; the number of cases
    that did not go as expected."""
    assert running.events is not None and running.events.inbound_url is not None
    pushing = create_app(pki, hub_events_url=f"{running.events.inbound_url}/events", push_backoff=(0.05, 0.5))
    client = BusClient(running.transport)
    failures = 0
    try:
        (death,) = emit(world(), "edliyye.death", rng=random.Random(11))
        print(f"\n▶ events: edliyye registers the death of {death.fin} and pushes it, signed, to the hub")
        failures += not await _received(client, "pensiya", f"edliyye:{death.id}")
        reply = await client.request("din.person", {"fin": death.fin}, requester=Requester(
            subsystem="pensiya", user="demo", purpose="ehis demo: stop the pension"))
        died = reply.data.get("death_date") if reply.data else None
        print(f"  pensiya → din.person {death.fin}: died {died} (the stale cached answer was dropped)"
              f"  {'✓' if died else '✗ expected a death date'}")
        failures += not died
        moves = emit(world(), "din.address-changed", rng=random.Random(12))
        print(f"\n▶ events: din records {len(moves)} address change(s); the hub polls din's changes")
        failures += not await _received(client, "vemtas", f"din:{moves[0].id}")
    finally:
        await asyncio.to_thread(stop_events, pushing)
        world().reset_overlay()
    return failures


async def _received(client: BusClient, subsystem: str, event_id: str) -> bool:
    """Whether `subsystem` receives the event within 10 s (other events before it are acknowledged)."""
    try:
        async with asyncio.timeout(10), aclosing(client.events(subsystem=subsystem)) as stream:
            async for received in stream:
                await received.ack()
                if received.event.id == event_id:
                    e = received.event
                    print(f"  {subsystem} receives {e.key} about {e.subject} ({e.via}, signed by "
                          f"{e.signed_by.split(',')[0]}): {type(e.typed()).__name__}  ✓")
                    return True
    except TimeoutError:
        pass
    print(f"  {subsystem} did not receive {event_id} within 10 s  ✗")
    return False


async def show_log(log: ExchangeLog, subject: str | None) -> None:
    """The accountability side: the chain verified, and what the log tells a citizen."""
    report = await log.verify()
    state = "intact" if report.ok else f"BROKEN at record {report.first_bad_seq}: {report.detail}"
    print(f"\n▶ exchange log: {report.checked} records, hash chain {state}")
    if subject is None:
        return
    accesses = (await log.subject_report(subject)).accesses[-3:]
    print(f"  the last {len(accesses)} accesses to {subject}'s data (`ehis log report {subject}`):")
    for a in accesses:
        print(f"  {a.time:%Y-%m-%d %H:%M:%S} {a.subsystem} ({a.user or '-'}) {a.service}: {a.purpose or '-'} → "
              f"{a.outcome}{' ' + a.error_code if a.error_code else ''}")
