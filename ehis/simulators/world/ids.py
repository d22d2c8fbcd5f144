"""Identifiers of the world: FIN <-> (unit, slot) through a keyed permutation, and seeds.

Every random choice in the world is drawn from a seed that is SHA-256 of the world's salt and a
key (never Python's per-process `hash()`), so the same FIN tells the same story in every process.
"""

from __future__ import annotations

import hashlib
import random
import re

ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
FIN_LENGTH = 7
FIN_SPACE = len(ALPHABET) ** FIN_LENGTH  # 52 523 350 144
SLOTS = 8
UNITS = FIN_SPACE // SLOTS  # 6 565 418 768 (34**7 is divisible by 8)
VOEN_FIRST = 100_000_000  # the 9-digit body of a VÖEN that does not start with 0
VOEN_BODIES = 900_000_000

_FIN_RE = re.compile(r"[0-9A-HJ-NP-Z]{7}")
_VOEN_RE = re.compile(r"[0-9]{9}[12]")
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_POWERS = tuple(len(ALPHABET) ** (FIN_LENGTH - 1 - i) for i in range(FIN_LENGTH))


def normalize_fin(fin: str) -> str:
    """Trim and upper-case (the catalogue's rule), then check; ValueError when malformed."""
    if not isinstance(fin, str):
        raise ValueError("a FIN is a string")  # noqa: TRY004 - pydantic reports a ValueError as invalid input
    value = fin.strip().upper()
    if not value.isascii() or not _FIN_RE.fullmatch(value):
        raise ValueError("a FIN is 7 characters: digits and Latin capital letters except I and O")
    return value


def normalize_voen(voen: str) -> str:
    """Trim and check a VÖEN: 10 digits, the last 1 (legal entity) or 2 (natural person)."""
    if not isinstance(voen, str):
        raise ValueError("a VÖEN is a string")  # noqa: TRY004 - pydantic reports a ValueError as invalid input
    value = voen.strip()
    if not value.isascii() or not _VOEN_RE.fullmatch(value):
        raise ValueError("a VÖEN is 10 digits, the last one 1 (legal entity) or 2 (natural person)")
    return value


def held(fin: str) -> bool:
    """The not-found rule kept from the first population: a FIN starting with 0 is nobody's."""
    return not fin.startswith("0")


def fin_to_index(fin: str) -> int:
    """A well-formed FIN as a number in [0, 34**7), first character most significant."""
    return sum(_VALUE[ch] * power for ch, power in zip(fin, _POWERS))


def index_to_fin(index: int) -> str:
    """Inverse of `fin_to_index`."""
    if not 0 <= index < FIN_SPACE:
        raise ValueError("index out of the FIN space")
    chars = []
    for power in _POWERS:
        digit, index = divmod(index, power)
        chars.append(ALPHABET[digit])
    return "".join(chars)


class Permutation:
    """A keyed bijection of range(size): a balanced Feistel network over the smallest even bit
    width that holds `size`, made to stay inside the range by cycle walking.

    Feistel rounds are invertible whatever the round function, so this is a permutation by
    construction; the round function only has to scramble. Cycle walking (re-apply until the
    value falls inside the range) keeps it a bijection of [0, size).
    """

    def __init__(self, size: int, key: bytes, rounds: int = 6) -> None:
        if size < 4:
            raise ValueError("a permutation needs at least 4 elements")
        bits = (size - 1).bit_length()
        bits += bits % 2
        self.size = size
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self._shift = 32 - self._half if self._half <= 32 else 0
        self._keys = tuple(
            int.from_bytes(hashlib.sha256(key + bytes([r])).digest()[:4], "big") for r in range(rounds)
        )

    def _round(self, value: int, key: int) -> int:
        h = ((value ^ key) * 0x9E3779B1) & 0xFFFFFFFF
        h ^= h >> 15
        h = (h * 0x85EBCA77) & 0xFFFFFFFF
        h ^= h >> 13
        return (h >> self._shift) & self._mask

    def _encrypt(self, value: int) -> int:
        left, right = value >> self._half, value & self._mask
        for key in self._keys:
            left, right = right, left ^ self._round(right, key)
        return (left << self._half) | right

    def _decrypt(self, value: int) -> int:
        left, right = value >> self._half, value & self._mask
        for key in reversed(self._keys):
            left, right = right ^ self._round(left, key), left
        return (left << self._half) | right

    def forward(self, value: int) -> int:
        if not 0 <= value < self.size:
            raise ValueError("value out of range")
        value = self._encrypt(value)
        while value >= self.size:
            value = self._encrypt(value)
        return value

    def inverse(self, value: int) -> int:
        if not 0 <= value < self.size:
            raise ValueError("value out of range")
        value = self._decrypt(value)
        while value >= self.size:
            value = self._decrypt(value)
        return value


def seed(salt: bytes, *parts: object) -> int:
    """A 64-bit seed: SHA-256 of the salt and the key parts (stable across processes)."""
    data = salt + "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def rng(salt: bytes, *parts: object) -> random.Random:
    """A private generator for one decision area of one subject (see `seed`)."""
    return random.Random(seed(salt, *parts))


def chance(salt: bytes, *parts: object) -> float:
    """One uniform draw in [0, 1) without building a generator (for cheap yes/no questions)."""
    return seed(salt, *parts) / 2.0**64
