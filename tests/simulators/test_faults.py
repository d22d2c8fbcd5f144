"""Faults on demand: the board's decisions, the admin API, the journal, the rule files, and what
each fault does to the answer on the wire (in process; tests/contract/test_fault_errors.py runs
them over a real socket against the adapter)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from lxml import etree
from starlette.applications import Starlette

from ehis.contracts.xroad import DS_NS, SOAP_NS
from ehis.errors import SignatureInvalid
from ehis.security.pki import Pki
from ehis.security.signing import EnvelopeVerifier
from ehis.simulators import (
    FaultBoard,
    FaultKind,
    FaultRule,
    InvalidFaults,
    create_app,
    load_faults,
)
from ehis.simulators.faults import (
    NO_FAULT,
    ConnectionReset,
    other_identity,
    parse_rules,
)

from .conftest import BuildRequest

KNOWN = {"din": {"GetPerson"}, "vergiler": {"GetTaxpayer"}}


def rule(kind: str = "http_503", **fields: Any) -> FaultRule:
    return FaultRule.model_validate({"kind": kind, **fields})


# --- the board ------------------------------------------------------------------------------------


def test_no_rule_means_no_fault() -> None:
    board = FaultBoard()
    assert not board.active
    assert board.pick("din", "GetPerson") is NO_FAULT
    assert NO_FAULT.label is None


def test_probability_follows_the_seeded_rng() -> None:
    picks = []
    for _ in range(2):
        board = FaultBoard([rule(probability=0.3)], rng=random.Random(42))
        picks.append([board.pick("din", "GetPerson").failure for _ in range(1000)])
    assert picks[0] == picks[1]  # same seed, same run
    fired = sum(1 for p in picks[0] if p is FaultKind.HTTP_503)
    assert 240 <= fired <= 360
    listed, = board.rules()
    assert listed.fired == fired and listed.matched == 1000


def test_probability_bounds() -> None:
    board = FaultBoard([rule(probability=0), rule("empty", probability=1)], rng=random.Random(0))
    assert {board.pick("din", "GetPerson").failure for _ in range(200)} == {FaultKind.EMPTY}
    never, always = board.rules()
    assert never.fired == 0 and never.matched == 200 and always.fired == 200


def test_first_n_fail_then_the_source_recovers() -> None:
    board = FaultBoard([rule(first=3)])
    decisions = [board.pick("din", "GetPerson").failure for _ in range(5)]
    assert decisions == [FaultKind.HTTP_503] * 3 + [None] * 2
    spent, = board.rules()
    assert spent.fired == 3 and spent.matched == 3 and spent.spent


def test_first_counts_matching_requests_only() -> None:
    board = FaultBoard([rule(system="din", first=1)])
    assert board.pick("vergiler", "GetTaxpayer") is NO_FAULT
    assert board.pick("din", "GetPerson").failure is FaultKind.HTTP_503
    assert board.pick("din", "GetPerson") is NO_FAULT


def test_system_and_operation_matching() -> None:
    board = FaultBoard([rule(system="din", operation="GetPerson")])
    assert board.pick("din", "GetPerson").failure is FaultKind.HTTP_503
    assert board.pick("vergiler", "GetPerson") is NO_FAULT
    assert board.pick("din", "GetDocument") is NO_FAULT
    assert board.pick("din", None) is NO_FAULT  # an unreadable request has no operation
    anywhere = FaultBoard([rule()])
    assert anywhere.pick("vergiler", None).failure is FaultKind.HTTP_503


def test_latency_combines_with_one_failure_and_failures_do_not_stack() -> None:
    board = FaultBoard([rule("latency", latency_ms=100, jitter_ms=50), rule("latency", latency_ms=900),
                        rule("truncated"), rule("http_500")], rng=random.Random(1))
    decision = board.pick("din", "GetPerson")
    assert decision.failure is FaultKind.TRUNCATED
    assert 0.1 <= decision.delay_s <= 0.15
    assert decision.label == "latency+truncated"
    first_latency, second_latency, truncated, http_500 = board.rules()
    assert (first_latency.fired, second_latency.matched, truncated.fired, http_500.matched) == (1, 0, 1, 0)


def test_a_later_rule_takes_over_when_an_earlier_one_is_spent() -> None:
    board = FaultBoard([rule("empty", first=1), rule("http_500")])
    assert [board.pick("din", "GetPerson").failure for _ in range(3)] == [
        FaultKind.EMPTY, FaultKind.HTTP_500, FaultKind.HTTP_500]


def test_latency_alone() -> None:
    decision = FaultBoard([rule("latency", latency_ms=250)]).pick("din", "GetPerson")
    assert decision.failure is None and decision.delay_s == 0.25 and decision.label == "latency"


def test_add_remove_reset() -> None:
    board = FaultBoard()
    one = board.add(rule())
    two, three = board.add([rule("empty"), rule("hang")])
    assert len({r.id for r in (*one, two, three)}) == 3
    assert board.remove(two.id) and not board.remove(two.id)
    assert [r.kind for r in board.rules()] == [FaultKind.HTTP_503, FaultKind.HANG]
    board.reset()
    assert not board.active and board.rules() == []
    assert board.pick("din", "GetPerson") is NO_FAULT
    assert board.add(rule())[0].id not in {one[0].id, two.id, three.id}  # ids are never reused


def test_added_rules_get_fresh_ids_and_counts() -> None:
    board = FaultBoard()
    added, = board.add(rule(id="mine", fired=7, matched=9))
    assert added.id != "mine" and added.fired == 0 and added.matched == 0


def test_a_board_restricted_to_the_simulated_sources_refuses_others() -> None:
    board = FaultBoard(known=KNOWN)
    with pytest.raises(InvalidFaults) as bad:
        board.add([rule(system="din"), rule(system="nope")])
    assert bad.value.errors[0]["field"] == "1.system"
    assert board.rules() == []  # all or nothing
    with pytest.raises(InvalidFaults) as bad_op:
        board.add(rule(system="din", operation="GetTaxpayer"))
    assert bad_op.value.errors[0]["field"] == "operation"
    assert board.add(rule(operation="GetTaxpayer"))  # offered by some source


@pytest.mark.parametrize(("data", "field"), [
    ({"kind": "explode"}, "kind"),
    ({"kind": "http_503", "probability": 1.5}, "probability"),
    ({"kind": "http_503", "first": 0}, "first"),
    ({"kind": "hang", "latency_ms": 100}, "latency_ms"),
    ({"kind": "latency", "latency_ms": -1}, "latency_ms"),
    ({"kind": "http_503", "sytem": "din"}, "sytem"),
    ({}, "kind"),
    ([{"kind": "empty"}, {"kind": "latency", "jitter_ms": "lots"}], "1.jitter_ms"),
    ("http_503", "rule"),
])
def test_invalid_rules_name_the_bad_field(data: Any, field: str) -> None:
    with pytest.raises(InvalidFaults) as bad:
        parse_rules(data)
    assert bad.value.errors[0]["field"] == field
    assert field in str(bad.value)


# --- the admin API --------------------------------------------------------------------------------


async def test_admin_add_list_delete_reset(http: httpx.AsyncClient, app: Starlette) -> None:
    assert (await http.get("/_admin/faults")).json() == {"faults": []}

    one = await http.post("/_admin/faults", json={"kind": "http_503", "system": "din", "first": 2})
    assert one.status_code == 201
    created, = one.json()["faults"]
    assert created["id"] and created["kind"] == "http_503" and created["fired"] == 0

    many = await http.post("/_admin/faults", json=[{"kind": "latency", "latency_ms": 5}, {"kind": "empty"}])
    assert many.status_code == 201
    assert [r["kind"] for r in many.json()["faults"]] == ["latency", "empty"]

    listed = (await http.get("/_admin/faults")).json()["faults"]
    assert [r["id"] for r in listed] == [created["id"], *(r["id"] for r in many.json()["faults"])]
    assert app.state.faults.active

    assert (await http.delete(f"/_admin/faults/{created['id']}")).status_code == 204
    missing = await http.delete(f"/_admin/faults/{created['id']}")
    assert missing.status_code == 404 and created["id"] in missing.json()["error"]
    assert len((await http.get("/_admin/faults")).json()["faults"]) == 2

    assert (await http.delete("/_admin/faults")).status_code == 204
    assert (await http.get("/_admin/faults")).json() == {"faults": []}
    assert not app.state.faults.active


async def test_admin_lists_fire_counts(http: httpx.AsyncClient, signed_request: BuildRequest) -> None:
    await http.post("/_admin/faults", json={"kind": "http_500", "first": 1})
    for _ in range(3):
        await http.post("/din", content=etree.tostring(signed_request()))
    listed, = (await http.get("/_admin/faults")).json()["faults"]
    assert listed["fired"] == 1 and listed["matched"] == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "nonsense"}, "kind"),
    ([{"kind": "empty"}, {"kind": "empty", "probability": -0.5}], "1.probability"),
    ({"kind": "empty", "system": "atlantis"}, "system"),
    ({"kind": "empty", "operation": "GetWeather"}, "operation"),
])
async def test_admin_refuses_a_bad_rule_naming_the_field(http: httpx.AsyncClient, body: Any, field: str) -> None:
    response = await http.post("/_admin/faults", json=body)
    assert response.status_code == 400
    problem = response.json()
    assert problem["field"] == field and field in problem["error"]
    assert (await http.get("/_admin/faults")).json() == {"faults": []}  # nothing half-added


async def test_admin_refuses_a_body_that_is_not_json(http: httpx.AsyncClient) -> None:
    response = await http.post("/_admin/faults", content=b"kind=hang")
    assert response.status_code == 400 and response.json()["field"] == "body"


# --- what each fault does, and the journal --------------------------------------------------------


async def post_signed(http: httpx.AsyncClient, signed_request: BuildRequest) -> httpx.Response:
    return await http.post("/din", content=etree.tostring(signed_request()),
                           headers={"Content-Type": "text/xml; charset=utf-8"})


async def test_journal_shows_the_fault_next_to_what_was_received(
    http: httpx.AsyncClient, app: Starlette, signed_request: BuildRequest
) -> None:
    await post_signed(http, signed_request)
    await http.post("/_admin/faults", json={"kind": "http_503", "system": "din"})
    response = await post_signed(http, signed_request)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert b"503 Service Temporarily Unavailable" in response.content
    entries = (await http.get("/_admin/journal")).json()["entries"]
    assert [e["fault"] for e in entries] == [None, "http_503"]
    faulted = entries[1]
    assert faulted["outcome"] == "ok" and faulted["operation"] == "GetPerson" and faulted["signature_ok"]
    assert faulted["subject"] == "5G*****"


async def test_a_rejected_request_still_gets_operation_less_faults(
    http: httpx.AsyncClient, app: Starlette, unsigned_request: BuildRequest
) -> None:
    await http.post("/_admin/faults", json=[{"kind": "http_500", "operation": "GetPerson"}, {"kind": "empty"}])
    response = await http.post("/din", content=etree.tostring(unsigned_request()))
    assert response.status_code == 200 and response.content == b""
    entry = app.state.journal.entries()[-1]
    assert entry.outcome == "rejected" and entry.fault == "empty"


async def test_soap_fault_is_a_signed_server_fault_echoing_the_request(
    http: httpx.AsyncClient, pki: Pki, signed_request: BuildRequest
) -> None:
    await http.post("/_admin/faults", json={"kind": "soap_fault"})
    request = signed_request()
    response = await http.post("/din", content=etree.tostring(request))
    assert response.status_code == 500
    envelope = EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer="din").envelope
    assert envelope.findtext(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault/faultcode") == "soap:Server"
    sent_id = request.findtext(".//{http://x-road.eu/xsd/xroad.xsd}id")
    assert envelope.findtext(".//{http://x-road.eu/xsd/xroad.xsd}id") == sent_id
    assert envelope.findtext(".//{http://x-road.eu/xsd/xroad.xsd}requestHash")


@pytest.mark.parametrize("kind", ["malformed", "truncated", "empty"])
async def test_broken_transfers_are_not_well_formed(
    http: httpx.AsyncClient, signed_request: BuildRequest, kind: str
) -> None:
    await http.post("/_admin/faults", json={"kind": kind})
    response = await post_signed(http, signed_request)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)
    if kind == "truncated":
        await http.delete("/_admin/faults")
        whole = await post_signed(http, signed_request)
        assert abs(len(response.content) * 2 - len(whole.content)) <= 2  # cut in half
        assert whole.content.startswith(response.content[:200])


@pytest.mark.parametrize(("kind", "why"), [
    ("bad_signature", "Digest mismatch"),
    ("wrong_signer", "not signed by din"),
    ("expired_cert", "expired on"),
    ("unsigned", "unsigned"),
])
async def test_signature_faults_do_not_verify_as_the_source(
    http: httpx.AsyncClient, pki: Pki, signed_request: BuildRequest, kind: str, why: str
) -> None:
    await http.post("/_admin/faults", json={"kind": kind})
    response = await post_signed(http, signed_request)
    assert response.status_code == 200
    with pytest.raises(SignatureInvalid, match=why):
        EnvelopeVerifier(pki.ca_file).verify(response.content, expected_signer="din")
    if kind == "wrong_signer":  # a genuine signature, by another source of the PKI
        other = other_identity(pki, "din").name
        assert f"CN={other}," in EnvelopeVerifier(pki.ca_file).verify(response.content, other).signer
    if kind == "expired_cert":  # the right name, issued by the PKI's CA, but expired
        der = etree.fromstring(response.content).findtext(f".//{{{DS_NS}}}X509Certificate")
        cert = x509.load_der_x509_certificate(base64.b64decode(der))
        assert cert.subject == pki.identity("din").cert.subject
        assert cert.issuer == pki.identity("din").cert.issuer
        assert cert.not_valid_after_utc < dt.datetime.now(dt.UTC)


async def test_reset_in_process_is_an_httpx_transport_error(
    http: httpx.AsyncClient, app: Starlette, signed_request: BuildRequest
) -> None:
    await http.post("/_admin/faults", json={"kind": "reset"})
    with pytest.raises(httpx.ReadError) as raised:
        await post_signed(http, signed_request)
    assert isinstance(raised.value, ConnectionReset)
    assert app.state.journal.entries()[-1].fault == "reset"


async def test_hang_in_process_waits_until_the_client_gives_up(
    http: httpx.AsyncClient, app: Starlette, signed_request: BuildRequest
) -> None:
    await http.post("/_admin/faults", json={"kind": "hang"})
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(post_signed(http, signed_request), 0.3)
    assert app.state.journal.entries()[-1].fault == "hang"


# --- start-up: create_app, serve, files -----------------------------------------------------------


async def test_create_app_starts_with_rules_and_a_seeded_rng(pki: Pki, signed_request: BuildRequest) -> None:
    app = create_app(pki, faults=[rule("http_500", probability=0.5)], rng=random.Random(3))
    expected = random.Random(3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as http:
        codes = [(await post_signed(http, signed_request)).status_code for _ in range(20)]
    assert codes == [500 if expected.random() < 0.5 else 200 for _ in range(20)]
    assert 0 < codes.count(500) < 20


def test_create_app_refuses_rules_for_sources_it_does_not_simulate(pki: Pki) -> None:
    with pytest.raises(InvalidFaults, match="system"):
        create_app(pki, faults=[rule(system="atlantis")])


def test_create_app_shares_a_given_board(pki: Pki) -> None:
    board = FaultBoard([rule()])
    assert create_app(pki, faults=board).state.faults is board


def test_serve_passes_the_rules_and_a_resettable_protocol(monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    from ehis.simulators import serve

    serve("127.0.0.1", 8701, pki, faults=[rule("hang", system="din")])
    (app, options), = calls
    assert [r.kind for r in app.state.faults.rules()] == [FaultKind.HANG]
    assert callable(options["http"])


TOML = """
[[fault]]
kind = "http_503"
system = "din"
first = 3

