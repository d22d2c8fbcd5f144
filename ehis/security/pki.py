"""The test PKI: a CA, one signing certificate per source system, the ministry's operator.

`ehis pki init DIR` writes it; every process then loads it once through `load_pki` (RSA key
loading validates the key and costs tens of milliseconds, so it must not happen per call).
A certificate's common name is the system code (`din`, ...) or `OPERATOR_CN`, which is what
verification checks the signer against.

Beside the signing certificates it holds what revocation and TLS need:

    ca.crl              the CA's certificate revocation list (DER), re-issued by `revoke`
    revoked/<cn>.pem    a certificate of every party that the CRL lists from the start (what the
                        simulators' `revoked_cert` fault signs with), its key in revoked/<cn>.key
    tls/server.pem      the simulators' HTTPS certificate (localhost, 127.0.0.1, ::1)
    tls/client.pem      the operator's TLS client certificate (mutual TLS to the sources)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
CRL_FILE = "ca.crl"
CRL_PATH = "/pki/ca.crl"  # where the simulators serve it (a distribution point names it)
DEFAULT_CRL_URL = "http://127.0.0.1:8701" + CRL_PATH  # the simulators' default address
CRL_VALIDITY = dt.timedelta(days=30)  # nextUpdate; `ensure_pki` re-issues it when half is gone
REVOKED_DIR = "revoked"
TLS_DIR = "tls"
TLS_SERVER = "server"
TLS_CLIENT = "client"
TLS_SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
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

    @property
    def crl_file(self) -> Path:
        return self.directory / CRL_FILE

    def revoked_identity(self, name: str) -> Identity:
        """`name` with a certificate of its own name that the CRL lists (the `revoked_cert` fault)."""
        return _load_identity((self.directory / REVOKED_DIR).resolve(), name)

    def tls_files(self, which: str) -> tuple[Path, Path]:
        """(certificate, key) of the TLS server (`TLS_SERVER`) or the operator's client (`TLS_CLIENT`)."""
        return self.directory / TLS_DIR / f"{which}.pem", self.directory / TLS_DIR / f"{which}.key"


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
    crl_url: str | None = None,
    key: rsa.RSAPrivateKey | None = None,
    time_stamping: bool = False,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A signing certificate for `cn`; tests pass past dates to make an expired one. `crl_url`
    names the CRL distribution point; `key` reuses a key (the revoked certificates share one).

    `time_stamping`: a TSA's certificate, whose only extended key usage is id-kp-timeStamping,
    marked critical, as RFC 3161 (2.3) requires and `openssl ts -verify` checks.
    """
    usage = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]) if time_stamping
             else x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]))
    now = dt.datetime.now(dt.UTC)
    key = key or _new_key()
    builder = (
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
    )
    return key, _with_crl_url(builder, crl_url).sign(ca_key, hashes.SHA256())


def _with_crl_url(builder: x509.CertificateBuilder, crl_url: str | None) -> x509.CertificateBuilder:
    if not crl_url:
        return builder
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
    return builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)


def issue_tls(ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, which: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A TLS certificate: the simulators' server one (`TLS_SERVER`, for localhost and the loopback
    addresses) or the operator's client one (`TLS_CLIENT`, CN `OPERATOR_CN`), kept apart from the
    signing keys so that a TLS endpoint never holds a key that signs answers."""
    now = dt.datetime.now(dt.UTC)
    key = _new_key()
    server = which == TLS_SERVER
    names: list[x509.GeneralName] = []
    if server:
        for name in TLS_SERVER_NAMES:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                names.append(x509.DNSName(name))
    else:
        names.append(x509.DNSName(f"{OPERATOR_CN}.ehis.test"))
    cn, org = ("localhost", "EHİS test simulators") if server else (OPERATOR_CN, OPERATOR_ORG)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, org))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def issue_crl(ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate,
              revoked: dict[int, dt.datetime], number: int) -> x509.CertificateRevocationList:
    """The CA's CRL listing `revoked` (serial -> when), valid for CRL_VALIDITY."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    return builder.sign(ca_key, hashes.SHA256())


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


def init_pki(directory: Path, systems: dict[str, str], *, force: bool = False, crl_url: str | None = None) -> Pki:
    """Write a CA, the operator's identity and one identity per system (`code -> body`), with the
    CRL, a revoked certificate of every party and the TLS certificates. `crl_url`: the CRL
    distribution point the certificates name (e.g. the simulators' `<url>/pki/ca.crl`).

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
    parties = {OPERATOR_CN: OPERATOR_ORG, **systems}
    for cn, org in parties.items():
        write_identity(staging, cn, *issue(ca_key, ca_cert, cn, org, crl_url=crl_url))
    write_identity(staging, TSA_CN, *issue(ca_key, ca_cert, TSA_CN, TSA_ORG, crl_url=crl_url, time_stamping=True))
    _complete(staging, Identity("ca", ca_key, ca_cert), parties, crl_url)
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


def ensure_pki(directory: Path, *, crl_url: str | None = DEFAULT_CRL_URL) -> Pki:
    """The PKI in `directory`, made first if there is none (the working default of the CLI), and
    given what it lacks: a certificate for a party added since (a source built after it was made),
    the CRL and revoked certificates, the TLS certificates (a PKI made by an older version), a
    CRL re-issued when half its validity is gone. Concurrent processes take turns (a file lock)."""
    directory = directory.expanduser()
    if not (directory / CA_FILE).exists():
        return init_pki(directory, pki_parties(), crl_url=crl_url)
    with _locked(directory):
        ca = _load_identity(directory.resolve(), "ca")
        parties = {OPERATOR_CN: OPERATOR_ORG, **pki_parties()}
        for cn, org in parties.items():
            if not (directory / f"{cn}.pem").exists():
                _replace_identity(directory, cn, *issue(ca.key, ca.cert, cn, org, crl_url=crl_url))
        if not (directory / f"{TSA_CN}.pem").exists():  # a PKI made before the TSA existed
            _replace_identity(directory, TSA_CN, *issue(ca.key, ca.cert, TSA_CN, TSA_ORG, crl_url=crl_url,
                                                        time_stamping=True))
        _complete(directory, ca, parties, crl_url)
    return Pki(directory)


def revoke(directory: Path, name: str) -> x509.Certificate:
    """Revoke `name`'s current certificate: the CA re-issues its CRL with it listed. Returns it."""
    directory = directory.expanduser()
    with _locked(directory):
        ca = _load_identity(directory.resolve(), "ca")
        cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
        _write_crl(directory, ca, {cert.serial_number: dt.datetime.now(dt.UTC)})
    return cert


def read_crl(directory: Path) -> x509.CertificateRevocationList | None:
    path = directory / CRL_FILE
    return x509.load_der_x509_crl(path.read_bytes()) if path.exists() else None


def _complete(directory: Path, ca: Identity, parties: dict[str, str], crl_url: str | None) -> None:
    """Add the revoked certificates, the TLS certificates and a current CRL where missing."""
    revoked_dir = directory / REVOKED_DIR
    revoked_dir.mkdir(exist_ok=True)
    missing = [cn for cn in parties if not (revoked_dir / f"{cn}.pem").exists()]
    listed: dict[int, dt.datetime] = {}
    if missing:
        key = _new_key()  # one key for every revoked certificate: RSA key generation is the slow part
        for cn in missing:
            _, cert = issue(ca.key, ca.cert, cn, parties[cn], crl_url=crl_url, key=key)
            _replace_identity(revoked_dir, cn, key, cert)
            listed[cert.serial_number] = dt.datetime.now(dt.UTC)
    tls_dir = directory / TLS_DIR
    tls_dir.mkdir(exist_ok=True)
    for which in (TLS_SERVER, TLS_CLIENT):
        if not (tls_dir / f"{which}.pem").exists():
            _replace_identity(tls_dir, which, *issue_tls(ca.key, ca.cert, which))
    current = read_crl(directory)
    for path in revoked_dir.glob("*.pem"):
        serial = x509.load_pem_x509_certificate(path.read_bytes()).serial_number
        if current is None or current.get_revoked_certificate_by_serial_number(serial) is None:
            listed.setdefault(serial, dt.datetime.now(dt.UTC))
    stale = current is not None and current.next_update_utc is not None and (
        current.next_update_utc - dt.datetime.now(dt.UTC) < CRL_VALIDITY / 2)
    if listed or current is None or stale:
        _write_crl(directory, ca, listed)


def _write_crl(directory: Path, ca: Identity, add: dict[int, dt.datetime]) -> None:
    """Re-issue the CRL with what it lists plus `add`, under a higher CRL number (caller holds the lock)."""
    current = read_crl(directory)
    revoked: dict[int, dt.datetime] = {}
    number = 1
    if current is not None:
        revoked = {entry.serial_number: entry.revocation_date_utc for entry in current}
        try:
            number = current.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        except x509.ExtensionNotFound:
            pass
    crl = issue_crl(ca.key, ca.cert, {**add, **revoked}, number)
    staging = directory / f".{CRL_FILE}.{os.getpid()}"
    staging.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    os.replace(staging, directory / CRL_FILE)  # readers see the old list or the new one, never half


def _replace_identity(directory: Path, name: str, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
    """Write an identity so that a reader never sees a .pem without its key (the .pem marks it present)."""
    staging = Path(tempfile.mkdtemp(prefix=".party-", dir=directory))
    write_identity(staging, name, key, cert)
    for suffix in (".key", ".pem"):
        os.replace(staging / f"{name}{suffix}", directory / f"{name}{suffix}")
    shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the PKI directory across processes (flock on a lock file)."""
    with open(directory / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@cache
def _load_identity(directory: Path, name: str) -> Identity:
    key = serialization.load_pem_private_key((directory / f"{name}.key").read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{name}.key is not an RSA key")
    cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
    return Identity(name, key, cert)
