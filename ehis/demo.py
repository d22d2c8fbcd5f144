"""`ehis demo`: simulators, worker and callers in one process on memory://, real lookups.

The simulators run in-process behind httpx.ASGITransport: the same app `ehis simulators
serve` puts on a socket. Every request travels the real path: bus envelope, worker, access
policy, signed SOAP request, verified signed response, mapping. The demo checks each outcome
and exits non-zero if one is not what it should be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ehis.bus.client import BusClient
from ehis.bus.envelope import Reply, Requester
from ehis.config import Settings
from ehis.runtime import embedded_hub
from ehis.security.pki import ensure_pki
from ehis.simulators.app import create_app


@dataclass(frozen=True)
class Case:
    title: str
    subsystem: str
    service: str
    params: dict[str, Any]
    expect: str  # "ok" or an error code


CASES = (
    Case("an employee's identity for an employment contract", "emek-muqavilesi", "din.person", {"fin": "5GXM4DZ"}, "ok"),
    Case("the same person for the call centre (lower-case input)", "cagri-merkezi", "din.person", {"fin": "5gxm4dz"}, "ok"),
    Case("a FIN the registry does not hold", "emek-muqavilesi", "din.person", {"fin": "0AB12CD"}, "not_found"),
    Case("a malformed FIN", "emek-muqavilesi", "din.person", {"fin": "12-34"}, "invalid_input"),
    Case("a caller the policy forbids", "monitorinq", "din.person", {"fin": "5GXM4DZ"}, "forbidden"),
    Case("a service that is not in the catalogue", "emek-muqavilesi", "din.passport", {"fin": "5GXM4DZ"}, "unknown_service"),
    Case("a source whose contract is not built yet", "emek-muqavilesi", "vergiler.taxpayer", {"voen": "1234567891"}, "unavailable"),
)


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
        f"    signed by {reply.meta.signed_by}; {reply.meta.duration_ms} ms",
    ])


async def run_demo(settings: Settings) -> int:
    pki = ensure_pki(settings.pki_path)
    settings = settings.model_copy(update={"broker_url": "memory://demo", "simulator_url": "http://simulators.demo"})
    sims = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(pki)))
    failures = 0
    async with sims, embedded_hub(settings, http=sims) as transport:
        client = BusClient(transport, default_timeout=settings.request_timeout)
        for case in CASES:
            requester = Requester(subsystem=case.subsystem, user="demo", purpose="ehis demo")
            reply = await client.request(case.service, case.params, requester=requester)
            outcome = reply.error.code if reply.error else "ok"
            mark = "✓" if outcome == case.expect else "✗ expected " + case.expect
            print(f"\n▶ {case.title}\n  {case.subsystem} → {case.service} {case.params}  {mark}")
            print("  " + describe(reply).replace("\n", "\n  "))
            failures += outcome != case.expect
    print(f"\n{len(CASES) - failures} of {len(CASES)} outcomes as expected")
    return 1 if failures else 0