[[fault]]
kind = "latency"
latency_ms = 200
jitter_ms = 50
probability = 0.5
"""


def test_load_faults_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(TOML)
    first, second = load_faults(path)
    assert first.kind is FaultKind.HTTP_503 and first.system == "din" and first.first == 3
    assert second.kind is FaultKind.LATENCY and second.latency_ms == 200 and second.probability == 0.5


def test_load_faults_from_json_including_a_saved_listing(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"kind": "reset", "operation": "GetPerson"}, {"kind": "unsigned"}]))
    assert [r.kind for r in load_faults(path)] == [FaultKind.RESET, FaultKind.UNSIGNED]
    board = FaultBoard([rule("empty", first=2)])
    path.write_text(json.dumps({"faults": [r.model_dump(mode="json") for r in board.rules()]}))
    loaded, = load_faults(path)
    assert loaded.kind is FaultKind.EMPTY and loaded.first == 2


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.toml", '[[fault]]\nkind = "teleport"\n', "0.kind"),
    ("bad.toml", '[[faults]]\nkind = "hang"\n', "faults: unknown table"),
    ("bad.toml", "[[fault]\nkind=", "not valid TOML"),
    ("bad.json", '{"kind": "hang"}', "list of rules"),
    ("bad.json", "[{", "not valid JSON"),
    ("bad.json", '[{"kind": "hang", "probability": 2}]', "0.probability"),
    ("faults.yaml", "- kind: hang", ".toml or .json"),
])
def test_load_faults_says_what_is_wrong_and_where(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidFaults) as bad:
        load_faults(path)
    assert message in str(bad.value) and str(path) in str(bad.value)
