import pytest
from pydantic import BaseModel, ValidationError

from ehis.identifiers import (
    Fin,
    Ssn,
    Voen,
    mask,
    normalize_fin,
    normalize_voen,
    voen_is_legal_entity,
)


class Q(BaseModel):
    fin: Fin | None = None
    voen: Voen | None = None
    ssn: Ssn | None = None


@pytest.mark.parametrize("raw,expected", [("5gxm4dz", "5GXM4DZ"), ("  5GXM4DZ ", "5GXM4DZ"), ("0000001", "0000001")])
def test_fin_is_trimmed_and_upper_cased(raw, expected):
    assert normalize_fin(raw) == expected
    assert Q(fin=raw).fin == expected


@pytest.mark.parametrize("raw", ["5GXM4D", "5GXM4DZZ", "5GXM4DI", "5GXM4DO", "5GXM-DZ", "", "5ĞXM4DZ"])
def test_fin_rejects_wrong_length_and_letters_i_o(raw):
    with pytest.raises(ValidationError) as exc:
        Q(fin=raw)
    assert "7 characters" in str(exc.value)


def test_voen_last_digit_tells_legal_entity_from_natural_person():
    assert voen_is_legal_entity("1234567891")
    assert not voen_is_legal_entity("1234567892")
    for bad in ("1234567893", "123456789", "12345678901", "12345A7891"):
        with pytest.raises(ValidationError):
            Q(voen=bad)


def test_ssn_is_digits_only():
    assert Q(ssn=" 12345678901 ").ssn == "12345678901"
    with pytest.raises(ValidationError):
        Q(ssn="1234ABCD")


def test_mask_keeps_only_a_prefix():
    assert mask("5GXM4DZ") == "5G*****"


@pytest.mark.parametrize("value", ["5GXM4Dſ", "5gxm4dſ", "ı5GXM4D", "５GXM4DZ", "5GXM4D\u200bZ"])
def test_unicode_that_folds_to_ascii_never_becomes_a_fin(value: str) -> None:
    """ſ upper-cases to S and ı to I: checked as ASCII first, they cannot name another person."""
    with pytest.raises(ValueError):
        normalize_fin(value)


@pytest.mark.parametrize("value", ["١٢٣٤٥٦٧٨٩1", "12345678٩1", "１２３４５６７８９１"])
def test_non_ascii_digits_are_not_a_voen(value: str) -> None:
    with pytest.raises(ValueError):
        normalize_voen(value)
