"""What every composite answer says about its parts: each part's state and evidence."""

from __future__ import annotations

from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import BaseModel

from ehis.mapping.models import Canonical

T = TypeVar("T", bound=BaseModel)


class PartState(StrEnum):
    OK = "ok"  # the source answered with data
    NOT_FOUND = "not_found"  # the source answered, signed, that it holds no record
    FAILED = "failed"  # no answer: error_code says why (unavailable, timeout, forbidden, ...)


class Part(Canonical):
    """One source call of a composite: the service asked, how it ended, and its evidence."""

    service: str
    state: PartState
    error_code: str | None = None
    message: str | None = None
    cache: str | None = None
    signed_by: str | None = None
    evidence: str | None = None  # digest of the signed answer (the exchange log keeps the same)
    endpoint: str | None = None  # the provider, for sources with several


class Fact(Canonical, Generic[T]):
    """One fact of a composite answer: the part it came from and, when it answered, its data."""

    part: Part
    data: T | None = None


class Refusal(Canonical):
    """A field the hub cannot fill, refused at once with the reason (employment rules §8.2)."""

    field: str
    reason: str
