"""XML signatures on SOAP envelopes (enveloped, RSA-SHA256, exclusive c14n) with signxml.

The sender puts one `ds:Signature` in the SOAP header covering the whole envelope. The
receiver verifies it against the test CA *and* checks that the signer's common name is the
party it expects (the source it called, or the ministry's operator); it then works only on
the XML the verifier returns as signed, never on the tree it received, which is what defeats
signature wrapping.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier, methods
from signxml.exceptions import InvalidCertificate, InvalidInput, SignXMLException
from signxml.verifier import SignatureConfiguration

from ehis.errors import SignatureInvalid
from ehis.security.pki import Identity
from ehis.security.xml import UnsafeXml, hardened_parser, parse_untrusted

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"

_EXPECT = SignatureConfiguration(
    require_x509=True,
    location=f"./{{{SOAP_NS}}}Header/",
    expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA512}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA512}),
)


def canonical(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def message_hash(element: etree._Element) -> str:
    """The X-Road style request hash: base64 SHA-512 of the message's exclusive c14n."""
    return base64.b64encode(hashlib.sha512(canonical(element)).digest()).decode()


class EnvelopeSigner:
    """Signs SOAP envelopes as one party; build once per process (the key is already loaded)."""

    def __init__(self, identity: Identity):
        self.identity = identity
        self._signer = XMLSigner(
            method=methods.enveloped,
            signature_algorithm=SignatureMethod.RSA_SHA256,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=EXC_C14N,
        )

    def sign(self, envelope: etree._Element) -> etree._Element:
        header = envelope.find(f"{{{SOAP_NS}}}Header")
        if header is None:
            header = etree.Element(f"{{{SOAP_NS}}}Header")
            envelope.insert(0, header)
        etree.SubElement(header, f"{{{DS_NS}}}Signature", Id="placeholder")
        return self._signer.sign(envelope, key=self.identity.key, cert=[self.identity.cert])


@dataclass(frozen=True)
class Verified:
    """What a verification vouches for: the signed envelope, who signed it, and evidence."""

    envelope: etree._Element
    signer: str  # the certificate subject, RFC 4514
    digest: str  # hex SHA-256 of the signed bytes, kept as evidence in the exchange log


class EnvelopeVerifier:
    """Verifies signed envelopes against one CA file (the test PKI's, or the real one)."""

    def __init__(self, ca_file: Path):
        self.ca_file = str(ca_file)

    def verify(self, data: bytes | etree._Element, expected_signer: str) -> Verified:
        """The signed envelope, if and only if `expected_signer` signed it with a valid certificate."""
        try:
            root = parse_untrusted(data) if isinstance(data, bytes) else data
            result = XMLVerifier().verify(
                root,
                ca_pem_file=self.ca_file,
                cert_subject_name=expected_signer,
                parser=hardened_parser(),
                expect_config=_EXPECT,
            )
        except UnsafeXml as exc:
            raise SignatureInvalid(f"cannot verify: {exc}") from None
        except InvalidCertificate as exc:
            raise SignatureInvalid(f"signing certificate rejected: {_short(exc)}") from None
        except InvalidInput as exc:
            raise SignatureInvalid(f"no acceptable signature: {_short(exc)}") from None
        except SignXMLException as exc:
            raise SignatureInvalid(f"signature does not verify: {_short(exc)}") from None
        except etree.DocumentInvalid as exc:
            raise SignatureInvalid(f"malformed signature element: {_short(exc)}") from None
        if result.signed_xml is None:
            raise SignatureInvalid("the signed content is not XML")
        return Verified(
            envelope=result.signed_xml,
            signer=_signer_subject(result.signature_xml),
            digest=hashlib.sha256(result.signed_data).hexdigest(),
        )


def _signer_subject(signature: etree._Element) -> str:
    pem = signature.findtext(f".//{{{DS_NS}}}X509Certificate") or ""
    cert = x509.load_der_x509_certificate(base64.b64decode(pem))
    return cert.subject.rfc4514_string()


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
