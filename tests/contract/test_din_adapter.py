"""The generic SOAP adapter against the din simulator, in process (httpx.ASGITransport)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from lxml import etree
from zeep.plugins import HistoryPlugin

from ehis.adapters.soap import CallContext, SoapAdapter
from ehis.catalogue import system
from ehis.errors import (
    DeadlineExceeded,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    SourceFault,
    SourceTimeout,
    SourceUnavailable,
)
from ehis.mapping.din import to_person
from ehis.security.signing import DS_NS, SOAP_NS, EnvelopeSigner, EnvelopeVerifier
from ehis.simulators import create_app

CTX = CallContext(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118", deadline_s=5)


class Rewriting(httpx.AsyncBaseTransport):
    """Passes requests to `inner` and lets a test rewrite the response: a man in the middle."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rewrite: Callable[[httpx.Response, bytes], httpx.Response]):
        self.inner, self.rewrite = inner, rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        return self.rewrite(response, body)


def unsigned(body: bytes) -> etree._Element:
    """The answer with its signature taken out, for a test to alter or re-sign."""
    doc = etree.fromstring(body)
    doc.find(f"{{{SOAP_NS}}}Header").remove(doc.find(f"{{{SOAP_NS}}}Header/{{{DS_NS}}}Signature"))
    return doc


def make_adapter(pki, transport: httpx.AsyncBaseTransport, **kw) -> tuple[SoapAdapter, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=transport)
    adapter = SoapAdapter(
        system("din"),
        endpoint="http://sim/din",
        http=http,
        signer=EnvelopeSigner(pki.operator()),
        verifier=EnvelopeVerifier(pki.ca_file),
        **kw,
    )
    return adapter, http


@pytest.fixture
def sim_app(pki):
    return create_app(pki)


@pytest.fixture
def asgi(sim_app):
    return httpx.ASGITransport(app=sim_app)


async def test_person_comes_back_verified_and_mapped(pki, asgi, sim_app):
    history = HistoryPlugin()
    adapter, http = make_adapter(pki, asgi, plugins=[history])
    async with http:
        answer = await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)
    person = to_person(answer.body)
    assert person.fin == "5GXM4DZ"
    assert person.sex in ("male", "female")
    assert person.address.district_code.startswith("AZ-")
    assert "CN=din" in answer.signer
    assert len(answer.evidence_digest) == 64
    sent = history.last_sent["envelope"]
    assert sent.find(f"{{{SOAP_NS}}}Header/{{{DS_NS}}}Signature") is not None  # signed by the operator
    assert sent.findtext(".//{http://x-road.eu/xsd/xroad.xsd}userId") == "AZ0000001"
    assert sent.findtext(".//{http://x-road.eu/xsd/xroad.xsd}issue") == "contract 2025/118"
    assert sent.findtext(".//{http://x-road.eu/xsd/xroad.xsd}id") == answer.message_id
    entry = sim_app.state.journal.entries()[-1]
    assert entry.outcome == "ok" and entry.message_id == answer.message_id


async def test_same_fin_gives_the_same_person(pki, asgi):
    adapter, http = make_adapter(pki, asgi)
    async with http:
        a = await adapter.call("GetPerson", {"fin": "7ABC123"}, CTX)
        b = await adapter.call("GetPerson", {"fin": "7ABC123"}, CTX)
    assert to_person(a.body) == to_person(b.body)


async def test_not_found_and_invalid_fin_are_distinct_typed_errors(pki, asgi):
    adapter, http = make_adapter(pki, asgi)
    async with http:
        with pytest.raises(NotFound) as nf:
            await adapter.call("GetPerson", {"fin": "0AB12CD"}, CTX)
        with pytest.raises(InvalidInput) as inv:
            await adapter.call("GetPerson", {"fin": "BAD"}, CTX)
    assert nf.value.source == "din" and not nf.value.retryable
    assert inv.value.code == "invalid_input"


def _replace(old: bytes, new: bytes):
    def rewrite(response: httpx.Response, body: bytes) -> httpx.Response:
        assert old in body, "the test's rewrite must really change the answer"
        return httpx.Response(response.status_code, headers=response.headers, content=body.replace(old, new, 1))

    return rewrite


async def test_tampered_response_is_rejected(pki, asgi):
    adapter, http = make_adapter(pki, Rewriting(asgi, _replace(b">5GXM4DZ</", b">5GXM4DA</")))
    async with http:
        with pytest.raises(SignatureInvalid):
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)


