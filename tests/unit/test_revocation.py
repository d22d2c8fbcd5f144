"""Revocation: a signer the CA's CRL lists is refused, a revocation published later is noticed
within the freshness, and a status that cannot be learned is refused or accepted as the setting
says, always saying so. Every hostile CRL (forged, stale, garbage, huge, slow) ends in a status
that is unknown, never in a revoked certificate passing."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from ehis.cli import main
from ehis.contracts.xroad import SOAP_NS
from ehis.errors import SignatureInvalid
from ehis.security.pki import (
    CRL_FILE,
    OPERATOR_CN,
    Identity,
    Pki,
    ensure_pki,
    init_pki,
    issue_crl,
    read_crl,
    revoke,
)
from ehis.security.revocation import (
    CrlSources,
    RevocationChecker,
    RevocationCollector,
    RevocationMode,
)
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.security.trust import TrustStore

ENVELOPE = (f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Header/><s:Body><p:x xmlns:p="urn:p">1</p:x></s:Body>'
            "</s:Envelope>").encode()


def signed_by(identity: Identity) -> bytes:
    return etree.tostring(EnvelopeSigner(identity).sign(etree.fromstring(ENVELOPE)))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A PKI of one source, read only by the tests that use it (those that revoke copy it)."""
    return init_pki(tmp_path_factory.mktemp("revocation") / "pki", {"din": "DİN"})


@pytest.fixture
def own(small: Pki, tmp_path: Path) -> Pki:
    """A copy of `small` this test may revoke in."""
    shutil.copytree(small.directory, tmp_path / "pki")
    return Pki(tmp_path / "pki")


def verifier(pki: Pki, clock: Clock | None = None, *, sources: list[str] | None = None,
             mode: RevocationMode = RevocationMode.FAIL_CLOSED, freshness: float = 60.0,
             timeout: float = 3.0) -> EnvelopeVerifier:
    clock = clock or Clock()
    crls = CrlSources(freshness=freshness, timeout=timeout, clock=clock)
    checker = RevocationChecker(sources if sources is not None else [str(pki.crl_file)], mode=mode, crls=crls)
    return EnvelopeVerifier(pki.ca_file, trust=TrustStore(pki.ca_file, freshness=freshness, clock=clock,
                                                           revocation=checker))


# --- the test PKI's CRL ----------------------------------------------------------------------------


def test_the_pki_lists_a_revoked_certificate_of_every_party_from_the_start(small: Pki) -> None:
    crl = read_crl(small.directory)
    assert crl is not None and crl.is_signature_valid(small.identity("ca").cert.public_key())
    for name in ("din", OPERATOR_CN):
        revoked = small.revoked_identity(name)
        assert crl.get_revoked_certificate_by_serial_number(revoked.cert.serial_number) is not None
        assert crl.get_revoked_certificate_by_serial_number(small.identity(name).cert.serial_number) is None
        assert revoked.cert.subject == small.identity(name).cert.subject  # the right name, from the right CA


def test_default_trust_store_reads_the_crl_beside_the_ca(small: Pki) -> None:
    default = EnvelopeVerifier(small.ca_file)
    assert "CN=din" in default.verify(signed_by(small.identity("din")), "din").signer
    with pytest.raises(SignatureInvalid, match="revoked"):
        default.verify(signed_by(small.revoked_identity("din")), "din")


def test_revoked_signer_is_refused_and_remembered(own: Pki) -> None:
    check = verifier(own)
    with pytest.raises(SignatureInvalid, match=r"was revoked \(on "):
        check.verify(signed_by(own.revoked_identity("din")), "din")
    own.crl_file.unlink()  # revocation is final: no CRL is needed to refuse it again
    with pytest.raises(SignatureInvalid, match="revoked"):
        check.verify(signed_by(own.revoked_identity("din")), "din")
    assert check.trust.revocation.counts["revoked"] == 2


def test_a_revocation_published_later_is_noticed_within_the_freshness(own: Pki) -> None:
    clock = Clock()
    check = verifier(own, clock, freshness=60)
    answer = signed_by(own.identity("din"))
    check.verify(answer, "din")
    revoke(own.directory, "din")
    clock.now += 59  # the hub's copy of the CRL and the status it gave are still fresh
    check.verify(answer, "din")
    clock.now += 1  # freshness passed: the CRL is fetched again and lists din
    with pytest.raises(SignatureInvalid, match="revoked"):
        check.verify(answer, "din")


