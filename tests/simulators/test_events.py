"""Simulated events: each kind changes the world's answers consistently, lands in its source's
feed, is valid in its contract and readable by the hub; polled sources page their feed with
GetChangesSince (signed, faults applied); the admin API emits, lists and resets."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ehis.contracts import xroad
from ehis.events.reader import read
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.simulators import FaultRule
from ehis.simulators.events import KINDS, InvalidEvent, contract_event, emit
from ehis.simulators.responders import responders
from ehis.simulators.world import world
from ehis.sources import sources

DAY = dt.date(2026, 3, 2)


@pytest.fixture(autouse=True)
def base_world() -> Iterator[None]:
    world().reset_overlay()
    yield
    world().reset_overlay()


def answer(system: str, operation: str, **request: Any) -> dict[str, Any]:
    """What the source's simulator answers (before encoding and signing)."""
    op = responders()[system][1].operation(operation)
    assert op is not None
    return op.handle(request)


def one(key: str, seed: int = 1, **params: str) -> Any:
    made = emit(world(), key, {"date": DAY.isoformat(), **params}, rng=random.Random(seed))
    assert made[0].key == key
    return made


def test_the_kinds_are_exactly_what_the_sources_announce() -> None:
    announced = {f"{code}.{k.name}" for code, s in sources().items() if s.events for k in s.events.kinds}
    assert set(KINDS) == announced and len(announced) == 10


@pytest.mark.parametrize("key", sorted(KINDS))
def test_every_kind_is_valid_in_its_contract_and_read_by_the_hub(key: str) -> None:
    for change in one(key):
        source = sources()[change.source]
        event = contract_event(change)
        if source.events.mode == "push":
            element = source.codec.encode("PushEvents", {"event": [event]})
        else:
            element = source.codec.encode("GetChangesSinceResponse", {"event": [event], "cursor": "c", "more": False})
        source.codec.validate(element)
        got = read(source, source.codec.decode(element)["event"][0])
        assert got.problem is None and got.key == change.key and got.subject == change.fin
        assert got.source_event_id == change.id


def test_a_death_makes_din_report_the_person_deceased_and_edliyye_return_the_act() -> None:
    (death,) = one("edliyye.death")
    person = answer("din", "GetPerson", fin=death.fin)["person"]
    assert person["deathDate"] == DAY
    acts = answer("edliyye", "GetCivilActs", fin=death.fin)
    assert acts["death"]["number"] == death.record.number and acts["death"]["date"] == DAY
    assert contract_event(death)["death"]["number"] == death.record.number
    assert world().household(death.fin) is None
    with pytest.raises(InvalidEvent, match="deceased"):
        emit(world(), "edliyye.death", {"fin": death.fin})


def test_a_birth_is_a_new_fin_in_din_a_birth_act_and_a_member_of_the_household() -> None:
    (birth,) = one("edliyye.birth")
    child = birth.fin
    act = birth.record
    assert child.startswith("0")  # a place the base world left empty: nobody held it before
    person = answer("din", "GetPerson", fin=child)["person"]
    assert person["birthDate"] == DAY and person["deathDate"] is None
    acts = answer("edliyye", "GetCivilActs", fin=child)
    assert acts["birth"]["number"] == act.number and (acts["birth"]["father"], acts["birth"]["mother"]) == (
        act.father, act.mother)
    assert child in [a["fin"] for a in answer("edliyye", "GetCivilActs", fin=act.mother)["childBirth"]]
    household = world().household(act.mother)
    assert household is not None and (child, "child") in household.members
    assert world().household(child) == household
    world().reset_overlay()
    assert world().person(child) is None  # back to the base world


def test_a_marriage_and_then_a_divorce_are_acts_of_both_and_move_the_one_who_moves() -> None:
    marriage, moved = one("edliyye.marriage")
    husband, wife = marriage.record.subject, marriage.record.partner
    assert moved.key == "din.address-changed" and moved.fin == wife
    for fin in (husband, wife):
        acts = answer("edliyye", "GetCivilActs", fin=fin)
        assert [a["number"] for a in acts["marriage"]] == [marriage.record.number]
    assert world().family(wife).spouse == husband
    assert answer("din", "GetPerson", fin=wife)["person"]["registeredAddress"]["text"] == moved.record.text
    divorce, *moves = emit(world(), "edliyye.divorce", {"fin": wife, "date": (DAY + dt.timedelta(days=400)).isoformat()})
    assert divorce.key == "edliyye.divorce" and divorce.fin == husband
    assert [a["number"] for a in answer("edliyye", "GetCivilActs", fin=wife)["divorce"]] == [divorce.record.number]
    assert world().family(husband).marital_status == "divorced"
    assert {m.fin for m in moves} >= {wife}