async def test_response_signed_by_another_source_is_rejected(pki, asgi):
    other = EnvelopeSigner(pki.identity("vergiler"))

    def resign(response: httpx.Response, body: bytes) -> httpx.Response:
        doc = unsigned(body)
        return httpx.Response(response.status_code, headers=response.headers, content=etree.tostring(other.sign(doc)))

    adapter, http = make_adapter(pki, Rewriting(asgi, resign))
    async with http:
        with pytest.raises(SignatureInvalid):
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)


async def test_unsigned_response_is_rejected(pki, asgi):
    def strip(response: httpx.Response, body: bytes) -> httpx.Response:
        doc = unsigned(body)
        return httpx.Response(response.status_code, headers=response.headers, content=etree.tostring(doc))

    adapter, http = make_adapter(pki, Rewriting(asgi, strip))
    async with http:
        with pytest.raises(SignatureInvalid):
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)


async def test_a_genuine_answer_to_another_request_is_rejected(pki, asgi):
    """Replay: a validly signed answer, but to an earlier request (wrong id and request hash)."""
    adapter, http = make_adapter(pki, asgi)
    async with http:
        captured = {}

        def keep(response: httpx.Response, body: bytes) -> httpx.Response:
            captured.setdefault("body", body)
            return httpx.Response(response.status_code, headers=response.headers, content=captured["body"])

        adapter2, http2 = make_adapter(pki, Rewriting(asgi, keep))
        async with http2:
            await adapter2.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)
            with pytest.raises(SignatureInvalid, match="echo|hash"):
                await adapter2.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)


async def test_http_500_without_soap_is_unavailable_and_retryable(pki):
    adapter, http = make_adapter(pki, httpx.MockTransport(lambda r: httpx.Response(500, text="Internal Server Error")))
    async with http:
        with pytest.raises(SourceUnavailable) as exc:
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)
    assert exc.value.retryable
    assert "5GXM4DZ" not in str(exc.value)


async def test_garbage_with_200_is_a_source_fault(pki):
    adapter, http = make_adapter(pki, httpx.MockTransport(lambda r: httpx.Response(200, text="<html>oops")))
    async with http:
        with pytest.raises(SourceFault):
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)


async def test_answer_not_matching_the_contract_is_a_source_fault(pki, asgi):
    """Correctly signed by din, but the person lacks fields the XSD requires."""
    din = EnvelopeSigner(pki.identity("din"))

    def drop_field(response: httpx.Response, body: bytes) -> httpx.Response:
        doc = unsigned(body)
        person = doc.find(f"{{{SOAP_NS}}}Body")[0][0]
        person.remove(person[1])
        return httpx.Response(response.status_code, headers=response.headers, content=etree.tostring(din.sign(doc)))

    adapter, http = make_adapter(pki, Rewriting(asgi, drop_field))
    async with http:
        with pytest.raises(SourceFault, match="contract"):
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)


async def test_slow_source_times_out_within_the_budget(pki):
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    adapter, http = make_adapter(pki, httpx.MockTransport(slow), timeout=0.2)
    async with http:
        started = asyncio.get_running_loop().time()
        with pytest.raises(SourceTimeout):
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)
        assert asyncio.get_running_loop().time() - started < 1.0


async def test_no_call_once_the_deadline_has_passed(pki):
    calls = []
    adapter, http = make_adapter(pki, httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(500)))
    async with http:
        with pytest.raises(DeadlineExceeded):
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CallContext(subsystem="x", deadline_s=-0.1))
    assert calls == []


async def test_unreachable_source_is_unavailable(pki):
    http = httpx.AsyncClient()
    adapter = SoapAdapter(system("din"), endpoint="http://127.0.0.1:9/din", http=http,
                          signer=EnvelopeSigner(pki.operator()), verifier=EnvelopeVerifier(pki.ca_file))
    async with http:
        with pytest.raises(SourceUnavailable):
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CTX)


async def test_a_request_the_source_refuses_is_the_callers_to_fix(pki, asgi):
    """A Client fault (here: no official named) is invalid input: not retried, not the source failing."""
    adapter, http = make_adapter(pki, asgi)
    async with http:
        with pytest.raises(InvalidInput) as refused:
            await adapter.call("GetPerson", {"fin": "5GXM4DZ"}, CallContext(subsystem="emek-muqavilesi", user=""))
    assert "din refused the request" in refused.value.message and not refused.value.retryable
