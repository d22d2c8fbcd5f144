"""TLS on every hop the hub dials, on real sockets: HTTPS with mutual TLS to the sources (the
simulators under uvicorn with the test PKI's server certificate), amqps:// to the broker (through
a TLS-terminating proxy before the local RabbitMQ), and the CRL over HTTP from the simulators.
Every failure (no client certificate, one from another CA, a server from another CA) is a typed
error, never an answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ehis.adapters.soap import Caller, SoapAdapter
from ehis.bootstrap import source_client
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.bus.transport import open_transport
from ehis.bus.worker import Worker
from ehis.config import SourcePolicy, SourceSettings
from ehis.errors import SignatureInvalid, SourceUnavailable
from ehis.security.pki import CRL_PATH, TLS_CLIENT, TLS_SERVER, Pki, init_pki
from ehis.security.revocation import CrlSources, RevocationChecker, distribution_points
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.security.tls import TlsConfigError, broker_context, client_context
from ehis.security.trust import TrustStore
from ehis.simulators import create_app
from ehis.simulators.app import tls_options
from ehis.sources import source
from ehis.testing import free_port
from tests.bus.contract import scripted_dispatch
from tests.integration.servers import TlsProxy, server_context, serving

CALLER = Caller(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA of the same name, with its own TLS certificates: never to be trusted."""
    return init_pki(tmp_path_factory.mktemp("rogue") / "pki", {})


@pytest.fixture(scope="module")
def mtls_url(pki: Pki) -> Iterator[str]:
    """The simulators over HTTPS requiring a client certificate from the test CA."""
    port = free_port()
    with serving(create_app(pki), port, **tls_options(pki, require_client_cert=True)):
        yield f"https://127.0.0.1:{port}"


async def _ask(pki: Pki, url: str, tls, budget: float = 5.0):
    spec = source("din")
    service = spec.services[0]
    http = source_client(SourcePolicy(), tls=tls)
    adapter = SoapAdapter(spec, name="din", url=f"{url}/din", endpoint=SourceSettings(), http=http,
                          signer=EnvelopeSigner(pki.operator()), verifier=EnvelopeVerifier(pki.ca_file))
    async with http:
        return await adapter.call(service, service.params.model_validate(service.example), CALLER, budget)


# --- HTTPS to the sources ---------------------------------------------------------------------------


async def test_mutual_tls_with_the_operators_client_certificate(pki: Pki, mtls_url: str) -> None:
    answer = await _ask(pki, mtls_url, client_context(pki.ca_file, *pki.tls_files(TLS_CLIENT)))
    assert "CN=din," in answer.evidence.signer


async def test_without_a_client_certificate_the_source_is_unavailable(pki: Pki, mtls_url: str) -> None:
    with pytest.raises(SourceUnavailable) as raised:
        await _ask(pki, mtls_url, client_context(pki.ca_file))
    assert raised.value.code == "unavailable" and raised.value.retryable and raised.value.source == "din"


async def test_a_client_certificate_from_another_ca_is_refused(pki: Pki, rogue: Pki, mtls_url: str) -> None:
    with pytest.raises(SourceUnavailable):
        await _ask(pki, mtls_url, client_context(pki.ca_file, *rogue.tls_files(TLS_CLIENT)))


async def test_a_server_certificate_from_another_ca_is_refused(pki: Pki, rogue: Pki) -> None:
    port = free_port()
    with serving(create_app(pki), port, **tls_options(rogue)):  # the answers are genuine; the TLS is not
        with pytest.raises(SourceUnavailable, match="cannot be reached"):
            await _ask(pki, f"https://127.0.0.1:{port}", client_context(pki.ca_file, *pki.tls_files(TLS_CLIENT)))
        # and with the system's CAs (no tls_ca_file), the test CA is not trusted either
        with pytest.raises(SourceUnavailable):
            await _ask(pki, f"https://127.0.0.1:{port}", None)


async def test_plain_http_to_an_https_source_is_unavailable(pki: Pki, mtls_url: str) -> None:
    with pytest.raises(SourceUnavailable):
        await _ask(pki, mtls_url.replace("https://", "http://"), None)


async def test_the_hub_calls_https_sources_with_its_tls_settings(tmp_path: Path, pki: Pki, mtls_url: str) -> None:
    """The wiring from Settings: tls_ca_file and source_client_cert/key reach every source client."""
    from ehis.config import Settings
    from ehis.runtime import embedded_hub

    base = {"data_dir": tmp_path, "pki_dir": pki.directory, "broker_url": f"memory://{uuid.uuid4().hex}",
            "simulator_url": mtls_url, "admin_listen": "", "events_listen": "", "serve_sources": ["din"],
            "source_defaults": {"attempts": 1}, "tls_ca_file": pki.ca_file}
    cert, key = pki.tls_files(TLS_CLIENT)
    requester = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="contract 2025/118")
    async with embedded_hub(Settings(**base, source_client_cert=cert, source_client_key=key)) as hub:
        reply = await BusClient(hub.transport, requester=requester).request("din.person", {"fin": "5GXM4DZ"})
    assert reply.status == "ok", reply.error
    async with embedded_hub(Settings(**base)) as hub:  # no client certificate
        reply = await BusClient(hub.transport, requester=requester).request("din.person", {"fin": "5GXM4DZ"})
    assert reply.error is not None and reply.error.code == "unavailable"


def test_client_certificate_and_key_go_together() -> None:
    from pydantic import ValidationError

    from ehis.config import Settings

    with pytest.raises(ValidationError, match="go together"):
        Settings(source_client_cert="/x.pem")


def test_unreadable_tls_files_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError):
        client_context(tmp_path / "missing-ca.pem")


