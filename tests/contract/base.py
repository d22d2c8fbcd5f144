"""The contract every built source meets, run for each one (tests/contract/test_sources.py).

A subclass provides the `where` fixture (source code, endpoint name); every case then runs
against that endpoint's simulator
(in process, through httpx.ASGITransport) with the hub's real adapter: its contract loads in an
independent SOAP toolkit, its answers validate against its XSD and map into the canonical
model, "not found" and malformed input are signed typed answers, every fault kind of the
simulators ends in its typed error, and hostile answers are refused.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import xmlschema
import zeep
from lxml import etree

from ehis.adapters.resilience import SourceGuard
from ehis.config import SourcePolicy
from ehis.contracts import xroad
from ehis.errors import (
    EhisError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)
from ehis.security.pki import Pki
from ehis.security.signing import DS_NS, EnvelopeSigner
from ehis.simulators import FaultKind, create_app
from ehis.simulators.faults import parse_rules
from ehis.sources import source
from ehis.sources.spec import Service, Source
from tests.contract.support import (
    CALLER,
    Rewriting,
    example,
    make_adapter,
    params,
    replaced,
    unsigned,
)

SHORT = 0.3  # the adapter's budget where a fault is about time

# kind, extra rule fields, budget, expected error, code, retryable
FAULT_CASES: list[tuple[FaultKind, dict[str, Any], float, type[EhisError], str, bool]] = [
    (FaultKind.LATENCY, {"latency_ms": 2000}, SHORT, SourceTimeout, "timeout", True),
    (FaultKind.HANG, {}, SHORT, SourceTimeout, "timeout", True),
    (FaultKind.HTTP_500, {}, 5, SourceUnavailable, "unavailable", True),
    (FaultKind.HTTP_503, {}, 5, SourceUnavailable, "unavailable", True),
    (FaultKind.RESET, {}, 5, SourceUnavailable, "unavailable", True),
    (FaultKind.SOAP_FAULT, {}, 5, SourceFault, "source_fault", True),
    (FaultKind.MALFORMED, {}, 5, SourceFault, "source_fault", True),
    (FaultKind.TRUNCATED, {}, 5, SourceFault, "source_fault", True),
    (FaultKind.EMPTY, {}, 5, SourceFault, "source_fault", True),
    (FaultKind.BAD_SIGNATURE, {}, 5, SignatureInvalid, "signature_invalid", False),
    (FaultKind.WRONG_SIGNER, {}, 5, SignatureInvalid, "signature_invalid", False),
    (FaultKind.EXPIRED_CERT, {}, 5, SignatureInvalid, "signature_invalid", False),
    (FaultKind.REVOKED_CERT, {}, 5, SignatureInvalid, "signature_invalid", False),
    (FaultKind.UNSIGNED, {}, 5, SignatureInvalid, "signature_invalid", False),
]


def applies(predicate: Callable[[Source], bool]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a case as meaningful only for sources `predicate` accepts: the subclass's
    `pytest_generate_tests` generates it for those only (never a skip, never an empty pass)."""
    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        test.applies = predicate  # type: ignore[attr-defined]
        return test
    return mark


def _payload(body: bytes) -> etree._Element:
    return etree.fromstring(body).find(xroad.BODY)[0]


def _resign(pki: Pki, name: str, doc: etree._Element) -> bytes:
    return xroad.serialize(EnvelopeSigner(pki.identity(name)).sign(doc))