def test_an_address_change_moves_the_household_in_din() -> None:
    made = one("din.address-changed", district="AZ-GA")
    for change in made:
        address = answer("din", "GetPerson", fin=change.fin)["person"]["registeredAddress"]
        assert address["districtCode"] == "AZ-GA" and address["text"] == change.record.text
        assert contract_event(change)["since"] == DAY


def test_a_status_change_is_announced_for_each_member_of_the_group() -> None:
    made = one("qmkdk.status-changed", status="idp", region="Şuşa")
    assert made
    for change in made:
        held = answer("qmkdk", "GetIdpStatus", fin=change.fin)["displacement"]
        assert held["status"] == "IDP" and held["regionOfOrigin"] == "Şuşa"
    withdrawn = emit(world(), "qmkdk.status-changed", {"fin": made[0].fin, "status": "none"})
    assert contract_event(withdrawn[0])["displacement"] is None
    assert "displacement" not in answer("qmkdk", "GetIdpStatus", fin=made[0].fin)


def test_a_referral_issued_is_listed_by_sehiyye() -> None:
    (issued,) = one("sehiyye.referral-issued", type="sanatorium")
    listed = answer("sehiyye", "GetReferrals", fin=issued.fin)["referral"]
    assert listed[-1]["number"] == issued.record.number and listed[-1]["kind"] == "SANATORIUM"


def test_permits_issued_expiring_and_expired_show_in_dmx() -> None:
    (issued,) = one("dmx.permit-issued", permit="work")
    fin = issued.fin
    permits = answer("dmx", "GetWorkPermits", fin=fin)["workPermit"]
    assert permits[-1]["number"] == issued.record.number and permits[-1]["validity"]["from"] == DAY
    later = DAY + dt.timedelta(days=100)
    (expiring,) = emit(world(), "dmx.permit-expiring", {"fin": fin, "permit": "work", "date": later.isoformat()})
    assert expiring.record.number == issued.record.number
    assert answer("dmx", "GetWorkPermits", fin=fin)["workPermit"][-1]["validity"]["to"] == later + dt.timedelta(30)
    (expired,) = emit(world(), "dmx.permit-expired", {"fin": fin, "permit": "work",
                                                      "date": (later + dt.timedelta(5)).isoformat()})
    last = answer("dmx", "GetWorkPermits", fin=fin)["workPermit"][-1]
    assert last["number"] == expired.record.number and last["validity"]["to"] < later + dt.timedelta(5)
    assert contract_event(expired)["workPermit"]["validity"]["to"] == last["validity"]["to"]


def test_a_residence_permit_expired_is_the_din_document_too() -> None:
    (expired,) = one("dmx.permit-expired", permit="residence")
    document = answer("din", "GetPerson", fin=expired.fin)["person"]["document"]
    assert document["number"] == expired.record.number and document["expiryDate"] == DAY - dt.timedelta(1)


@pytest.mark.parametrize(("key", "params", "says"), [
    ("edliyye.funeral", {}, "no event kind"),
    ("edliyye.death", {"colour": "red"}, "not colour"),
    ("edliyye.death", {"date": "yesterday"}, "YYYY-MM-DD"),
    ("edliyye.death", {"fin": "0AB12CD"}, "no person"),
    ("din.address-changed", {"district": "AZ-XX"}, "unknown district"),
])
def test_an_event_that_cannot_happen_says_why(key: str, params: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidEvent, match=says):
        emit(world(), key, params)


def test_ids_are_stable_and_never_repeat_after_a_reset() -> None:
    first = one("edliyye.death")[0]
    assert world().feed("edliyye") == (first,)
    world().reset_overlay()
    again = one("edliyye.death")[0]
    assert again.seq == 1 and again.id != first.id


# -- GetChangesSince, through the app -------------------------------------------------------------

def changes_request(pki: Pki, system: str, cursor: str | None, limit: int) -> bytes:
    headers = xroad.RequestHeaders(
        client=xroad.XRoadId("SUBSYSTEM", "AZ", "GOV", "EMSN", "ehis"),
        service=xroad.XRoadId("SERVICE", "AZ", "GOV", system, None, "GetChangesSince", "v1"),
        id=str(uuid.uuid4()))
    payload = sources()[system].codec.encode("GetChangesSince", {"cursor": cursor, "limit": limit})
    return xroad.serialize(EnvelopeSigner(pki.operator()).sign(xroad.envelope(headers.elements(), payload)))


