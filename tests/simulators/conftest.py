"""Fixtures for the simulator tests: a test PKI, the app in process, and a request builder."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import zeep
from lxml import etree
from starlette.applications import Starlette

from ehis.contracts import wsdl_path
from ehis.security.pki import Identity, Pki
from ehis.security.signing import EnvelopeSigner
from ehis.simulators import create_app

BuildRequest = Callable[..., etree._Element]


@pytest.fixture(scope="session")
def din_client() -> zeep.Client:
    """Parsed once: zeep's WSDL parsing is slow."""
    return zeep.Client(str(wsdl_path("din")))


def soap_headers(**overrides: Any) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "client": {"xRoadInstance": "AZ", "memberClass": "GOV", "memberCode": "EMSN",
                   "subsystemCode": "emek-muqavilesi", "objectType": "SUBSYSTEM"},
        "service": {"xRoadInstance": "AZ", "memberClass": "GOV", "memberCode": "din",
                    "serviceCode": "GetPerson", "serviceVersion": "v1", "objectType": "SERVICE"},
        "id": str(uuid.uuid4()),
        "userId": "AZ0000001",
        "protocolVersion": "4.0",
        "issue": "employment contract notification 2025/118",
    }
    headers.update(overrides)
    return headers


@pytest.fixture
def unsigned_request(din_client: zeep.Client) -> BuildRequest:
    """An unsigned GetPerson envelope built by zeep from the contract."""

    def build(fin: str = "5GXM4DZ", **header_overrides: Any) -> etree._Element:
        return din_client.create_message(
            din_client.service, "GetPerson", fin=fin, _soapheaders=soap_headers(**header_overrides)
        )

    return build


@pytest.fixture
def signed_request(pki: Pki, unsigned_request: BuildRequest) -> BuildRequest:
    """A GetPerson envelope signed by the ministry's operator (or by `signer=`)."""
    operator = EnvelopeSigner(pki.operator())

    def build(fin: str = "5GXM4DZ", *, signer: Identity | None = None, **header_overrides: Any) -> etree._Element:
        envelope = unsigned_request(fin, **header_overrides)
        return (EnvelopeSigner(signer) if signer else operator).sign(envelope)

    return build


@pytest.fixture
def app(pki: Pki) -> Starlette:
    return create_app(pki)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        yield client