class SourceContract:
    @pytest.fixture
    def where(self) -> tuple[str, str]:
        raise NotImplementedError("a SourceContract subclass provides (source code, endpoint name)")

    @pytest.fixture
    def code(self, where: tuple[str, str]) -> str:
        return where[0]

    @pytest.fixture
    def endpoint(self, where: tuple[str, str]) -> str:
        return where[1]

    @pytest.fixture
    def spec(self, code: str) -> Source:
        return source(code)

    @pytest.fixture
    def app(self, pki: Pki):
        return create_app(pki)

    @pytest.fixture
    def asgi(self, app) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=app)

    async def _call(self, pki: Pki, where: tuple[str, str], transport: httpx.AsyncBaseTransport, service: Service,
                    values: dict[str, Any] | None = None, budget: float = 5.0):
        """One attempt through the adapter behind its guard (which holds it to `budget`), as the hub calls."""
        code, name = where
        adapter, http = make_adapter(pki, code, transport, name=name)
        guard = SourceGuard(name, SourcePolicy(attempts=1, read_timeout=budget), system=code)
        chosen = params(service, values if values is not None else example(code, name, service))
        async with http:
            return await guard.run(lambda b: adapter.call(service, chosen, CALLER, b), budget + 1)

    # -- the contract files ------------------------------------------------------------------

    def test_contract_loads_in_independent_toolkits(self, spec: Source) -> None:
        """zeep reads the WSDL (and what it imports) and xmlschema the XSD; every service's
        operation is in the binding, wrapped in document/literal style."""
        client = zeep.Client(str(spec.wsdl))
        operations = {name: op for service in client.wsdl.services.values() for port in service.ports.values()
                      for name, op in port.binding._operations.items()}
        xmlschema.XMLSchema(str(spec.xsd))
        for service in spec.services:
            assert service.operation in operations, f"{service.operation} is not in {spec.wsdl.name}"
            body = operations[service.operation].input.body
            assert body.qname == spec.codec.qname(service.operation)
        assert "requestHash" not in spec.wsdl.read_text(), "requestHash is not described in a service's WSDL"

    # -- answers -----------------------------------------------------------------------------

    async def test_example_answers_are_verified_valid_and_mapped(self, pki: Pki, where: tuple[str, str],
                                                                 endpoint: str, spec: Source, asgi) -> None:
        schema = etree.XMLSchema(etree.parse(str(spec.xsd)))
        for service in spec.services:
            seen = Rewriting(asgi, lambda response, body: replaced(response, body))
            answer = await self._call(pki, where, seen, service)
            service.mapper(answer.body)  # maps (a multi-provider service's model is the merge of these)
            if service.handler is None:
                assert isinstance(service.mapper(answer.body), service.model)
            assert f"CN={endpoint}," in answer.evidence.signer
            assert len(answer.evidence.digest) == 64 and answer.evidence.message_id
            raw = await (await asgi.handle_async_request(httpx.Request(
                "POST", f"http://sim/{endpoint}", content=seen.requests[-1]))).aread()
            assert schema.validate(_payload(raw)), schema.error_log.last_error  # libxml2 alone, no codec

    @applies(lambda spec: any(s.missing is not None for s in spec.services))
    async def test_missing_record_is_a_signed_not_found_with_evidence(self, pki: Pki, where: tuple[str, str],
                                                                      code: str, endpoint: str, spec: Source,
                                                                      asgi) -> None:
        for service in spec.services:
            if service.missing is None:
                continue
            with pytest.raises(NotFound) as raised:
                await self._call(pki, where, asgi, service, dict(service.missing))
            assert raised.value.source == code and not raised.value.retryable
            assert raised.value.evidence is not None and f"CN={endpoint}," in raised.value.evidence.signer

    @applies(lambda spec: any(s.subject for s in spec.services))
    async def test_the_source_refuses_a_malformed_subject(self, pki: Pki, code: str, endpoint: str, spec: Source,
                                                          asgi) -> None:
        """What the hub validates the source checks again, and says so with a signed typed fault."""
        for service in spec.services:
            if service.subject is None:
                continue
            good = params(service, example(code, endpoint, service))
            bad = good.model_copy(update={service.subject: "no-such-identifier!"})
            adapter, http = make_adapter(pki, code, asgi, name=endpoint)
            async with http:
                with pytest.raises(InvalidInput) as raised:
                    await adapter.call(service, bad, CALLER, 5)
            assert raised.value.evidence is not None

    # -- faults on demand --------------------------------------------------------------------

    def test_every_fault_kind_is_covered(self) -> None:
        assert {case[0] for case in FAULT_CASES} == set(FaultKind)

    @pytest.mark.parametrize(("kind", "extra", "budget", "error", "code_", "retryable"), FAULT_CASES,
                             ids=[c[0] for c in FAULT_CASES])
    async def test_fault_ends_in_its_typed_error(self, pki: Pki, where: tuple[str, str], code: str, endpoint: str,
                                                 spec: Source, app, asgi, kind: FaultKind, extra: dict[str, Any],
                                                 budget: float, error: type[EhisError], code_: str,
                                                 retryable: bool) -> None:
        service = spec.services[0]
        app.state.simulator.prepare(app.state.faults.add(parse_rules({"kind": kind, "system": endpoint, **extra})))
        started = time.monotonic()
        with pytest.raises(EhisError) as raised:
            await self._call(pki, where, asgi, service, budget=budget)
        assert type(raised.value) is error, repr(raised.value)
        assert raised.value.code == code_ and raised.value.retryable is retryable
        assert raised.value.source == code
        assert time.monotonic() - started < budget + 1.0
        entry = app.state.journal.entries(endpoint)[-1]
        assert entry.fault == kind.value and entry.operation == service.operation

    # -- hostile answers ---------------------------------------------------------------------

    async def _hostile(self, pki: Pki, where: tuple[str, str], spec: Source, asgi, rewrite) -> EhisError:
        with pytest.raises(EhisError) as raised:
            await self._call(pki, where, Rewriting(asgi, rewrite), spec.services[0])
        return raised.value

    async def test_tampered_answer_is_refused(self, pki: Pki, where: tuple[str, str], spec: Source, asgi) -> None:
        def tamper(response: httpx.Response, body: bytes) -> httpx.Response:
            doc = etree.fromstring(body)
            leaf = next(e for e in doc.find(xroad.BODY).iter() if e.text and e.text.strip() and len(e) == 0)
            leaf.text = leaf.text + "x"
            return replaced(response, xroad.serialize(doc))

        assert isinstance(await self._hostile(pki, where, spec, asgi, tamper), SignatureInvalid)

    async def test_answer_signed_by_another_party_is_refused(self, pki: Pki, where: tuple[str, str], spec: Source,
                                                             asgi) -> None:
        def resign(response: httpx.Response, body: bytes) -> httpx.Response:
            return replaced(response, _resign(pki, "meis-operator", unsigned(body)))

        assert isinstance(await self._hostile(pki, where, spec, asgi, resign), SignatureInvalid)

    async def test_unsigned_answer_is_refused(self, pki: Pki, where: tuple[str, str], spec: Source, asgi) -> None:
        def strip(response: httpx.Response, body: bytes) -> httpx.Response:
            return replaced(response, xroad.serialize(unsigned(body)))

        assert isinstance(await self._hostile(pki, where, spec, asgi, strip), SignatureInvalid)

    async def test_a_genuine_answer_to_another_request_is_refused(self, pki: Pki, code: str, endpoint: str,
                                                                  spec: Source, asgi) -> None:
        earlier: list[bytes] = []

        def replay(response: httpx.Response, body: bytes) -> httpx.Response:
            if not earlier:
                earlier.append(body)
                return replaced(response, body)
            return replaced(response, earlier[0])

        adapter, http = make_adapter(pki, code, Rewriting(asgi, replay), name=endpoint)
        service = spec.services[0]
        chosen = params(service, example(code, endpoint, service))
        async with http:
            await adapter.call(service, chosen, CALLER, 5)
            with pytest.raises(SignatureInvalid, match="another request"):
                await adapter.call(service, chosen, CALLER, 5)

    async def test_signer_is_the_certificate_that_verified(self, pki: Pki, where: tuple[str, str], endpoint: str,
                                                           spec: Source, asgi) -> None:
        """Another system's certificate placed first in KeyInfo is not reported as the signer."""
        other = next(p.stem for p in pki.directory.glob("*.pem") if p.stem not in (endpoint, "ca", "meis-operator"))

        def decoy(response: httpx.Response, body: bytes) -> httpx.Response:
            doc = etree.fromstring(body)
            data = doc.find(f".//{{{DS_NS}}}X509Data")
            fake = etree.Element(f"{{{DS_NS}}}X509Certificate")
            pem = (pki.directory / f"{other}.pem").read_text()
            fake.text = "".join(pem.strip().splitlines()[1:-1])
            data.insert(0, fake)
            return replaced(response, xroad.serialize(doc))

        answer = await self._call(pki, where, Rewriting(asgi, decoy), spec.services[0])
        assert f"CN={endpoint}," in answer.evidence.signer and f"CN={other}," not in answer.evidence.signer

    @pytest.mark.parametrize("shape", ["second payload", "empty body", "reordered headers", "dropped header",
                                       "no request hash", "unbound fault"])
    async def test_signed_answers_of_the_wrong_shape_are_refused(self, pki: Pki, where: tuple[str, str],
                                                                 endpoint: str, spec: Source, asgi,
                                                                 shape: str) -> None:
        """Signed by the right source's key, but not an answer to this request as the contract says."""

        def reshape(response: httpx.Response, body: bytes) -> httpx.Response:
            doc = unsigned(body)
            header, soap_body = doc.find(xroad.HEADER), doc.find(xroad.BODY)
            if shape == "second payload":
                soap_body.append(etree.fromstring(etree.tostring(soap_body[0])))
            elif shape == "empty body":
                soap_body.remove(soap_body[0])
            elif shape == "reordered headers":
                first = header[0]
                header.remove(first)
                header.insert(1, first)
            elif shape == "dropped header":
                header.remove(header.find(xroad.xrd("protocolVersion")))
            elif shape == "no request hash":
                header.remove(header.find(xroad.REQUEST_HASH))
            elif shape == "unbound fault":
                for element in list(header):
                    header.remove(element)
                soap_body.remove(soap_body[0])
                fault = etree.SubElement(soap_body, xroad.FAULT)
                etree.SubElement(fault, "faultcode").text = "soap:Client"
                etree.SubElement(fault, "faultstring").text = "replayed refusal"
            return replaced(response, _resign(pki, endpoint, doc))

        error = await self._hostile(pki, where, spec, asgi, reshape)
        expected = SourceFault if shape in ("second payload", "empty body") else SignatureInvalid
        assert isinstance(error, expected), repr(error)

    async def test_an_empty_signature_value_is_a_signature_error(self, pki: Pki, where: tuple[str, str],
                                                                 spec: Source, asgi) -> None:
        def empty(response: httpx.Response, body: bytes) -> httpx.Response:
            doc = etree.fromstring(body)
            doc.find(f".//{{{DS_NS}}}SignatureValue").text = ""
            return replaced(response, xroad.serialize(doc))

        assert isinstance(await self._hostile(pki, where, spec, asgi, empty), SignatureInvalid)

    @applies(lambda spec: spec.services[0].answer_subject is not None)
    async def test_a_signed_answer_about_another_subject_is_refused(self, pki: Pki, where: tuple[str, str],
                                                                   endpoint: str, spec: Source, asgi) -> None:
        """Signed by the right source and bound to the request, but about someone else."""
        service = spec.services[0]
        assert service.missing and service.subject, f"{service.name} names its subject: it gives a `missing` example"

        def another(response: httpx.Response, body: bytes) -> httpx.Response:
            doc = unsigned(body)
            node = doc.find(xroad.BODY)[0]
            for key in service.answer_subject or ():
                node = node.find(spec.codec.qname(key))
            node.text = str(service.missing[service.subject])  # well formed, and another subject
            return replaced(response, _resign(pki, endpoint, doc))

        assert isinstance(await self._hostile(pki, where, spec, asgi, another), SignatureInvalid)

    @pytest.mark.parametrize("shape", ["too large", "gzip bomb", "dtd in utf-16", "technical fault", "html page",
                                       "multipart without boundary", "multipart with a broken boundary"])
    async def test_unreadable_answers_end_typed_and_bounded(self, pki: Pki, where: tuple[str, str], spec: Source,
                                                            asgi, shape: str) -> None:
        def hostile(response: httpx.Response, body: bytes) -> httpx.Response:
            if shape == "too large":
                return replaced(response, body + b" " * (3 * 1024 * 1024))
            if shape == "gzip bomb":
                return replaced(response, gzip.compress(b"<a>" + b" " * (50 * 1024 * 1024) + b"</a>"),
                                **{"content-encoding": "gzip"})
            if shape == "dtd in utf-16":
                return replaced(response, '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "e">]>'
                                '<x>&e;</x>'.encode("utf-16"))
            if shape == "technical fault":  # PR-MESS Annex D.1: a security server's fault, unsigned
                return httpx.Response(500, headers={"content-type": "text/xml"}, content=TECHNICAL_FAULT)
            if shape.startswith("multipart"):
                media = "multipart/related" + ("" if "without" in shape else '; boundary="nowhere"')
                return replaced(response, b"--elsewhere\r\n\r\n" + body, **{"content-type": media})
            return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>login</html>")

        error = await self._hostile(pki, where, spec, asgi, hostile)
        assert isinstance(error, SourceFault), repr(error)
        assert error.retryable is (shape in ("dtd in utf-16", "technical fault", "html page") or
                                   shape.startswith("multipart"))


TECHNICAL_FAULT = b"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
    <SOAP-ENV:Body>
        <SOAP-ENV:Fault>
            <faultcode>Server.ClientProxy.ServiceFailed.MissingBody</faultcode>
            <faultstring>Malformed SOAP message: body missing</faultstring>
            <faultactor></faultactor>
            <detail>
                <faultDetail xmlns="">f31e7451-f0ac-48f6-9f05-1f0459e48eea</faultDetail>
            </detail>
        </SOAP-ENV:Fault>
    </SOAP-ENV:Body>
</SOAP-ENV:Envelope>"""
