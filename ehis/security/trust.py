"""Which signing certificates the hub trusts: those that chain to the configured CA and are
not revoked.

A chain is validated once per certificate (cryptography's X.509 verifier, the policy signxml
uses: the signer's KeyUsage must allow digital signatures), then its revocation status is learned
from its issuer's CRL (`ehis.security.revocation`). The result is kept until the certificate
expires, `freshness` passes or the CRL that vouched for it is due again, whichever is first;
validating per message would re-read the CA and rebuild the chain for every answer. A revoked
certificate is remembered as such (revocation is final).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from ehis.errors import SignatureInvalid
from ehis.security.revocation import CrlSources, RevocationChecker

MAX_REMEMBERED = 4096


def _digital_signature(policy: object, cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    if not usage.digital_signature:
        raise ValueError("the certificate's KeyUsage does not allow digital signatures")


class TrustStore:
    def __init__(self, ca_file: Path, *, freshness: float = 300.0, clock: Callable[[], float] = time.time,
                 revocation: RevocationChecker | None = None):
        """`revocation`: how revocation is learned; default the CRL beside `ca_file`, fail-closed."""
        self.ca_file = Path(ca_file)
        self._store = Store(x509.load_pem_x509_certificates(self.ca_file.read_bytes()))
        self._freshness = freshness
        self._clock = clock
        self.revocation = revocation if revocation is not None else RevocationChecker.beside(
            self.ca_file, crls=CrlSources(freshness=freshness, clock=clock))
        self._trusted: OrderedDict[bytes, float] = OrderedDict()  # fingerprint -> trusted until (epoch s)
        self._lock = threading.Lock()  # check() runs on the loop and in threads (large answers)

    def check(self, cert: x509.Certificate, intermediates: Sequence[x509.Certificate] = (), *,
              fingerprint: bytes | None = None) -> None:
        """Raise `SignatureInvalid` unless `cert` chains to the CA, is valid now and is not revoked.

        `fingerprint`: `cert`'s SHA-256 fingerprint when the caller has it already (the verifier's
        parsed-certificate cache), so it is not computed again for every message."""
        key = fingerprint if fingerprint is not None else cert.fingerprint(SHA256())
        now = self._clock()
        with self._lock:
            until = self._trusted.get(key)
            if until is not None and now < until:
                self._trusted.move_to_end(key)
                return
            self._trusted.pop(key, None)
        moment = datetime.fromtimestamp(now, UTC)
        if moment > cert.not_valid_after_utc:
            raise SignatureInvalid(f"the signing certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        if moment < cert.not_valid_before_utc:
            raise SignatureInvalid(f"the signing certificate is valid only from {cert.not_valid_before_utc:%Y-%m-%d}")
        verifier = (PolicyBuilder().store(self._store).time(moment)
                    .extension_policies(ee_policy=ExtensionPolicy.permit_all().require_present(
                        x509.KeyUsage, Criticality.AGNOSTIC, _digital_signature),
                        ca_policy=ExtensionPolicy.webpki_defaults_ca())
                    .build_client_verifier())
        try:
            chain = verifier.verify(cert, list(intermediates)).chain
        except VerificationError as exc:
            reason = str(exc).split(" (encountered", 1)[0]
            raise SignatureInvalid(f"the signing certificate does not chain to a trusted CA: {reason[:200]}") from None
        # a certificate that is itself a trust anchor has no issuer whose CRL could list it
        good_until = self.revocation.check(cert, chain[1]) if len(chain) > 1 else now + self._freshness
        with self._lock:
            self._trusted[key] = min(now + self._freshness, good_until, cert.not_valid_after_utc.timestamp())
            while len(self._trusted) > MAX_REMEMBERED:
                self._trusted.popitem(last=False)
