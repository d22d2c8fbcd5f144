import pytest

from ehis.errors import Forbidden
from ehis.policy import DEFAULT_ACCESS, AccessPolicy


def test_default_policy_follows_the_statute_table():
    p = AccessPolicy(DEFAULT_ACCESS)
    assert p.allows("emek-muqavilesi", "din.person")
    assert p.allows("emek-muqavilesi", "dmx.work-permit")
    assert not p.allows("emek-muqavilesi", "din.vehicles")
    assert p.allows("vemtas", "din.vehicles")  # din.* wildcard
    assert not p.allows("monitorinq", "din.person")
    assert not p.allows("tapsiriqlar", "din.person")


def test_unknown_subsystem_is_denied():
    p = AccessPolicy(DEFAULT_ACCESS)
    assert not p.allows("somebody", "din.person")
    with pytest.raises(Forbidden) as exc:
        p.check("somebody", "din.person")
    assert exc.value.code == "forbidden"


def test_wildcard_matches_the_system_only():
    p = AccessPolicy({"x": ["din.*"]})
    assert p.allows("x", "din.anything")
    assert not p.allows("x", "dinx.person")


def test_the_caller_is_the_broker_user_less_the_deployments_prefix() -> None:
    from datetime import UTC, datetime

    from ehis.bus.envelope import Request, Requester
    from ehis.errors import Forbidden
    from ehis.hub import verified_caller

    request = Request(service="din.person", requester=Requester(subsystem="pensiya"), deadline=datetime.now(UTC))
    assert verified_caller(request, "t1-pensiya", "t1-") == "pensiya"
    assert verified_caller(request, None, "t1-") == "pensiya"  # the embedded bus
    for impostor in ("pensiya", "t2-pensiya", "t1-vemtas"):
        with pytest.raises(Forbidden):
            verified_caller(request, impostor, "t1-")


def test_the_statutes_event_receivers_name_only_kinds_a_source_sends() -> None:
    from ehis.catalogue import EVENTS
    from ehis.policy import DEFAULT_EVENT_ACCESS

    granted = {kind for kinds in DEFAULT_EVENT_ACCESS.values() for kind in kinds}
    assert granted == set(EVENTS)  # every kind has a receiver, and none is made up
    assert AccessPolicy(DEFAULT_EVENT_ACCESS).subsystems("edliyye.death") == sorted(
        s for s, kinds in DEFAULT_EVENT_ACCESS.items() if "edliyye.death" in kinds)


@pytest.mark.parametrize("pattern", ["edliyye.deth", "vergiler.*", "edliyye", "*"])
def test_an_event_kind_no_source_sends_stops_the_hub_at_start(pattern: str) -> None:
    from pydantic import ValidationError

    from ehis.config import Settings

    with pytest.raises(ValidationError, match=f"event_access.pensiya: no event kind '{pattern}'"):
        Settings(event_access={"pensiya": [pattern]})
    assert Settings(event_access={"pensiya": ["edliyye.death", "dmx.*"]}).event_access["pensiya"]
