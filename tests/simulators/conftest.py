"""Fixtures for the simulator tests: the app in process, and requests built independently of the
hub (zeep, from the source's WSDL) for a built source of the registry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from functools import cache
from typing import Any

import httpx
import pytest
import zeep
from lxml import etree
from starlette.applications import Starlette

from ehis.security.pki import Identity, Pki
from ehis.security.signing import EnvelopeSigner
from ehis.simulators import create_app
from ehis.sources import sources
from ehis.sources.spec import Service, Source

BuildRequest = Callable[..., etree._Element]


@pytest.fixture(scope="session")
def spec() -> Source:
    """A built source (the provider's rules are the same for all; the contract base covers each)."""
    return next(iter(sources().values()))


@pytest.fixture(scope="session")
def service(spec: Source) -> Service:
    return spec.services[0]


@cache
def zeep_client(code: str) -> zeep.Client:
    """Parsed once per source: zeep's WSDL parsing is slow."""
    return zeep.Client(str(sources()[code].wsdl))


def soap_headers(spec: Source, service: Service, **overrides: Any) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "client": {"xRoadInstance": "AZ", "memberClass": "GOV", "memberCode": "EMSN",
                   "subsystemCode": "emek-muqavilesi", "objectType": "SUBSYSTEM"},
        "service": {"xRoadInstance": "AZ", "memberClass": "GOV", "memberCode": spec.code,
                    "serviceCode": service.operation, "serviceVersion": "v1", "objectType": "SERVICE"},
        "id": str(uuid.uuid4()),
        "userId": "AZ0000001",
        "issue": "employment contract notification 2025/118",
        "protocolVersion": "4.0",
    }
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


@pytest.fixture
def unsigned_request(spec: Source, service: Service) -> BuildRequest:
    """An unsigned request envelope built by zeep from the contract (`values` are the body's fields)."""

    def build(values: dict[str, Any] | None = None, **header_overrides: Any) -> etree._Element:
        body = service.request(service.params.model_validate(service.example)) if values is None else values
        client = zeep_client(spec.code)
        return client.create_message(client.service, service.operation, **body,
                                     _soapheaders=soap_headers(spec, service, **header_overrides))

    return build


@pytest.fixture
def signed_request(pki: Pki, unsigned_request: BuildRequest) -> BuildRequest:
    """A request envelope signed by the ministry's operator (or by `signer=`)."""
    operator = EnvelopeSigner(pki.operator())

    def build(values: dict[str, Any] | None = None, *, signer: Identity | None = None,
              **header_overrides: Any) -> etree._Element:
        return (EnvelopeSigner(signer) if signer else operator).sign(unsigned_request(values, **header_overrides))

    return build


@pytest.fixture
def app(pki: Pki) -> Starlette:
    return create_app(pki)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        yield client
