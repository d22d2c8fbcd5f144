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
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier, methods
from signxml.exceptions import InvalidCertificate, InvalidInput, SignXMLException
from signxml.verifier import SignatureConfiguration

from ehis.contracts.xroad import DS_NS, SOAP_NS
from ehis.errors import SignatureInvalid
from ehis.security.pki import Identity
from ehis.security.trust import TrustStore
from ehis.security.xml import UnsafeXml, hardened_parser, parse_untrusted

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

_EXPECT = SignatureConfiguration(
    require_x509=True,
    location=f"./{{{SOAP_NS}}}Header/",
    expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA512}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA512}),
)


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
    certificate: x509.Certificate  # the one whose key verified the signature (not merely the first in KeyInfo)
    digest: str  # hex SHA-256 of the signed bytes, kept as evidence in the exchange log

    @property
    def signer(self) -> str:
        """The verifying certificate's subject, RFC 4514."""
        return self.certificate.subject.rfc4514_string()


class EnvelopeVerifier:
    """Verifies signed envelopes against one CA file (the test PKI's, or the real one)."""

    def __init__(self, ca_file: Path, *, trust: TrustStore | None = None):
        self.trust = trust or TrustStore(ca_file)

    def verify(self, data: bytes | etree._Element, expected_signer: str, *, pin: str | None = None) -> Verified:
        """The signed envelope, if and only if `expected_signer` signed it with a trusted certificate.

        The signing certificate is chosen by the verifier, not by the document: among the
        certificates in KeyInfo, the one named `expected_signer` (with SHA-256 fingerprint `pin`,
        when given) that chains to the CA; the others may be its chain or noise, never the signer.
        """
        try:
            root = parse_untrusted(data) if isinstance(data, bytes) else data
            certs = _key_info_certificates(root)
            signer = _pick(certs, expected_signer, pin)
            self.trust.check(signer, [c for c in certs if c is not signer])
            result = XMLVerifier().verify(root, x509_cert=signer, parser=hardened_parser(), expect_config=_EXPECT)
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
        except SignatureInvalid:
            raise
        except Exception as exc:  # noqa: BLE001 - a shape signxml did not expect (an empty SignatureValue...)
            raise SignatureInvalid(f"malformed signature ({type(exc).__name__})") from None
        if result.signed_xml is None:
            raise SignatureInvalid("the signed content is not XML")
        return Verified(result.signed_xml, signer, hashlib.sha256(result.signed_data).hexdigest())


def _key_info_certificates(root: etree._Element) -> list[x509.Certificate]:
    """The certificates in the KeyInfo of the one signature in soap:Header (none: unsigned)."""
    header = root.find(f"{{{SOAP_NS}}}Header")
    signatures = [] if header is None else header.findall(f"{{{DS_NS}}}Signature")
    if len(signatures) != 1:
        raise SignatureInvalid("the message is unsigned" if not signatures else "the message has several signatures")
    certs = []
    for text in signatures[0].iterfind(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate"):
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(text.text or "", validate=False)))
        except ValueError:
            raise SignatureInvalid("a certificate in the signature is not readable") from None
    return certs


def _pick(certs: list[x509.Certificate], expected: str, pin: str | None) -> x509.Certificate:
    wanted = pin.replace(":", "").lower() if pin else None
    for cert in certs:
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names and names[0].value == expected and (wanted is None or cert.fingerprint(SHA256()).hex() == wanted):
            return cert
    raise SignatureInvalid(f"the message is not signed by {expected}" + (" (pinned certificate)" if pin else ""))


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