def test_revoke_keeps_what_the_crl_listed_and_numbers_it_higher(own: Pki) -> None:
    before = read_crl(own.directory)
    cert = revoke(own.directory, "din")
    after = read_crl(own.directory)
    assert {e.serial_number for e in after} == {e.serial_number for e in before} | {cert.serial_number}
    assert (after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            > before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def test_cli_revokes_a_party(own: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "revoke", "din", "--dir", str(own.directory)]) == 0
    serial = own.identity("din").cert.serial_number
    assert read_crl(own.directory).get_revoked_certificate_by_serial_number(serial) is not None
    assert "revoked" in capsys.readouterr().out
    assert main(["pki", "revoke", "no-such-party", "--dir", str(own.directory)]) == 2


def test_ensure_pki_gives_an_older_pki_its_crl_revoked_and_tls_certificates(own: Pki) -> None:
    for part in ("revoked", "tls"):
        shutil.rmtree(own.directory / part)
    (own.directory / CRL_FILE).unlink()
    ensure_pki(own.directory)
    assert own.tls_files("server")[0].exists() and own.tls_files("client")[1].exists()
    crl = read_crl(own.directory)
    assert crl.get_revoked_certificate_by_serial_number(own.revoked_identity("din").cert.serial_number) is not None


# --- status unknown: the setting decides ------------------------------------------------------------


def test_unknown_status_fails_closed_saying_why(own: Pki) -> None:
    missing = str(own.directory / "nowhere.crl")
    with pytest.raises(SignatureInvalid, match=r"cannot learn whether .* fail-closed.*nowhere\.crl"):
        verifier(own, sources=[missing]).verify(signed_by(own.identity("din")), "din")


def test_unknown_status_fails_open_with_a_warning_and_a_metric(own: Pki, caplog: pytest.LogCaptureFixture) -> None:
    check = verifier(own, sources=[str(own.directory / "nowhere.crl")], mode=RevocationMode.FAIL_OPEN)
    with caplog.at_level(logging.WARNING, logger="ehis.security"):
        assert "CN=din" in check.verify(signed_by(own.identity("din")), "din").signer
    assert any("fail-open" in r.getMessage() for r in caplog.records)
    assert check.trust.revocation.counts["unknown_accepted"] == 1
    samples = {s.labels["result"]: s.value for m in RevocationCollector(check.trust.revocation).collect()
               for s in m.samples}
    assert samples["unknown_accepted"] == 1 and samples["good"] == 0


def test_fail_open_still_refuses_what_a_crl_lists(own: Pki) -> None:
    with pytest.raises(SignatureInvalid, match="revoked"):
        verifier(own, mode=RevocationMode.FAIL_OPEN).verify(signed_by(own.revoked_identity("din")), "din")


def test_no_crl_configured_and_no_distribution_point_is_unknown(own: Pki) -> None:
    with pytest.raises(SignatureInvalid, match="names no distribution point"):
        verifier(own, sources=[]).verify(signed_by(own.identity("din")), "din")


def test_a_failed_fetch_is_retried_only_after_a_while(own: Pki) -> None:
    clock = Clock()
    path = own.directory / "later.crl"
    check = verifier(own, clock, sources=[str(path)], freshness=60)
    answer = signed_by(own.identity("din"))
    with pytest.raises(SignatureInvalid, match="cannot learn"):
        check.verify(answer, "din")
    shutil.copy(own.crl_file, path)
    with pytest.raises(SignatureInvalid, match="cannot learn"):  # not fetched again on every answer
        check.verify(answer, "din")
    clock.now += check.trust.revocation.crls.retry_after
    check.verify(answer, "din")


# --- hostile CRLs ------------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_a_crl_forged_by_another_ca_of_the_same_name_does_not_count(own: Pki, tmp_path: Path) -> None:
    """A rogue CA with the same name issues an empty CRL: a revoked certificate must not pass."""
    rogue = init_pki(tmp_path / "rogue", {})
    ca = rogue.identity("ca")
    assert ca.cert.subject == own.identity("ca").cert.subject
    forged = _write(tmp_path / "forged.crl",
                    issue_crl(ca.key, ca.cert, {}, 99).public_bytes(serialization.Encoding.DER))
    with pytest.raises(SignatureInvalid, match="signature does not verify"):
        verifier(own, sources=[forged]).verify(signed_by(own.revoked_identity("din")), "din")
    with pytest.raises(SignatureInvalid, match="cannot learn"):
        verifier(own, sources=[forged]).verify(signed_by(own.identity("din")), "din")


