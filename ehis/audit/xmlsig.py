"""Enveloped XML signatures on the log's own small documents (checkpoints), with signxml.

The same profile as the SOAP envelopes (RSA-SHA256, exclusive c14n, the signer's certificate in
KeyInfo), on a document whose root is the signed element, so `xmlsec1 --verify --trusted-pem
ca.pem checkpoint.xml` checks it too. Verification picks the signer by common name among the
KeyInfo certificates, checks its chain to the CA, and returns only what signxml says was signed.
"""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier, methods
from signxml.exceptions import SignXMLException
from signxml.verifier import SignatureConfiguration

from ehis.errors import SignatureInvalid
from ehis.security.pki import Identity
from ehis.security.trust import TrustStore
from ehis.security.xml import UnsafeXml, hardened_parser, parse_untrusted

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_EXPECT = SignatureConfiguration(
    require_x509=True,
    location="./",
    expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA512}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA512}),
)


class DocumentSigner:
    """Signs documents as one party (the operator); build once: the key is already loaded."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._signer = XMLSigner(method=methods.enveloped, signature_algorithm=SignatureMethod.RSA_SHA256,
                                 digest_algorithm=DigestAlgorithm.SHA256, c14n_algorithm=EXC_C14N)

    def sign(self, root: etree._Element) -> bytes:
        """The signed document's bytes: exactly these are stored, time-stamped and exported."""
        signed = self._signer.sign(root, key=self.identity.key, cert=[self.identity.cert])
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify_document(data: bytes, expected_signer: str, trust: TrustStore) -> tuple[etree._Element, x509.Certificate]:
    """The signed root of `data` and the certificate that verified it, if `expected_signer` signed it."""
    try:
        root = parse_untrusted(data)
        signer = _signer(root, expected_signer)
        trust.check(signer)
        result = XMLVerifier().verify(root, x509_cert=signer, parser=hardened_parser(), expect_config=_EXPECT)
    except SignatureInvalid:
        raise
    except (UnsafeXml, SignXMLException, etree.DocumentInvalid) as exc:
        raise SignatureInvalid(f"the signature does not verify: {str(exc)[:200] or type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 - a shape signxml did not expect
        raise SignatureInvalid(f"malformed signature ({type(exc).__name__})") from None
    if result.signed_xml is None:
        raise SignatureInvalid("the signed content is not XML")
    return result.signed_xml, signer


def _signer(root: etree._Element, expected: str) -> x509.Certificate:
    signatures = root.findall(f"{{{DS_NS}}}Signature")
    if len(signatures) != 1:
        raise SignatureInvalid("the document is unsigned" if not signatures else "the document has several signatures")
    for text in signatures[0].iterfind(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate"):
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(text.text or "", validate=False))
        except ValueError:
            raise SignatureInvalid("a certificate in the signature is not readable") from None
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names and names[0].value == expected:
            return cert
    raise SignatureInvalid(f"the document is not signed by {expected}")
