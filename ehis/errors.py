"""The typed errors every layer raises and the stable codes the bus carries to callers.

A code is part of the public contract: callers branch on it, the exchange log stores it and
the CLI prints it. Add codes; never rename one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ehis.evidence import Evidence


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"  # the envelope itself is malformed
    INVALID_INPUT = "invalid_input"  # the parameters are wrong (said by the hub or the source)
    UNKNOWN_SERVICE = "unknown_service"  # no such service in the catalogue
    NOT_SERVED = "not_served"  # in the statute, but this hub does not serve it (not built, or not configured)
    FORBIDDEN = "forbidden"  # the caller may not ask this service
    NOT_FOUND = "not_found"  # the source answered: no such record
    SIGNATURE_INVALID = "signature_invalid"  # the answer is unsigned, tampered or signed by someone else
    SOURCE_FAULT = "source_fault"  # the source answered with a fault or with something unreadable
    TIMEOUT = "timeout"  # the source did not answer in time
    UNAVAILABLE = "unavailable"  # the source, or any worker serving it, cannot be reached
    DEADLINE_EXCEEDED = "deadline_exceeded"  # the caller's deadline passed before an answer
    INTERNAL = "internal"  # a defect in the hub; the exchange log has the request id


class EhisError(Exception):
    """Base of every error that ends in an error reply.

    `retryable` tells the caller whether the same request may succeed later; `source` names the
    source system when the error came from (or concerns) one.
    """

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, source: str | None = None, retryable: bool | None = None,
                 evidence: Evidence | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.evidence = evidence  # the signed answer that said so (a source's business fault)
        if retryable is not None:
            self.retryable = retryable  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, source={self.source!r})"


class BadRequest(EhisError):
    code = ErrorCode.BAD_REQUEST


class InvalidInput(EhisError):
    code = ErrorCode.INVALID_INPUT


class UnknownService(EhisError):
    code = ErrorCode.UNKNOWN_SERVICE


class NotServed(EhisError):
    code = ErrorCode.NOT_SERVED


class Forbidden(EhisError):
    code = ErrorCode.FORBIDDEN


class NotFound(EhisError):
    code = ErrorCode.NOT_FOUND


class SignatureInvalid(EhisError):
    code = ErrorCode.SIGNATURE_INVALID


class SourceFault(EhisError):
    code = ErrorCode.SOURCE_FAULT


class SourceTimeout(EhisError):
    code = ErrorCode.TIMEOUT
    retryable = True


class SourceUnavailable(EhisError):
    code = ErrorCode.UNAVAILABLE
    retryable = True


class DeadlineExceeded(EhisError):
    code = ErrorCode.DEADLINE_EXCEEDED
    retryable = True


class InternalError(EhisError):
    code = ErrorCode.INTERNAL


#: A source failing: what an operator's error rate of that source counts.
SOURCE_FAILURES = frozenset({ErrorCode.SIGNATURE_INVALID, ErrorCode.SOURCE_FAULT, ErrorCode.TIMEOUT,
                             ErrorCode.UNAVAILABLE})
#: What the caller sent or asked, or a signed "no such record": never held against a source.
CALLER_ERRORS = frozenset({ErrorCode.BAD_REQUEST, ErrorCode.INVALID_INPUT, ErrorCode.UNKNOWN_SERVICE,
                           ErrorCode.NOT_SERVED, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND})
# the rest, deadline_exceeded (the caller's deadline, or a slow source) and internal (the hub), is neither

ERRORS_BY_CODE: dict[ErrorCode, type[EhisError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        InvalidInput,
        UnknownService,
        NotServed,
        Forbidden,
        NotFound,
        SignatureInvalid,
        SourceFault,
        SourceTimeout,
        SourceUnavailable,
        DeadlineExceeded,
        InternalError,
    )
}


def error_for(code: str, message: str, *, source: str | None = None, retryable: bool | None = None,
              evidence: Evidence | None = None) -> EhisError:
    """Rebuild the typed error a reply describes; an unknown code (a newer hub) becomes internal."""
    try:
        cls = ERRORS_BY_CODE[ErrorCode(code)]
    except ValueError:
        cls = InternalError
    return cls(message, source=source, retryable=retryable, evidence=evidence)
