"""The test PKI: a CA, one signing certificate per source system, the ministry's operator.

`ehis pki init DIR` writes it; every process then loads it once through `load_pki` (RSA key
loading validates the key and costs tens of milliseconds, so it must not happen per call).
A certificate's common name is the system code (`din`, ...) or `OPERATOR_CN`, which is what
verification checks the signer against.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPERATOR_CN = "meis-operator"
TSA_CN = "ehis-tsa"  # the simulators' RFC 3161 time-stamping authority
TSA_ORG = "EHİS test time-stamping authority"
OPERATOR_ORG = "Əmək və Əhalinin Sosial Müdafiəsi Nazirliyi"
CA_CN = "EHIS Test CA"
CA_FILE = "ca.pem"
KEY_BITS = 2048
VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class Identity:
    """A loaded private key with its certificate: what a party signs with."""

    name: str
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / CA_FILE

    def identity(self, name: str) -> Identity:
        """The key and certificate of `name` (a system code or OPERATOR_CN), loaded once."""
        return _load_identity(self.directory.resolve(), name)

    def operator(self) -> Identity:
        return self.identity(OPERATOR_CN)

    def tsa(self) -> Identity:
        """The simulators' time-stamping authority (id-kp-timeStamping only)."""
        return self.identity(TSA_CN)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "AZ"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def make_ca(now: dt.datetime | None = None) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    now = now or dt.datetime.now(dt.UTC)
    key = _new_key()
    name = _name(CA_CN, "EHİS test PKI")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    cn: str,
    org: str,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    time_stamping: bool = False,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A signing certificate for `cn`; tests pass past dates to make an expired one.

    `time_stamping`: a TSA's certificate, whose only extended key usage is id-kp-timeStamping,
    marked critical, as RFC 3161 (2.3) requires and `openssl ts -verify` checks.
    """
    usage = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]) if time_stamping
             else x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]))
    now = dt.datetime.now(dt.UTC)
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(usage, critical=time_stamping)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"{cn}.ehis.test")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def write_identity(directory: Path, name: str, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
    key_path = directory / f"{name}.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def init_pki(directory: Path, systems: dict[str, str], *, force: bool = False) -> Pki:
    """Write a CA, the operator's identity and one identity per system (`code -> body`).

    Written into a temporary sibling and renamed into place, so a concurrent process either
    sees a whole PKI or none; if another process won the race, its PKI is kept.
    """
    directory = directory.expanduser()
    if directory.exists():
        if not force:
            raise FileExistsError(f"{directory} exists; pass force to replace it")
        shutil.rmtree(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pki-", dir=directory.parent))
    ca_key, ca_cert = make_ca()
    write_identity(staging, "ca", ca_key, ca_cert)
    (staging / CA_FILE).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for cn, org in {OPERATOR_CN: OPERATOR_ORG, **systems}.items():
        write_identity(staging, cn, *issue(ca_key, ca_cert, cn, org))
    write_identity(staging, TSA_CN, *issue(ca_key, ca_cert, TSA_CN, TSA_ORG, time_stamping=True))
    try:
        os.rename(staging, directory)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (directory / CA_FILE).exists():
            raise
    return Pki(directory)


def pki_parties() -> dict[str, str]:
    """Every party the test PKI certifies besides the operator: each system of the statute, and
    each provider of a built source that has several (common name = system code or provider
    name, organisation = the body)."""
    from ehis.catalogue import SYSTEMS
    from ehis.sources import sources

    parties = {s.code: s.body for s in SYSTEMS}
    for code, source in sources().items():
        parties |= {name: f"{parties[code]} ({name})" for name in source.providers}
    return parties


def ensure_pki(directory: Path) -> Pki:
    """The PKI in `directory`, made first if there is none (the working default of the CLI), and
    given a certificate for every party it lacks (a source built after it was made)."""
    directory = directory.expanduser()
    if not (directory / CA_FILE).exists():
        return init_pki(directory, pki_parties())
    missing = {cn: org for cn, org in pki_parties().items() if not (directory / f"{cn}.pem").exists()}
    if not (directory / f"{TSA_CN}.pem").exists():  # a PKI made before the TSA existed
        missing[TSA_CN] = TSA_ORG
    if missing:
        ca = _load_identity(directory.resolve(), "ca")
        for cn, org in missing.items():
            staging = Path(tempfile.mkdtemp(prefix=".party-", dir=directory))
            write_identity(staging, cn, *issue(ca.key, ca.cert, cn, org, time_stamping=cn == TSA_CN))
            for suffix in (".key", ".pem"):  # the key first: a .pem is what marks the party present
                os.replace(staging / f"{cn}{suffix}", directory / f"{cn}{suffix}")
            shutil.rmtree(staging, ignore_errors=True)
    return Pki(directory)


@cache
def _load_identity(directory: Path, name: str) -> Identity:
    key = serialization.load_pem_private_key((directory / f"{name}.key").read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{name}.key is not an RSA key")
    cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
    return Identity(name, key, cert)