def test_an_out_of_date_crl_does_not_count(own: Pki, tmp_path: Path) -> None:
    clock = Clock()
    clock.now += 40 * 86400  # past the CRL's nextUpdate (30 days)
    with pytest.raises(SignatureInvalid, match="out of date"):
        # a certificate valid for ten years, a CRL for thirty days
        verifier(own, clock).verify(signed_by(own.identity("din")), "din")


@pytest.mark.parametrize("content", [b"", b"not a CRL", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
                                     b"\x30\x82\xff\xff" + b"\x00" * 64])
def test_garbage_crls_are_unknown(own: Pki, tmp_path: Path, content: bytes) -> None:
    source = _write(tmp_path / "garbage.crl", content)
    with pytest.raises(SignatureInvalid, match="not a readable CRL"):
        verifier(own, sources=[source]).verify(signed_by(own.identity("din")), "din")


def test_a_huge_crl_is_refused_unread(own: Pki, tmp_path: Path) -> None:
    source = _write(tmp_path / "huge.crl", b"\x30" * 4096)
    crls = CrlSources(max_bytes=1024)
    checker = RevocationChecker([source], crls=crls)
    trust = TrustStore(own.ca_file, revocation=checker)
    with pytest.raises(SignatureInvalid, match="larger than 1024 bytes"):
        EnvelopeVerifier(own.ca_file, trust=trust).verify(signed_by(own.identity("din")), "din")


