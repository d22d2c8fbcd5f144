"""The simulators' RFC 3161 time-stamping authority: `POST /tsa` with a TimeStampReq, answered
with a TimeStampResp signed by the test PKI's `ehis-tsa` certificate.

Only what a real TSA does for the hub: SHA-256/384/512 imprints, the nonce echoed, the
certificate included when asked, and the signing-certificate-v2 attribute (ESSCertIDv2) that
`openssl ts -verify` and rfc3161-client require. The token is CMS SignedData built with
asn1crypto, signed with the key the PKI already loaded. `fail` makes it refuse (tests of a TSA
that answers but will not stamp).
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.requests import Request
from starlette.responses import Response

from ehis.security.pki import Identity, Pki

POLICY = "1.3.6.1.4.1.99999.1.3161"  # a test policy arc: the hub does not pin a policy
REQUEST_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REQUEST = 16 * 1024
DIGESTS = {"sha256": 32, "sha384": 48, "sha512": 64}


class TimeStamper:
    """Signs time-stamp tokens as one TSA identity (build once: the key is loaded)."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        der = identity.cert.public_bytes(serialization.Encoding.DER)
        self._cert = asn1_x509.Certificate.load(der)
        self._cert_hash = hashlib.sha256(der).digest()
        self._serials = itertools.count(int(datetime.now(UTC).timestamp() * 1000))
        self.fail = False  # answer "rejection" instead of a token

    def reply(self, body: bytes) -> bytes:
        """A DER TimeStampResp for a DER TimeStampReq (a rejection for one it cannot take)."""
        if self.fail:
            return _rejection("the TSA is told to refuse", "system_failure")
        try:
            request = tsp.TimeStampReq.load(body)
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            if DIGESTS.get(algorithm) != len(imprint["hashed_message"].native):
                return _rejection("unsupported or malformed message imprint", "bad_alg")
            nonce = request["nonce"].native
            cert_req = bool(request["cert_req"].native)
        except (ValueError, TypeError, KeyError):
            return _rejection("not a TimeStampReq", "bad_request")
        return self._token(imprint, nonce, cert_req).dump()

    def _token(self, imprint: tsp.MessageImprint, nonce: int | None, cert_req: bool) -> tsp.TimeStampResp:
        now = datetime.now(UTC).replace(microsecond=(datetime.now(UTC).microsecond // 1000) * 1000)
        info = {"version": "v1", "policy": POLICY, "message_imprint": imprint, "serial_number": next(self._serials),
                "gen_time": now, "accuracy": {"seconds": 1}, "ordering": False}
        if nonce is not None:
            info["nonce"] = nonce
        tst_info = tsp.TSTInfo(info)
        content = tst_info.dump()
        attributes = [
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": now})]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
            cms.CMSAttribute({"type": "signing_certificate_v2",
                              "values": [{"certs": [{"cert_hash": self._cert_hash}]}]}),
        ]
        signed_attrs = cms.CMSAttributes(sorted(attributes, key=lambda a: a.dump()))  # DER: a SET OF is sorted
        signature = self.identity.key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
        signer = cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
                "issuer": self._cert.issuer, "serial_number": self._cert.serial_number})}),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
            "signature": signature,
        })
        signed_data = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(content)},
            "signer_infos": [signer],
        }
        if cert_req:
            signed_data["certificates"] = [self._cert]
        token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})


def _rejection(text: str, failure: str) -> bytes:
    """A TimeStampResp with only its status (asn1crypto's model would insist on a token)."""
    status = tsp.PKIStatusInfo({"status": "rejection", "status_string": [text],
                                "fail_info": tsp.PKIFailureInfo({failure})}).dump()
    return core.Sequence(contents=status).dump()


def tsa_endpoint(pki: Pki) -> tuple[TimeStamper, object]:
    """The stamper and the Starlette endpoint of `POST /tsa` (RFC 3161 over HTTP, section 3.4)."""
    stamper = TimeStamper(pki.tsa())

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_REQUEST or request.headers.get("content-type", "").split(";")[0].strip() != REQUEST_TYPE:
            return Response("a TimeStampReq (application/timestamp-query) is expected", status_code=415,
                            media_type="text/plain")
        return Response(stamper.reply(body), media_type=REPLY_TYPE)

    return stamper, endpoint
