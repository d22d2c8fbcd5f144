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
