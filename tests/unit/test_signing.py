"""Signature cases the adapter depends on: every forgery ends in SignatureInvalid."""

import datetime as dt

import pytest
from lxml import etree

from ehis.contracts.xroad import DS_NS, SOAP_NS
from ehis.errors import SignatureInvalid
from ehis.security.pki import OPERATOR_CN, Identity, issue
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier

ENVELOPE = (
    f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Header><h:id xmlns:h="urn:h">m-1</h:id></s:Header>'
    '<s:Body><p:person xmlns:p="urn:p"><p:fin>5GXM4DZ</p:fin><p:name>Aysel</p:name></p:person></s:Body>'
    "</s:Envelope>"
).encode()


def signed_by(identity: Identity, data: bytes = ENVELOPE) -> bytes:
    return etree.tostring(EnvelopeSigner(identity).sign(etree.fromstring(data)))


@pytest.fixture(scope="module")
def verifier(pki):
    return EnvelopeVerifier(pki.ca_file)


def test_valid_signature_returns_the_signed_envelope_and_signer(pki, verifier):
    verified = verifier.verify(signed_by(pki.identity("din")), expected_signer="din")
    assert "CN=din" in verified.signer
    assert verified.envelope.findtext(".//{urn:p}fin") == "5GXM4DZ"
    assert verified.envelope.find(f".//{{{DS_NS}}}Signature") is None  # the signature is not content
    assert len(verified.digest) == 64


def test_signature_sits_in_the_soap_header(pki):
    doc = etree.fromstring(signed_by(pki.operator()))
    assert doc.find(f"{{{SOAP_NS}}}Header/{{{DS_NS}}}Signature") is not None


def test_tampered_field_is_rejected(pki, verifier):
    data = signed_by(pki.identity("din")).replace(b"Aysel", b"Aynur")
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verifier.verify(data, expected_signer="din")


def test_wrong_signer_is_rejected_even_with_a_valid_certificate_from_the_same_ca(pki, verifier):
    data = signed_by(pki.identity("vergiler"))
    with pytest.raises(SignatureInvalid):
        verifier.verify(data, expected_signer="din")
    data = signed_by(pki.operator())
    assert "CN=" + OPERATOR_CN in verifier.verify(data, expected_signer=OPERATOR_CN).signer


def test_unsigned_message_is_rejected(verifier):
    with pytest.raises(SignatureInvalid):
        verifier.verify(ENVELOPE, expected_signer="din")


def test_expired_certificate_is_rejected(pki, verifier):
    ca = pki.identity("ca")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    key, cert = issue(ca.key, ca.cert, "din", "DİN", not_before=past - dt.timedelta(days=365), not_after=past)
    with pytest.raises(SignatureInvalid, match="certificate"):
        verifier.verify(signed_by(Identity("din", key, cert)), expected_signer="din")


def test_certificate_from_another_ca_is_rejected(tmp_path, verifier):
    from ehis.security.pki import init_pki

    rogue = init_pki(tmp_path / "rogue", {"din": "DİN"})
    with pytest.raises(SignatureInvalid, match="certificate"):
        verifier.verify(signed_by(rogue.identity("din")), expected_signer="din")


def test_signature_wrapping_is_rejected(pki, verifier):
    """Move the signed body aside into the header and put a forged body in its place."""
    doc = etree.fromstring(signed_by(pki.identity("din")))
    header, body = doc[0], doc[1]
    wrapper = etree.SubElement(header, "{urn:evil}Wrapper")
    wrapper.append(body)
    forged = etree.SubElement(doc, f"{{{SOAP_NS}}}Body")
    etree.SubElement(forged, "{urn:p}person").text = "forged"
    with pytest.raises(SignatureInvalid):
        verifier.verify(etree.tostring(doc), expected_signer="din")


def test_second_signature_elsewhere_does_not_help_a_forgery(pki, verifier):
    signed = etree.fromstring(signed_by(pki.identity("din")))
    forged = etree.fromstring(ENVELOPE.replace(b"Aysel", b"Forged"))
    forged[0].append(signed)  # a whole valid signed message carried inside the forged header
    with pytest.raises(SignatureInvalid):
        verifier.verify(etree.tostring(forged), expected_signer="din")


def test_comment_injection_cannot_truncate_signed_text(pki, verifier):
    data = signed_by(pki.identity("din")).replace(b"5GXM4DZ", b"5GX<!-- -->M4DZ")
    verified = verifier.verify(data, expected_signer="din")
    assert verified.envelope.findtext(".//{urn:p}fin") == "5GXM4DZ"


def test_entities_are_never_expanded(verifier):
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(SignatureInvalid, match="DTD"):
        verifier.verify(evil, expected_signer="din")


def test_the_signer_is_chosen_by_the_verifier_not_by_the_order_in_key_info(pki, verifier):
    """A certificate of another system placed first is neither reported nor used."""
    doc = etree.fromstring(signed_by(pki.identity("din")))
    data = doc.find(f".//{{{DS_NS}}}X509Data")
    decoy = etree.Element(f"{{{DS_NS}}}X509Certificate")
    decoy.text = "".join((pki.directory / "vergiler.pem").read_text().strip().splitlines()[1:-1])
    data.insert(0, decoy)
    verified = verifier.verify(etree.tostring(doc), expected_signer="din")
    assert verified.signer.startswith("CN=din,")
    with pytest.raises(SignatureInvalid):  # and vergiler's certificate cannot vouch for din's signature
        verifier.verify(etree.tostring(doc), expected_signer="vergiler")


def test_a_pinned_fingerprint_must_match(pki, verifier):
    from cryptography.hazmat.primitives.hashes import SHA256

    data = signed_by(pki.identity("din"))
    right = pki.identity("din").cert.fingerprint(SHA256()).hex()
    assert verifier.verify(data, expected_signer="din", pin=right).signer.startswith("CN=din,")
    with pytest.raises(SignatureInvalid, match="pinned"):
        verifier.verify(data, expected_signer="din", pin="00" * 32)