async def page(http: httpx.AsyncClient, pki: Pki, cursor: str | None, limit: int) -> tuple[list[str], str, bool]:
    body = changes_request(pki, "din", cursor, limit)
    response = await http.post("/din", content=body, headers={"Content-Type": "text/xml"})
    assert response.status_code == 200, response.text
    envelope = EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer="din").envelope
    assert envelope.findtext(f"{xroad.HEADER}/{xroad.REQUEST_HASH}") == xroad.request_hash(body)
    decoded = sources()["din"].codec.decode(envelope.find(xroad.BODY)[0])
    return [e["id"] for e in decoded["event"]], decoded["cursor"], decoded["more"]


async def test_get_changes_since_pages_the_feed_by_cursor_and_batch_size(http, pki) -> None:
    for seed in range(3):
        one("din.address-changed", seed=seed)
    feed = [c.id for c in world().feed("din")]
    assert len(feed) >= 3
    seen, cursor, more = [], None, True
    while more:
        ids, cursor, more = await page(http, pki, cursor, 2)
        assert len(ids) <= 2
        seen += ids
    assert seen == feed
    assert await page(http, pki, cursor, 2) == ([], cursor, False)  # nothing new: the same cursor
    one("din.address-changed", seed=9)
    ids, _, _ = await page(http, pki, cursor, 500)
    assert ids == [c.id for c in world().feed("din")[len(feed):]]


async def test_a_cursor_of_an_earlier_epoch_reads_from_the_start_and_a_foreign_one_is_refused(http, pki) -> None:
    one("din.address-changed")
    _, cursor, _ = await page(http, pki, None, 500)
    world().reset_overlay()
    one("din.address-changed", seed=2)
    ids, _, _ = await page(http, pki, cursor, 500)
    assert ids == [c.id for c in world().feed("din")]
    response = await http.post("/din", content=changes_request(pki, "din", "somewhere", 5),
                               headers={"Content-Type": "text/xml"})
    assert response.status_code == 500 and b"InvalidInput" in response.content


async def test_fault_rules_apply_to_get_changes_since(http, pki, app) -> None:
    app.state.faults.add(FaultRule(kind="http_503", system="din", operation="GetChangesSince", first=1))
    body = changes_request(pki, "din", None, 5)
    assert (await http.post("/din", content=body, headers={"Content-Type": "text/xml"})).status_code == 503
    assert (await http.post("/din", content=body, headers={"Content-Type": "text/xml"})).status_code == 200


# -- the admin API ------------------------------------------------------------------------------

async def test_admin_emits_lists_and_resets(http) -> None:
    response = await http.post("/_admin/events", json={"kind": "edliyye.death", "params": {"date": "2026-01-05"}})
    assert response.status_code == 201, response.text
    (event,) = response.json()["events"]
    fin = event["fin"]
    assert event["key"] == "edliyye.death" and event["death"]["date"] == "2026-01-05"
    assert event["delivery"]["state"].startswith("not pushed")  # this app pushes nowhere
    assert world().person(fin).death_date == dt.date(2026, 1, 5)
    listed = (await http.get("/_admin/events")).json()
    assert [e["id"] for e in listed["sources"]["edliyye"]["events"]] == [event["id"]]
    assert listed["sources"]["din"]["mode"] == "poll" and listed["sources"]["din"]["events"] == []
    assert (await http.delete("/_admin/events")).status_code == 204
    assert world().person(fin).death_date is None
    assert (await http.get("/_admin/events")).json()["sources"]["edliyye"]["events"] == []


@pytest.mark.parametrize("body", [b"not json", b'{"params": {}}', b'{"kind": "edliyye.death", "params": []}',
                                  b'{"kind": "x.y"}'])
async def test_admin_refuses_what_cannot_be_emitted(http, body: bytes) -> None:
    response = await http.post("/_admin/events", content=body)
    assert response.status_code == 400 and response.json()["error"]


def test_pushes_are_faults_a_rule_may_name(app) -> None:
    added = app.state.faults.add(FaultRule(kind="bad_signature", system="edliyye", operation="PushEvents"))
    assert added[0].operation == "PushEvents"
    with pytest.raises(Exception, match="no simulated operation"):
        app.state.faults.add(FaultRule(kind="bad_signature", system="din", operation="PushEvents"))


