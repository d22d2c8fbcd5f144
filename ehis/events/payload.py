"""Helpers the source packages' event mappers share (ehis.sources.spec.EventKind.mapper)."""

from __future__ import annotations

from typing import Any


class MalformedEvent(ValueError):
    """An event its source signed but that does not say what its kind requires: refused, never delivered."""


def only(event: dict[str, Any], *names: str) -> tuple[str, Any]:
    """The one of `names` the event carries (name, value): its kind's payload, and no other."""
    present = [(n, event.get(n)) for n in names if event.get(n) is not None]
    if len(present) != 1:
        found = ", ".join(n for n, _ in present) or "none"
        raise MalformedEvent(f"a {event.get('kind')} event must carry exactly one of {', '.join(names)} (found {found})")
    return present[0]


def same_subject(event: dict[str, Any], fin: str) -> None:
    """The payload is about the FIN the event names (a birth act's child, a union's husband...)."""
    if fin != event.get("fin"):
        raise MalformedEvent(f"the {event.get('kind')} event's payload names another person than its fin")