# --- the CRL from the simulators' distribution point -----------------------------------------------


def test_the_distribution_point_served_by_the_simulators(tmp_path: Path) -> None:
    """A PKI whose certificates name the simulators' /pki/ca.crl: with no CRL configured, the
    verifier fetches it there (a real socket), trusts the good signer and refuses the revoked one."""
    from ehis.security.pki import pki_parties
    from tests.unit.test_revocation import signed_by

    port = free_port()
    url = f"http://127.0.0.1:{port}{CRL_PATH}"
    pki = init_pki(tmp_path / "pki", pki_parties(), crl_url=url)
    assert distribution_points(pki.identity("din").cert) == [url]
    checker = RevocationChecker(None, crls=CrlSources())  # None: each certificate's own points
    verifier = EnvelopeVerifier(pki.ca_file, trust=TrustStore(pki.ca_file, revocation=checker))
    with serving(create_app(pki), port):
        assert httpx.get(url).headers["content-type"] == "application/pkix-crl"
        assert "CN=din" in verifier.verify(signed_by(pki.identity("din")), "din").signer
        with pytest.raises(SignatureInvalid, match=rf"revoked .*{port}/pki/ca\.crl"):
            verifier.verify(signed_by(pki.revoked_identity("din")), "din")


# --- amqps:// to the broker --------------------------------------------------------------------------


@pytest.fixture
async def namespace(rabbitmq_url: str) -> AsyncIterator[str]:
    from ehis.bus.amqp import delete_namespace

    name = f"ehis-test-tls-{uuid.uuid4().hex[:12]}"
    yield name
    await delete_namespace(rabbitmq_url, name)


def _broker(rabbitmq_url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(rabbitmq_url)
    return parts.hostname or "127.0.0.1", parts.port or 5672


def _amqps(rabbitmq_url: str, port: int, **query: str) -> str:
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(rabbitmq_url)
    netloc = f"{parts.username or 'guest'}:{parts.password or 'guest'}@localhost:{port}"
    return parts._replace(scheme="amqps", netloc=netloc, query=urlencode(query)).geturl()


@pytest.mark.rabbitmq
async def test_amqps_request_and_reply_through_a_verified_tls_hop(pki: Pki, rabbitmq_url: str,
                                                                   namespace: str) -> None:
    async with TlsProxy(server_context(*pki.tls_files(TLS_SERVER)), _broker(rabbitmq_url)) as proxy:
        url = _amqps(rabbitmq_url, proxy.port, cafile=str(pki.ca_file))
        async with open_transport(url, namespace=namespace) as serving_side, \
                open_transport(url, namespace=namespace) as calling_side:
            worker = Worker(serving_side, scripted_dispatch)
            await worker.serve("din", ["din.person"])
            try:
                client = BusClient(calling_side, requester=Requester(subsystem="tls-test", user="u", purpose="p"))
                reply = await client.request("din.person", {"fin": "5GXM4DZ"}, timeout=10)
            finally:
                await worker.stop()
        assert reply.status == "ok" and reply.data["params"] == {"fin": "5GXM4DZ"}
        assert proxy.connections == 2  # both connections went through TLS


@pytest.mark.rabbitmq
async def test_amqps_refuses_a_broker_certificate_from_another_ca(pki: Pki, rogue: Pki, rabbitmq_url: str,
                                                                   namespace: str) -> None:
    async with TlsProxy(server_context(*rogue.tls_files(TLS_SERVER)), _broker(rabbitmq_url)) as proxy:
        transport = open_transport(_amqps(rabbitmq_url, proxy.port, cafile=str(pki.ca_file)), namespace=namespace)
        with pytest.raises(Exception) as raised:
            await transport.connect()
        assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
        assert proxy.connections == 0  # the broker was never reached


@pytest.mark.rabbitmq
async def test_amqps_asked_not_to_verify_refuses_to_connect(pki: Pki, rogue: Pki, rabbitmq_url: str,
                                                            namespace: str) -> None:
    """aio-pika would obey `no_verify_ssl=1` and talk to anyone; the hub's transport does not."""
    async with TlsProxy(server_context(*rogue.tls_files(TLS_SERVER)), _broker(rabbitmq_url)) as proxy:
        transport = open_transport(_amqps(rabbitmq_url, proxy.port, no_verify_ssl="1"), namespace=namespace)
        with pytest.raises(TlsConfigError, match="always verifies"):
            await transport.connect()
        assert proxy.connections == 0


def test_amqps_never_skips_verification(pki: Pki) -> None:
    assert broker_context("amqp://guest:guest@127.0.0.1/") is None
    context = broker_context(f"amqps://u:p@localhost/?cafile={pki.ca_file}")
    assert context is not None and context.check_hostname
    with pytest.raises(TlsConfigError, match="always verifies"):
        broker_context(f"amqps://u:p@localhost/?cafile={pki.ca_file}&no_verify_ssl=1")


def test_tls_ca_file_reaches_an_amqps_broker_url(pki: Pki) -> None:
    from ehis.config import Settings

    settings = Settings(broker_url="amqps://u:p@broker.example/ehis", tls_ca_file=pki.ca_file)
    assert f"cafile={str(pki.ca_file).replace('/', '%2F')}" in settings.broker_url
    own = Settings(broker_url="amqps://u:p@broker.example/ehis?cafile=/etc/own.pem", tls_ca_file=pki.ca_file)
    assert own.broker_url == "amqps://u:p@broker.example/ehis?cafile=/etc/own.pem"  # its own CA wins
    plain = Settings(broker_url="amqp://u:p@broker.example/ehis", tls_ca_file=pki.ca_file)
    assert plain.broker_url == "amqp://u:p@broker.example/ehis"
