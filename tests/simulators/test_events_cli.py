"""`ehis simulators events emit|list|reset` against simulators on a real socket (uvicorn), and
events at a configured rate (`ehis simulators serve --event-rate`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from ehis import cli
from ehis.security.pki import Pki
from ehis.simulators import create_app
from ehis.simulators.app import stop_events
from ehis.simulators.events import KINDS
from ehis.simulators.world import world
from ehis.testing import free_port
from tests.integration.servers import serving


@pytest.fixture
def simulators(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    world().reset_overlay()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("EHIS_SIMULATOR_URL", url)
    with serving(create_app(pki), port):
        yield url
    world().reset_overlay()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["simulators", "events", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_emit_list_and_reset(simulators: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "emit", "edliyye.death", "date=2026-02-01")
    assert code == 0, err
    (event,) = json.loads(out)["events"]
    assert event["key"] == "edliyye.death" and event["death"]["date"] == "2026-02-01"
    assert world().person(event["fin"]).death_date.isoformat() == "2026-02-01"
    code, out, _ = run(capsys, "emit", "din.address-changed", f"fin={event['fin']}")
    assert code == 1  # the deceased do not move
    code, out, _ = run(capsys, "emit", "qmkdk.status-changed", "status=idp", "region=Şuşa")
    assert code == 0 and all(e["displacement"]["status"] == "IDP" for e in json.loads(out)["events"])
    code, out, _ = run(capsys, "list")
    listed = json.loads(out)["sources"]
    assert [e["id"] for e in listed["edliyye"]["events"]] == [event["id"]] and listed["qmkdk"]["events"]
    code, out, _ = run(capsys, "reset")
    assert code == 0 and "reset" in out
    assert world().person(event["fin"]).death_date is None
    code, out, _ = run(capsys, "list")
    assert all(not feed["events"] for feed in json.loads(out)["sources"].values())


@pytest.mark.parametrize(("args", "code", "says"), [
    (("emit", "edliyye.funeral"), 1, "no event kind 'edliyye.funeral'"),
    (("emit", "edliyye.death", "fin"), 2, "not KEY=VALUE"),
    (("emit",), 2, "name the kind"),
    (("list", "edliyye.death"), 2, "takes no arguments"),
])
def test_mistakes_are_one_line(simulators: str, capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                               code: int, says: str) -> None:
    done, _, err = run(capsys, *args)
    assert done == code and says in err and len(err.strip().splitlines()) == 1


def test_simulators_that_are_not_running_are_named(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EHIS_SIMULATOR_URL", f"http://127.0.0.1:{free_port()}")
    code, _, err = run(capsys, "list")
    assert code == 1 and "do not answer" in err and "ehis simulators serve" in err


def test_serve_takes_an_event_rate_and_the_hub_events_url(monkeypatch: pytest.MonkeyPatch, pki: Pki,
                                                           tmp_path: Any) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(app))
    monkeypatch.setenv("EHIS_PKI_DIR", str(pki.directory))
    monkeypatch.setenv("EHIS_SIMULATOR_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("EHIS_HUB_EVENTS_URL", "http://127.0.0.1:9/events")
    assert cli.main(["simulators", "serve", "--event-rate", "0.5"]) == 0
    (app,) = calls
    assert app.state.event_rate is not None and app.state.event_rate.interval == 120
    assert app.state.pusher is not None and app.state.pusher.hub_events_url == "http://127.0.0.1:9/events"
    assert not app.state.pusher._thread.is_alive()  # stopped when uvicorn returned


def test_events_happen_at_the_configured_rate(pki: Pki) -> None:
    world().reset_overlay()
    app = create_app(pki, event_rate=60_000)  # a thousand a second: several within the bound below
    try:
        deadline = time.monotonic() + 30
        while app.state.event_rate.emitted < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.state.event_rate.emitted >= 3
        kinds = {c.key for s in ("edliyye", "din", "qmkdk", "dmx", "sehiyye") for c in world().feed(s)}
        assert kinds and kinds <= set(KINDS)
    finally:
        stop_events(app)
        world().reset_overlay()
