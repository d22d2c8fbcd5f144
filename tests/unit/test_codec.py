"""The codec compiled from each contract's XSD: what it decodes agrees with xmlschema's own
reading, what it encodes validates, and its plans are cached by the content of the schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import xmlschema
from lxml import etree

from ehis.contracts import xroad
from ehis.contracts.codec import Codec, ContractViolation, UnsupportedSchema
from ehis.sources import sources
from tests.contract.support import (
    CALLER,
    Rewriting,
    endpoints,
    example,
    make_adapter,
    params,
    replaced,
)


def test_decode_types_lists_and_absent_optionals(tmp_path: Path) -> None:
    codec = sources()["din"].codec
    element = codec.encode("GetPersonResponse", {"person": {
        "fin": "5GXM4DZ", "surname": "A", "name": "B", "patronymic": "C", "birthDate": date(1980, 1, 2),
        "sex": "M", "citizenship": "AZE",
        "document": {"type": "ID_CARD", "series": "AA", "number": "1", "issueDate": date(2020, 1, 1),
                     "issuingBody": "DİN"},
        "registeredAddress": {"text": "x", "districtCode": "AZ-BA", "districtName": "Bakı"}}})
    codec.validate(element)
    decoded = codec.decode(element)["person"]
    assert decoded["birthDate"] == date(1980, 1, 2) and decoded["document"]["expiryDate"] is None
    assert decoded["deathDate"] is None


def test_encode_refuses_unknown_and_missing_fields() -> None:
    codec = sources()["din"].codec
    with pytest.raises(ContractViolation, match="no field"):
        codec.encode("GetPerson", {"fin": "5GXM4DZ", "extra": 1})
    with pytest.raises(ContractViolation, match="required"):
        codec.encode("GetPerson", {})


@pytest.mark.parametrize("construct", [
    '<xs:choice><xs:element name="a" type="xs:string"/><xs:element name="b" type="xs:string"/></xs:choice>',
    '<xs:sequence><xs:any namespace="##any"/></xs:sequence>',
])
def test_constructs_outside_the_subset_are_refused_at_load(tmp_path: Path, construct: str) -> None:
    xsd = tmp_path / "odd.xsd"
    xsd.write_text(f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:odd" '
                   f'elementFormDefault="qualified"><xs:element name="M"><xs:complexType>{construct}'
                   f'</xs:complexType></xs:element></xs:schema>')
    with pytest.raises(UnsupportedSchema):
        Codec(xsd, cache=tmp_path / "cache")


def _normalised(value: object) -> object:
    """xmlschema's decoding (keys with prefixes, values as it types them) next to the codec's."""
    if isinstance(value, dict):  # absent optionals: None or [] in the codec, left out by xmlschema
        kept = {k.split(":")[-1]: _normalised(v) for k, v in value.items()
                if not k.startswith("@") and v is not None and v != []}
        return kept["$"] if set(kept) == {"$"} else kept  # a text value xmlschema wraps beside namespace attributes
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, Decimal | date | int | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return value


@pytest.mark.parametrize(("code", "endpoint"), endpoints(), ids=[n for _, n in endpoints()])
async def test_the_codec_reads_every_answer_as_xmlschema_does(pki, code: str, endpoint: str) -> None:
    """An independent reading of the same XSD: xmlschema's decode of each simulated example answer."""
    from ehis.simulators import create_app

    spec = sources()[code]
    service = spec.services[0]
    seen: list[bytes] = []

    def keep(response: httpx.Response, body: bytes) -> httpx.Response:
        seen.append(body)
        return replaced(response, body)

    adapter, http = make_adapter(pki, code, Rewriting(httpx.ASGITransport(app=create_app(pki)), keep), name=endpoint)
    async with http:
        answer = await adapter.call(service, params(service, example(code, endpoint, service)), CALLER, 5)
    payload = etree.fromstring(seen[0]).find(xroad.BODY)[0]
    theirs = xmlschema.XMLSchema(str(spec.xsd)).decode(payload)
    assert _normalised(answer.body) == _normalised(theirs)


def test_plans_are_cached_by_content_and_a_warm_start_needs_no_xmlschema(tmp_path: Path) -> None:
    xsd = sources()["din"].xsd
    copy = tmp_path / "contract"
    shutil.copytree(xsd.parent.parent.parent, copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    mine = copy / "sources" / "din" / "din.xsd"
    cache = tmp_path / "cache"
    cold = Codec(mine, cache=cache)
    assert len(list(cache.glob("*.json"))) == 1
    probe = ("import sys; from pathlib import Path; from ehis.contracts.codec import Codec; "
             f"Codec(Path({str(mine)!r}), cache=Path({str(cache)!r})); print('xmlschema' in sys.modules)")
    warm = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert warm.stdout.strip() == "False"
    mine.write_text(mine.read_text().replace('name="deathDate"', 'name="dateOfDeath"'))
    changed = Codec(mine, cache=cache)
    assert len(list(cache.glob("*.json"))) == 2  # a changed schema file misses the cache
    assert changed._plans != cold._plans
