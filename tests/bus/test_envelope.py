"""The JSON envelopes: what parses, what is refused and how, and what a reply raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ehis.bus.envelope import (
    MAX_ENVELOPE_BYTES,
    ErrorInfo,
    Meta,
    Reply,
    Request,
    Requester,
    parse_reply,
    parse_request,
    request_id_of,
)
from ehis.errors import (
    ERRORS_BY_CODE,
    BadRequest,
    DeadlineExceeded,
    EhisError,
    ErrorCode,
    InternalError,
    InvalidInput,
    NotFound,
    SourceUnavailable,
)

REQUESTER = Requester(subsystem="emek-muqavilesi", user="official-7", purpose="contract check")


def _doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "r-1",
        "service": "din.person",
        "params": {"fin": "5GXM4DZ"},
        "requester": {"subsystem": "emek-muqavilesi", "user": "official-7", "purpose": "check"},
        "deadline": (datetime.now(UTC) + timedelta(seconds=30)).isoformat(),
    }
    doc.update(changes)
    return doc


def _body(**changes: object) -> bytes:
    return json.dumps(_doc(**changes)).encode()


def test_round_trip() -> None:
    request = Request.new("din.person", {"fin": "5GXM4DZ"}, REQUESTER, 5.0, fresh=True)
    again = parse_request(request.to_bytes())
    assert again == request
    assert again.system == "din" and again.fresh


def test_design_example_parses() -> None:
    request = parse_request(_body())
    assert (request.id, request.service, request.requester.subsystem) == ("r-1", "din.person", "emek-muqavilesi")
    assert request.fresh is False


@pytest.mark.parametrize("body", [b"{not json", b"", b"[]", b'"text"', b"\xff\xfe"])
def test_bad_json_is_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match="malformed request"):
        parse_request(body)


@pytest.mark.parametrize("field", ["service", "requester", "deadline"])
def test_missing_field_is_named(field: str) -> None:
    doc = _doc()
    del doc[field]
    with pytest.raises(BadRequest, match=field):
        parse_request(json.dumps(doc).encode())


def test_extra_fields_are_rejected() -> None:
    with pytest.raises(BadRequest, match="smuggled"):
        parse_request(_body(smuggled=True))
    requester = {"subsystem": "x", "role": "admin"}
    with pytest.raises(BadRequest, match="role"):
        parse_request(_body(requester=requester))


def test_oversize_is_refused_before_parsing() -> None:
    body = _body(params={"blob": "x" * MAX_ENVELOPE_BYTES})
    with pytest.raises(BadRequest, match="limit"):
        parse_request(body)


def test_defects_are_described_without_their_values() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_request(_body(service="", requester={"subsystem": "5GXM4DZ" * 20}))
    assert "5GXM4DZ" not in caught.value.message


def test_remaining_counts_down_and_goes_negative() -> None:
    assert 4.5 < Request.new("din.person", {}, REQUESTER, 5.0).remaining() <= 5.0
    past = parse_request(_body(deadline=(datetime.now(UTC) - timedelta(seconds=2)).isoformat()))
    assert -2.5 < past.remaining() < -1.5


def test_naive_deadline_is_read_as_utc() -> None:
    naive = (datetime.now(UTC) + timedelta(seconds=10)).replace(tzinfo=None).isoformat()
    assert 9 < parse_request(_body(deadline=naive)).remaining() <= 10


def test_request_id_of_is_best_effort() -> None:
    assert request_id_of(b'{"id": "abc"}') == "abc"
    assert request_id_of(b'{"id": "' + b"x" * 100 + b'"}') == "x" * 64
    for body in (b"{not json", b"[1]", b'{"id": 5}', b"\xff"):
        assert request_id_of(body) == ""


def test_ok_reply_result_is_its_data() -> None:
    reply = Reply.ok("r-1", {"name": "x"}, Meta(system="din", cache="hit"))
    assert parse_reply(reply.to_bytes()).result() == {"name": "x"}


@pytest.mark.parametrize("cls", list(ERRORS_BY_CODE.values()))
def test_error_reply_raises_the_typed_error(cls: type[EhisError]) -> None:
    reply = parse_reply(Reply.failure("r-1", cls("went wrong", source="din")).to_bytes())
    with pytest.raises(cls) as caught:
        reply.result()
    assert caught.value.message == "went wrong" and caught.value.source == "din"
    assert caught.value.retryable == cls.retryable


def test_retryable_travels_with_the_reply() -> None:
    reply = Reply.failure("r-1", NotFound("gone", retryable=True))
    with pytest.raises(NotFound) as caught:
        parse_reply(reply.to_bytes()).result()
    assert caught.value.retryable is True
    assert Reply.failure("r", DeadlineExceeded("late")).error.retryable  # type: ignore[union-attr]
    assert Reply.failure("r", SourceUnavailable("down")).error.retryable  # type: ignore[union-attr]


def test_unknown_code_from_a_newer_hub_becomes_internal() -> None:
    reply = Reply(id="r-1", status="error", error=ErrorInfo(code="brand_new", message="?"))
    with pytest.raises(InternalError):
        reply.result()


def test_malformed_reply_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="malformed reply"):
        parse_reply(b'{"id": "r-1", "status": "maybe"}')
    assert ErrorCode.BAD_REQUEST == "bad_request"


# -- hostile callers: what a caller writes is refused at the envelope, typed ------------------------


@pytest.mark.parametrize(("where", "value"), [
    ("user", "official\u0000-7"), ("user", "tab\there"), ("purpose", "line\nbreak"), ("purpose", "bell\u0007"),
    ("purpose", "c1 control \u0085"), ("user", "not a character \ufffe"), ("purpose", "del \u007f"),
])
def test_control_characters_in_the_officials_text_are_invalid_input(where: str, value: str) -> None:
    """They would make building the source's XML fail, which must never be charged to the source."""
    doc = _doc()
    doc["requester"][where] = value  # type: ignore[index]
    with pytest.raises(InvalidInput) as raised:
        parse_request(json.dumps(doc).encode())
    assert f"requester.{where}" in raised.value.message and value not in raised.value.message


@pytest.mark.parametrize("params", [{"fin": {"nested": "x"}}, {"fin": ["5GXM4DZ"]}, {"fin": "x" * 300},
                                    {"fin": "5GXM4DZ\u0000"}, {f"k{n}": 1 for n in range(40)}])
def test_params_are_flat_bounded_safe_values(params: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        parse_request(json.dumps(_doc(params=params)).encode())


@pytest.mark.parametrize("field,value", [("service", "din person"), ("service", "din.person\u0000"),
                                         ("id", "has space"), ("id", "ünicode")])
def test_names_the_envelope_carries_are_printable_ascii(field: str, value: str) -> None:
    with pytest.raises(BadRequest):
        parse_request(json.dumps(_doc(**{field: value})).encode())


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"id": "deep-1", "params": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"])
def test_deeply_nested_json_is_a_bad_request_and_never_a_recursion_error(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_request(body)
    assert request_id_of(body) in ("", "deep-1")


def test_only_a_printable_id_is_echoed_from_a_malformed_request() -> None:
    assert request_id_of(b'{"id": "bad\\u0000id"}') == ""
    assert request_id_of(b'{"id": "ok-id"}') == "ok-id"
