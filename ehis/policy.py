"""Who may call what, and who receives which events: deny by default, rules from configuration
(`access` and `event_access` in Settings).

A rule is a service name (an event's routing key) or a system wildcard (`din.*`). The default
tables are the statute's (shared/catalogue.md, "Callers" and "Events"); a deployment overrides
them in ehis.toml under [access] and [event_access]. The same AccessPolicy class reads both.
"""

from __future__ import annotations

from collections.abc import Mapping

from ehis.errors import Forbidden

DEFAULT_ACCESS: dict[str, list[str]] = {
    "sened-dovriyyesi": ["din.person", "vergiler.taxpayer"],
    "emek-muqavilesi": ["din.person", "vergiler.taxpayer", "dmx.residence-permit", "dmx.work-permit",
                        "emek.contract-prefill"],
    "vemtas": [
        "din.*", "edliyye.civil-acts", "vergiler.income", "kend.land-plots", "emlak.real-estate",
        "dsx.border-crossings", "kb.credit-report", "azerishiq.*", "azersu.*", "azeriqaz.*",
        "yih.household", "qmkdk.idp-status", "tehsil.enrolment", "dsk.subsistence-minimum",
        "vemtas.means-test",
    ],
    "sosial-odenisler": ["din.person", "edliyye.civil-acts", "qmkdk.idp-status", "tehsil.enrolment"],
    "tseras": ["din.person", "sehiyye.referrals"],
    "hhe": ["din.person", "mudafie.service-record", "sshcdx.conscription-status", "sehiyye.referrals"],
    "sigorta": ["din.person", "vergiler.taxpayer", "vergiler.income"],
    "monitorinq": ["vergiler.taxpayer"],
    "pensiya": ["din.person", "edliyye.civil-acts", "mudafie.service-record", "vergiler.income", "dsk.average-wage"],
    "mesgulluq": [
        "din.person", "tehsil.enrolment", "dim.exam-results", "dmx.work-permit",
        "dmx.residence-permit", "sshcdx.conscription-status",
    ],
    "sovqat": ["din.person", "emlak.real-estate", "qmkdk.idp-status"],
    "cagri-merkezi": ["din.person", "nrytn.mobile-numbers"],
    "tapsiriqlar": [],
    "vetendas-qebulu": ["din.person"],
    "sanatoriya": ["din.person", "sehiyye.referrals"],
    "ovladliq": ["din.person", "edliyye.civil-acts", "emlak.real-estate", "sehiyye.referrals"],
    "qeyri-formal": ["din.person", "vergiler.taxpayer", "vergiler.income"],
}


def _statute_events() -> dict[str, list[str]]:
    from ehis.catalogue import EVENTS

    table: dict[str, list[str]] = {}
    for entry in EVENTS.values():
        for subsystem in entry.receivers:
            table.setdefault(subsystem, []).append(entry.key)
    return table


#: Which event kinds (routing keys, or `<system>.*`) each subsystem receives: the statute's table.
DEFAULT_EVENT_ACCESS: dict[str, list[str]] = _statute_events()


class AccessPolicy:
    def __init__(self, rules: Mapping[str, list[str]]):
        self._exact: dict[str, frozenset[str]] = {}
        self._systems: dict[str, frozenset[str]] = {}
        for subsystem, patterns in rules.items():
            self._exact[subsystem] = frozenset(p for p in patterns if not p.endswith(".*"))
            self._systems[subsystem] = frozenset(p[:-2] for p in patterns if p.endswith(".*"))

    def allows(self, subsystem: str, service: str) -> bool:
        if service in self._exact.get(subsystem, ()):
            return True
        return service.split(".", 1)[0] in self._systems.get(subsystem, ())

    def check(self, subsystem: str, service: str) -> None:
        if not self.allows(subsystem, service):
            raise Forbidden(f"subsystem {subsystem!r} may not call {service!r}")

    def subsystems(self, name: str) -> list[str]:
        """Every subsystem the rules let have `name`, sorted (an event's receivers)."""
        return sorted(s for s in self._exact if self.allows(s, name))

    def subscribers(self) -> list[str]:
        """Every subsystem with at least one rule (under an event policy: those with a queue)."""
        return sorted(s for s in self._exact if self._exact[s] or self._systems[s])
