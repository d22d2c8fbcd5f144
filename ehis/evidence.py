"""What proves where an answer came from: kept in the reply's meta, the cache and the exchange log."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Evidence(BaseModel):
    """One verified, signed source answer (data or a business fault such as not found)."""

    model_config = ConfigDict(frozen=True)

    signer: str  # subject (RFC 4514) of the certificate that verified the signature
    digest: str  # hex SHA-256 of the signed bytes
    fetched_at: datetime
    message_id: str  # the X-Road id of the request the answer is bound to
    endpoint: str | None = None  # the provider that answered, for sources with several (kb, yih)
    # the verified answer's bytes as the source sent them, in memory only: the source-call path
    # keeps them (full evidence) and drops them; never serialised into a reply or a cache entry
    signed: bytes | None = Field(None, exclude=True, repr=False)

    def without_bytes(self) -> Evidence:
        return self if self.signed is None else self.model_copy(update={"signed": None})
