"""`ehis demo`: simulators, worker and callers in one process on memory://, real lookups.

The simulators run in-process behind httpx.ASGITransport: the same app `ehis simulators
serve` puts on a socket. Every request travels the real path: bus envelope, worker, access
policy, cache, guarded signed SOAP call, verified signed response, mapping, exchange log. Some
cases switch on a simulator fault first. The demo checks each outcome and exits non-zero if one
is not what it should be; it ends by verifying the exchange log and showing one citizen's report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from ehis.audit import ExchangeLog
from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.config import Settings
from ehis.runtime import embedded_hub
from ehis.security.pki import ensure_pki
from ehis.simulators.app import create_app
from ehis.simulators.faults import parse_rules


@dataclass(frozen=True)
class Case:
    title: str
    subsystem: str
    service: str
    params: dict[str, Any]
    expect: str  # "ok" or an error code
    faults: list[dict[str, Any]] = field(default_factory=list)  # simulator faults during this case
    timeout: float | None = None


CASES = (
    Case("an employee's identity for an employment contract", "emek-muqavilesi", "din.person", {"fin": "5GXM4DZ"}, "ok"),
    Case("the same person for the call centre (lower-case input)", "cagri-merkezi", "din.person", {"fin": "5gxm4dz"}, "ok"),
    Case("a FIN the registry does not hold", "emek-muqavilesi", "din.person", {"fin": "0AB12CD"}, "not_found"),
    Case("a malformed FIN", "emek-muqavilesi", "din.person", {"fin": "12-34"}, "invalid_input"),
    Case("a caller the policy forbids", "monitorinq", "din.person", {"fin": "5GXM4DZ"}, "forbidden"),
    Case("a service that is not in the catalogue", "emek-muqavilesi", "din.passport", {"fin": "5GXM4DZ"}, "unknown_service"),
    Case("a source whose contract is not built yet", "emek-muqavilesi", "vergiler.taxpayer", {"voen": "1234567891"}, "unavailable"),
    Case("the source answers 503 twice, the hub retries", "pensiya", "din.person", {"fin": "7HJK2LM"}, "ok",
         faults=[{"kind": "http_503", "system": "din", "first": 2}]),
    Case("the source hangs; the caller's 1.5 s deadline still holds", "pensiya", "din.person", {"fin": "3RTY5UP"},
         "deadline_exceeded", faults=[{"kind": "hang", "system": "din"}], timeout=1.5),
    Case("the source signs with the wrong key", "pensiya", "din.person", {"fin": "4WQE8ZX"}, "signature_invalid",
         faults=[{"kind": "wrong_signer", "system": "din"}]),
)
SUBJECT = "5GXM4DZ"


def describe(reply: Reply) -> str:
    if reply.status == "error" and reply.error:
        return f"error {reply.error.code}: {reply.error.message}"
    data = reply.data or {}
    doc, addr = data.get("document", {}), data.get("address", {})
    return "\n".join([
        f"ok  {data.get('surname')} {data.get('name')} {data.get('patronymic')}, born {data.get('birth_date')}, "
        f"{data.get('sex')}, {data.get('citizenship')}",
        f"    {doc.get('type')} {doc.get('series')} {doc.get('number')} issued {doc.get('issue_date')} "
        f"by {doc.get('issuing_body')}",
        f"    {addr.get('text')} ({addr.get('district_code')})",
        f"    signed by {reply.meta.signed_by}; cache {reply.meta.cache}; {reply.meta.duration_ms} ms",
    ])


async def run_demo(settings: Settings) -> int:
    pki = ensure_pki(settings.pki_path)
    settings = settings.model_copy(update={"broker_url": "memory://demo", "simulator_url": "http://simulators.demo"})
    simulators = create_app(pki)
    failures = 0
    async with embedded_hub(settings, http_transport=httpx.ASGITransport(app=simulators)) as running:
        client = BusClient(running.transport, default_timeout=settings.request_timeout)
        for case in CASES:
            simulators.state.faults.reset()
            if case.faults:
                simulators.state.faults.add(parse_rules(case.faults))
            requester = Requester(subsystem=case.subsystem, user="demo", purpose="ehis demo")
            started = time.monotonic()
            reply = await client.request(case.service, case.params, requester=requester, timeout=case.timeout)
            took = time.monotonic() - started
            outcome = reply.error.code if reply.error else "ok"
            mark = "✓" if outcome == case.expect else "✗ expected " + case.expect
            faults = f"  [simulator fault: {', '.join(f['kind'] for f in case.faults)}]" if case.faults else ""
            print(f"\n▶ {case.title}{faults}\n  {case.subsystem} → {case.service} {case.params}  {mark}  ({took:.2f} s)")
            print("  " + describe(reply).replace("\n", "\n  "))
            failures += outcome != case.expect
        simulators.state.faults.reset()
        if running.parts.log is not None:
            await show_log(running.parts.log)
    print(f"\n{len(CASES) - failures} of {len(CASES)} outcomes as expected")
    return 1 if failures else 0


async def show_log(log: ExchangeLog) -> None:
    """The accountability side: the chain verified, and what the log tells a citizen."""
    report = await log.verify()
    state = "intact" if report.ok else f"BROKEN at record {report.first_bad_seq}: {report.detail}"
    print(f"\n▶ exchange log: {report.checked} records, hash chain {state}")
    accesses = (await log.subject_report(SUBJECT)).accesses[-3:]
    print(f"  the last {len(accesses)} accesses to {SUBJECT}'s data (`ehis log report {SUBJECT}`):")
    for a in accesses:
        print(f"  {a.time:%Y-%m-%d %H:%M:%S} {a.subsystem} ({a.user or '-'}) {a.service}: {a.purpose or '-'} → "
              f"{a.outcome}{' ' + a.error_code if a.error_code else ''}")
