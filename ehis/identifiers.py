"""Validated identifier types: FIN, VÖEN, SUN and SSN.

Each is a pydantic-compatible `Annotated[str, ...]`, so a params model that declares `fin: Fin`
trims, upper-cases and checks its input, and a bad value is an `invalid_input` error before
anything reaches a source.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

FIN_PATTERN = re.compile(r"[0-9A-HJ-NP-Z]{7}")
VOEN_PATTERN = re.compile(r"[0-9]{9}[12]")
SUN_PATTERN = re.compile(r"[0-9]{8,13}")
SSN_PATTERN = re.compile(r"[0-9]{8,13}")
FIN_RULE = "a FIN is 7 characters: digits and Latin capital letters except I and O"
VOEN_RULE = "a VÖEN is 10 digits, the last one 1 (legal entity) or 2 (natural person)"


def _ascii(value: str, rule: str) -> str:
    """`value` trimmed, if it is ASCII: checked before any case folding, because Unicode letters
    upper-case to ASCII ones (ſ -> S, ı -> I) and would turn an invalid identifier into another
    person's valid one."""
    trimmed = value.strip()
    if not trimmed.isascii():
        raise ValueError(rule)
    return trimmed


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def normalize_fin(value: str) -> str:
    """Trim and upper-case a FIN, then check it: 7 of digits and Latin capitals without I and O."""
    fin = _ascii(value, FIN_RULE).upper()
    if not FIN_PATTERN.fullmatch(fin):
        raise ValueError(FIN_RULE)
    return fin


def normalize_voen(value: str) -> str:
    """A VÖEN is 10 digits ending in 1 (legal entity) or 2 (natural person)."""
    voen = _ascii(value, VOEN_RULE)
    if not VOEN_PATTERN.fullmatch(voen):
        raise ValueError(VOEN_RULE)
    return voen


def _digits(name: str, pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if not value.isascii() or not pattern.fullmatch(value):
            raise ValueError(f"a {name} is a string of digits")
        return value

    return AfterValidator(check)


SUBJECT_RULE = ("a data subject is a FIN (7 characters: digits and Latin letters except I and O) "
                "or a VÖEN (10 digits, the last 1 or 2)")


def normalize_subject(value: str) -> str:
    """A data subject's identifier as the exchange log keeps it, however it was typed: a FIN
    trimmed and upper-cased (`5gxm4dz` -> `5GXM4DZ`), or a VÖEN; anything else is refused, so a
    search never silently finds nothing because of a typo or the case."""
    text = _ascii(value, SUBJECT_RULE)
    if VOEN_PATTERN.fullmatch(text):
        return text
    if FIN_PATTERN.fullmatch(text.upper()):
        return text.upper()
    raise ValueError(SUBJECT_RULE)


def voen_is_legal_entity(voen: str) -> bool:
    return normalize_voen(voen).endswith("1")


def mask(value: str, keep: int = 2) -> str:
    """Mask an identifier for application logs: `5GXM4DZ` -> `5G*****`."""
    return value[:keep] + "*" * max(len(value) - keep, 0)


Fin = Annotated[str, AfterValidator(normalize_fin)]
Voen = Annotated[str, AfterValidator(normalize_voen)]
Sun = Annotated[str, BeforeValidator(_strip), _digits("SUN", SUN_PATTERN)]
Ssn = Annotated[str, BeforeValidator(_strip), _digits("SSN", SSN_PATTERN)]
