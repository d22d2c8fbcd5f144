"""The shape limits of `parse_untrusted`, in every encoding: the namespace count's shortcut
(the bytes hold few `xmlns`) must never let a document through that the full walk refuses."""

from __future__ import annotations

import pytest

from ehis.security.xml import Limits, UnsafeXml, check_shape, parse_untrusted

LIMITS = Limits(max_depth=8, max_elements=50, max_attributes=4, max_namespaces=3, max_total_attributes=20)


def declaring(count: int) -> str:
    return "<r " + " ".join(f'xmlns:n{i}="urn:n{i}"' for i in range(count)) + "/>"


def encoded(text: str, encoding: str) -> bytes:
    return f'<?xml version="1.0" encoding="{encoding}"?>{text}'.encode(encoding)


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16", "UTF-32", "ISO-8859-1"])
@pytest.mark.parametrize(("text", "why"), [
    (declaring(4), "declares more than 3 namespaces"),
    ("<a>" * 9 + "</a>" * 9, "nested deeper than 8"),
    ("<r>" + "<e/>" * 50 + "</r>", "more than 50 elements"),
    ('<r a="1" b="2" c="3" d="4" e="5"/>', "has 5 attributes"),
    ("<r>" + '<e a="1" b="2" c="3"/>' * 7 + "</r>", "more than 20 attributes"),
])
def test_a_document_over_a_limit_is_refused_in_every_encoding(encoding: str, text: str, why: str) -> None:
    with pytest.raises(UnsafeXml, match=why):
        parse_untrusted(encoded(text, encoding), LIMITS)


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16"])
def test_a_document_at_every_limit_is_read(encoding: str) -> None:
    text = ('<r xmlns:a="urn:a" xmlns:b="urn:b" xmlns:c="urn:c" k="1" l="2" m="3" n="4">'
            + "<a>" * 7 + "</a>" * 7 + "</r>")
    assert parse_untrusted(encoded(text, encoding), LIMITS).get("k") == "1"


def test_the_shortcut_is_taken_only_when_the_bytes_say_few_namespaces() -> None:
    """Namespaces declared on nested elements, each within the limit, many in all: the full walk
    runs (the bytes hold more than 3 `xmlns`) and reads the document."""
    text = "".join(f'<e{i} xmlns:p{i}="urn:{i}">' for i in range(6)) + "".join(f"</e{i}>" for i in reversed(range(6)))
    root = parse_untrusted(text.encode(), LIMITS)
    check_shape(root, LIMITS)  # the full walk agrees
    with pytest.raises(UnsafeXml, match="declares more than"):  # the root's own declarations count
        check_shape(parse_untrusted(declaring(3).encode(), LIMITS), Limits(max_namespaces=2))