def test_the_pem_form_of_the_crl_is_read_too(own: Pki, tmp_path: Path) -> None:
    pem = _write(tmp_path / "ca.pem.crl", read_crl(own.directory).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(SignatureInvalid, match="revoked"):
        verifier(own, sources=[pem]).verify(signed_by(own.revoked_identity("din")), "din")


# --- over HTTP: a server that never answers, or drips ------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """An HTTP server that accepts and then says nothing (or drips, see `drip`)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def run() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/ca.crl", accepted
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_crl_server_that_never_answers_costs_one_bounded_wait(own: Pki, silent_server) -> None:
    url, _ = silent_server
    check = verifier(own, sources=[url], timeout=0.5)
    started = time.monotonic()
    for _ in range(3):  # the failure is kept: later answers do not wait again
        with pytest.raises(SignatureInvalid, match="no answer within 0.5 s"):
            check.verify(signed_by(own.identity("din")), "din")
    assert time.monotonic() - started < 5  # bounded: not a hang (generous under load)


def test_a_crl_server_dripping_bytes_is_cut_off(own: Pki, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            try:
                for _ in range(100):
                    conn.sendall(b"0" * 10)
                    time.sleep(0.05)
            except OSError:
                pass

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/ca.crl"
    try:
        with pytest.raises(SignatureInvalid, match="within 0.5 s"):
            verifier(own, sources=[url], timeout=0.5).verify(signed_by(own.identity("din")), "din")
    finally:
        thread.join(10)
        listener.close()


def test_the_simulators_refuse_a_request_signed_by_the_revoked_operator(pki: Pki) -> None:
    from ehis.simulators.journal import Journal
    from ehis.simulators.provider import Provider

    provider = Provider(pki, Journal())
    reply = provider.handle(provider.sources["din"], signed_by(pki.revoked_identity(OPERATOR_CN)))
    assert reply.status == 500 and b"revoked" in reply.content


def test_background_refresh_renews_a_crl_before_it_is_due(own: Pki) -> None:
    clock = Clock()
    check = verifier(own, clock, freshness=60)
    checker = check.trust.revocation
    check.verify(signed_by(own.identity("din")), "din")
    revoke(own.directory, "din")
    clock.now += 31  # past half the freshness: the background task fetches it again
    checker.refresh_due()
    assert checker.crls.current(str(own.crl_file)).crl.get_revoked_certificate_by_serial_number(
        own.identity("din").cert.serial_number) is not None



async def test_on_the_event_loop_a_due_crl_is_fetched_in_a_thread_not_waited_for(own: Pki) -> None:
    """A small answer is verified on the event loop: a CRL server that has become slow must not
    hold it. The answer gets what is known now (too old: unknown), the fetch goes on in a thread."""
    import asyncio
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()
    slow = threading.Event()
    crl = own.crl_file.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if slow.is_set():
                release.wait(10)
            self.send_response(200)
            self.send_header("Content-Length", str(len(crl)))
            self.end_headers()
            self.wfile.write(crl)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ca.crl"
    clock = Clock()
    check = verifier(own, clock, sources=[url], freshness=60, timeout=5)
    answer = signed_by(own.identity("din"))
    try:
        check.verify(answer, "din")  # first sight: fetched right away
        slow.set()
        clock.now += 61
        with pytest.raises(SignatureInvalid, match=r"older than 60 s \(a fetch is under way\)"):
            check.verify(answer, "din")  # a fetch on the loop would have said "no answer within 5 s"
        release.set()
        for _ in range(200):
            await asyncio.sleep(0.05)
            try:
                check.verify(answer, "din")
                break
            except SignatureInvalid:
                continue
        assert "CN=din" in check.verify(answer, "din").signer
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_failed_renewal_keeps_the_good_copy_until_it_is_too_old(own: Pki, tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "ca.crl"
    shutil.copy(own.crl_file, path)
    check = verifier(own, clock, sources=[str(path)], freshness=60)
    answer = signed_by(own.identity("din"))
    check.verify(answer, "din")
    path.unlink()
    clock.now += 31
    checker = check.trust.revocation
    checker.refresh_due()  # the background renewal fails
    din, ca = own.identity("din").cert, own.identity("ca").cert
    assert checker.status(din, ca).result == "good"  # the copy is 31 s old: still good
    clock.now += 30
    with pytest.raises(SignatureInvalid, match="older than 60 s"):
        check.verify(answer, "din")


# --- the verifier's parsed-certificate cache: parsing remembered, trust decided every time -----------


def test_a_cached_certificate_is_still_refused_once_it_expires(own: Pki) -> None:
    import datetime as dt

    from ehis.security import signing
    from ehis.security.pki import issue

    ca = own.identity("ca")
    now = dt.datetime.now(dt.UTC)
    key, cert = issue(ca.key, ca.cert, "din", "DİN", not_before=now - dt.timedelta(hours=1),
                      not_after=now + dt.timedelta(seconds=120))
    answer = signed_by(Identity("din", key, cert))
    clock = Clock()
    check = verifier(own, clock, freshness=600)
    assert "CN=din" in check.verify(answer, "din").signer
    assert any(p.cert == cert for p in signing._parsed.values())  # parsed once, kept
    clock.now += 60
    check.verify(answer, "din")  # still valid, trusted from the cache
    clock.now += 61  # past notAfter, well within the revocation freshness
    with pytest.raises(SignatureInvalid, match="expired"):
        check.verify(answer, "din")


def test_a_cached_certificate_is_checked_against_a_new_crl_when_the_freshness_lapses(own: Pki) -> None:
    from ehis.security import signing

    clock = Clock()
    check = verifier(own, clock, freshness=30)
    answer = signed_by(own.identity("din"))
    for _ in range(3):
        check.verify(answer, "din")
    parsed = [p for p in signing._parsed.values() if p.cert == own.identity("din").cert]
    assert len(parsed) == 1
    revoke(own.directory, "din")
    clock.now += 29
    check.verify(answer, "din")
    clock.now += 1  # the status is re-learned from a CRL fetched now, though the parsing is cached
    with pytest.raises(SignatureInvalid, match="revoked"):
        check.verify(answer, "din")
    assert signing._parse_certificate(next(k for k, v in signing._parsed.items() if v is parsed[0])) is parsed[0]


def test_the_parsed_certificate_cache_is_bounded(own: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    from ehis.security import signing

    monkeypatch.setattr(signing, "MAX_PARSED_CERTIFICATES", 2)
    texts = [base64.b64encode(own.identity(name).cert.public_bytes(Encoding.DER)).decode()
             for name in ("din", "ca", OPERATOR_CN)]
    for text in texts:
        signing._parse_certificate(text)
    assert len(signing._parsed) <= 2 and texts[0] not in signing._parsed
    with pytest.raises(SignatureInvalid, match="not readable"):
        signing._parse_certificate("bm90IGEgY2VydGlmaWNhdGU=")
