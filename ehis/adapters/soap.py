"""The one generic SOAP adapter: zeep's async client over httpx, with signed requests.

Per call: the operator signs the request (egress plugin); the response's signature is checked
against the CA with the called source as the only acceptable signer, and from then on only the
signed content is used (ingress plugin); the echoed headers and the request hash prove the
response answers this very request; the body is validated against the system's XSD. Every
failure ends as one of the typed errors in ehis.errors.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import zeep
import zeep.exceptions
from lxml import etree
from zeep.plugins import Plugin
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from ehis.catalogue import System
from ehis.contracts import wsdl_path, xsd_path
from ehis.contracts.xroad import ECHOED, MessageHeaders, header_text, identifier
from ehis.errors import (
    DeadlineExceeded,
    EhisError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)
from ehis.security.signing import SOAP_NS, EnvelopeSigner, EnvelopeVerifier, message_hash

ZEEP_SETTINGS = zeep.Settings(
    strict=True,
    xml_huge_tree=False,
    forbid_dtd=True,
    forbid_entities=True,
    forbid_external=True,
)

# Fault detail element local names -> the typed error they mean; shared by every contract.
BUSINESS_FAULTS: dict[str, type[EhisError]] = {
    "PersonNotFound": NotFound,
    "NotFound": NotFound,
    "InvalidFin": InvalidInput,
    "InvalidInput": InvalidInput,
}


@dataclass(frozen=True)
class CallContext:
    """Who asks, on whose behalf and why; goes into the X-Road headers."""

    subsystem: str
    user: str = ""
    purpose: str = ""
    deadline_s: float | None = None  # seconds left of the caller's deadline


@dataclass(frozen=True)
class SourceAnswer:
    body: Any  # zeep's deserialized response body
    signer: str
    evidence_digest: str
    message_id: str
    fetched_at: datetime


@dataclass
class _Exchange:
    """Per-call state the plugins share, carried in a context variable (calls run concurrently)."""

    headers: MessageHeaders
    request_hash: str | None = None
    signer: str | None = None
    digest: str | None = None
    errors: list[EhisError] = field(default_factory=list)


_current: contextvars.ContextVar[_Exchange] = contextvars.ContextVar("ehis_soap_exchange")


class SignaturePlugin(Plugin):
    """Signs what goes out and verifies what comes in; first in zeep's plugin list."""

    def __init__(self, system: str, signer: EnvelopeSigner, verifier: EnvelopeVerifier, schema: etree.XMLSchema):
        self.system = system
        self.signer = signer
        self.verifier = verifier
        self.schema = schema

    def egress(self, envelope: etree._Element, http_headers: dict, operation: Any, binding_options: Any):
        exchange = _current.get()
        signed = self.signer.sign(envelope)
        exchange.request_hash = message_hash(signed)
        return signed, http_headers

    def ingress(self, envelope: etree._Element, http_headers: dict, operation: Any):
        exchange = _current.get()
        verified = self.verifier.verify(envelope, expected_signer=self.system)
        exchange.signer, exchange.digest = verified.signer, verified.digest
        signed = verified.envelope
        body = signed.find(f"{{{SOAP_NS}}}Body")
        payload = body[0] if body is not None and len(body) else None
        is_fault = payload is not None and payload.tag == f"{{{SOAP_NS}}}Fault"
        self._check_echo(signed, exchange, required=not is_fault)
        if payload is not None and not is_fault and not self.schema.validate(payload):
            error = self.schema.error_log.last_error
            raise SourceFault(f"answer does not match the contract: {error.message if error else 'invalid'}",
                              source=self.system)
        return signed, http_headers

    def _check_echo(self, envelope: etree._Element, exchange: _Exchange, *, required: bool) -> None:
        """The response must echo our headers and hash our request, or it answers something else."""
        header = envelope.find(f"{{{SOAP_NS}}}Header")
        if header_text(header, "id") is None and not required:
            return  # a fault about a request the source could not read carries no echo
        sent = exchange.headers.as_soapheaders()
        for name in ECHOED:
            if header_text(header, name) != (sent[name] or ""):
                raise SignatureInvalid(f"the signed answer does not echo header {name!r}", source=self.system)
        for name in ("client", "service"):
            got = identifier(header, name)
            want = {k: v for k, v in sent[name].items() if k != "objectType"}
            if got != want:
                raise SignatureInvalid(f"the signed answer does not echo header {name!r}", source=self.system)
        if header_text(header, "requestHash") != exchange.request_hash:
            raise SignatureInvalid("the signed answer carries another request's hash", source=self.system)


