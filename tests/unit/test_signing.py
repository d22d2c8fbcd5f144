"""Signature cases the adapter depends on: every forgery ends in SignatureInvalid."""

import datetime as dt

import pytest
from lxml import etree

from ehis.contracts.xroad import DS_NS, SOAP_NS
from ehis.errors import SignatureInvalid
from ehis.security.pki import OPERATOR_CN, Identity, issue
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier
from ehis.testing import missing_service

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


# --- the hub's own signer, checked by implementations other than the hub's ----------------------


def test_signatures_verify_with_signxml_alone(pki):
    """signxml's verifier with nothing of the hub's around it: the signer's shape is standard."""
    from signxml import XMLVerifier

    identity = pki.identity("din")
    result = XMLVerifier().verify(signed_by(identity), x509_cert=identity.cert, expect_references=1)
    assert result.signed_xml.findtext(".//{urn:p}fin") == "5GXM4DZ"


def test_signatures_verify_with_xmlsec1(pki, tmp_path):
    """libxmlsec1 (C, the reference implementation most security servers use) accepts them too."""
    import shutil
    import subprocess

    from cryptography.hazmat.primitives.serialization import Encoding

    if shutil.which("xmlsec1") is None:
        missing_service("xmlsec1 is not installed (.ci/run installs it)")
    identity = pki.identity("din")
    (tmp_path / "cert.pem").write_bytes(identity.cert.public_bytes(Encoding.PEM))
    for name, data in (("good.xml", signed_by(identity)), ("bad.xml", signed_by(identity).replace(b"Aysel", b"Ay"))):
        (tmp_path / name).write_bytes(data)
    command = ["xmlsec1", "--verify", "--pubkey-cert-pem", str(tmp_path / "cert.pem")]
    assert subprocess.run([*command, str(tmp_path / "good.xml")], check=False, capture_output=True).returncode == 0
    assert subprocess.run([*command, str(tmp_path / "bad.xml")], check=False, capture_output=True).returncode != 0


def test_a_signed_envelope_without_a_header_gets_one(pki, verifier):
    bare = f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body><p:x xmlns:p="urn:p">1</p:x></s:Body></s:Envelope>'.encode()
    verified = verifier.verify(signed_by(pki.identity("din"), bare), expected_signer="din")
    assert verified.envelope.findtext(".//{urn:p}x") == "1"


def _signxml_signed(identity: Identity, data: bytes, c14n: str = "http://www.w3.org/2001/10/xml-exc-c14n#") -> bytes:
    """Signed by signxml with its placeholder inside the header, between elements with whitespace."""
    from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, methods

    doc = etree.fromstring(data)
    placeholder = etree.Element(f"{{{DS_NS}}}Signature", Id="placeholder")
    placeholder.tail = "\n  "
    doc[0].insert(0, placeholder)
    signer = XMLSigner(method=methods.enveloped, signature_algorithm=SignatureMethod.RSA_SHA256,
                       digest_algorithm=DigestAlgorithm.SHA256, c14n_algorithm=c14n)
    return etree.tostring(signer.sign(doc, key=identity.key, cert=[identity.cert]))


def test_the_profile_path_keeps_the_text_around_the_signature(pki, verifier):
    """Taking the Signature out keeps the whitespace after it, as the enveloped transform does."""
    verified = verifier.verify(_signxml_signed(pki.identity("din"), ENVELOPE), expected_signer="din")
    assert verified.envelope.findtext(".//{urn:p}fin") == "5GXM4DZ"
    assert verified.envelope.find(f".//{{{DS_NS}}}Signature") is None


def test_other_signature_shapes_are_still_verified_by_signxml(pki, verifier):
    inclusive = _signxml_signed(pki.identity("din"), ENVELOPE, c14n="http://www.w3.org/2006/12/xml-c14n11")
    assert verifier.verify(inclusive, expected_signer="din").envelope.findtext(".//{urn:p}name") == "Aysel"
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verifier.verify(inclusive.replace(b"Aysel", b"Aynur"), expected_signer="din")


def test_the_digest_and_the_signature_value_are_both_checked(pki, verifier):
    doc = etree.fromstring(signed_by(pki.identity("din")))
    digest = doc.find(f".//{{{DS_NS}}}DigestValue")
    digest.text = "A" + digest.text[1:] if digest.text[0] != "A" else "B" + digest.text[1:]
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verifier.verify(etree.tostring(doc), expected_signer="din")
    doc = etree.fromstring(signed_by(pki.identity("din")))
    doc.find(f".//{{{DS_NS}}}SignatureValue").text = "!!not base64"
    with pytest.raises(SignatureInvalid):
        verifier.verify(etree.tostring(doc), expected_signer="din")


@pytest.mark.parametrize("change", ["second reference", "reference to an id", "xpath transform",
                                    "inclusive namespaces", "sha1 digest"])
def test_a_signature_off_the_profile_gets_no_fast_pass(pki, verifier, change):
    """Changed SignedInfo shapes: the signature no longer verifies, whichever verifier looks at it."""
    doc = etree.fromstring(signed_by(pki.identity("din")))
    info = doc.find(f".//{{{DS_NS}}}SignedInfo")
    reference = info.find(f"{{{DS_NS}}}Reference")
    if change == "second reference":
        info.append(etree.fromstring(etree.tostring(reference)))
    elif change == "reference to an id":
        reference.set("URI", "#body")
    elif change == "xpath transform":
        etree.SubElement(reference[0], f"{{{DS_NS}}}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    elif change == "inclusive namespaces":
        etree.SubElement(reference[0][1], "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces",
                         PrefixList="s")
    else:
        reference[1].set("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")
    with pytest.raises(SignatureInvalid):
        verifier.verify(etree.tostring(doc), expected_signer="din")