class SoapAdapter:
    """A source system's SOAP service as typed async calls. Build once per process."""

    def __init__(
        self,
        system: System,
        *,
        endpoint: str,
        http: httpx.AsyncClient,
        signer: EnvelopeSigner,
        verifier: EnvelopeVerifier,
        timeout: float = 5.0,
        plugins: list[Plugin] | None = None,
    ):
        self.system = system.code
        self.endpoint = endpoint
        self.timeout = timeout
        schema = etree.XMLSchema(etree.parse(str(xsd_path(system.code))))
        self.signature = SignaturePlugin(system.code, signer, verifier, schema)
        with httpx.Client() as wsdl_client:  # the WSDL is package data: parsed once, here
            transport = AsyncTransport(client=http, wsdl_client=wsdl_client)
            self.client = zeep.AsyncClient(
                str(wsdl_path(system.code)),
                transport=transport,
                settings=ZEEP_SETTINGS,
                plugins=[self.signature, *(plugins or [])],
            )
        binding = next(iter(next(iter(self.client.wsdl.services.values())).ports.values())).binding
        self.service = AsyncServiceProxy(self.client, binding, address=endpoint)

    async def call(self, operation: str, params: dict[str, Any], context: CallContext) -> SourceAnswer:
        budget = self.timeout if context.deadline_s is None else min(self.timeout, context.deadline_s)
        if budget <= 0:
            raise DeadlineExceeded("the caller's deadline passed before the source was called", source=self.system)
        headers = MessageHeaders(
            id=str(uuid.uuid4()),
            client_subsystem=context.subsystem,
            system=self.system,
            operation=operation,
            user_id=context.user,
            issue=context.purpose,
        )
        exchange = _Exchange(headers)
        token = _current.set(exchange)
        try:
            async with asyncio.timeout(budget):
                result = await getattr(self.service, operation)(**params, _soapheaders=headers.as_soapheaders())
        except EhisError as exc:
            if exc.source is None:  # raised by the verifier, which does not know which source it checked
                exc.source = self.system
            raise
        except TimeoutError:
            raise SourceTimeout(f"{self.system} did not answer within {budget:.1f} s", source=self.system) from None
        except zeep.exceptions.Fault as fault:
            raise self._fault_error(fault) from None
        except zeep.exceptions.TransportError as exc:
            raise self._transport_error(exc.status_code) from None
        except httpx.TimeoutException:
            raise SourceTimeout(f"{self.system} did not answer in time", source=self.system) from None
        except (httpx.HTTPError, OSError) as exc:  # refused, reset, closed mid-answer: the source is not there
            raise SourceUnavailable(f"{self.system} cannot be reached: {type(exc).__name__}", source=self.system) from None
        except (zeep.exceptions.Error, etree.LxmlError, ValueError) as exc:
            raise SourceFault(f"{self.system} sent an unreadable answer: {type(exc).__name__}", source=self.system) from None
        finally:
            _current.reset(token)
        if exchange.signer is None or exchange.digest is None:
            raise SignatureInvalid("the answer was not verified", source=self.system)
        body = result["body"] if "body" in result else result
        return SourceAnswer(body, exchange.signer, exchange.digest, headers.id, datetime.now(UTC))

    def _fault_error(self, fault: zeep.exceptions.Fault) -> EhisError:
        detail = fault.detail
        for child in detail if detail is not None else ():
            kind = BUSINESS_FAULTS.get(etree.QName(child).localname)
            if kind is not None:
                return kind(fault.message or kind.__name__, source=self.system)
        if (fault.code or "").endswith("Client"):
            # the source refused this request (a missing official, a header it will not take): the
            # caller's to fix, not a sign the source is failing, so it neither retries nor trips the breaker
            return InvalidInput(f"{self.system} refused the request: {fault.message}", source=self.system)
        return SourceFault(f"{self.system} answered with a fault: {fault.message}", source=self.system,
                           retryable=True)

    def _transport_error(self, status: int | None) -> EhisError:
        """An HTTP answer that is not a SOAP message: the source is down, or the transfer broke."""
        if status is not None and (status >= 500 or status in (408, 429)):
            return SourceUnavailable(f"{self.system} answered HTTP {status}", source=self.system)
        if status is not None and 200 <= status < 300:  # empty, cut off or garbled: worth one more try
            return SourceFault(f"{self.system} answered HTTP {status} with an unreadable SOAP message",
                               source=self.system, retryable=True)
        return SourceFault(f"{self.system} answered HTTP {status} with no readable SOAP message", source=self.system)
