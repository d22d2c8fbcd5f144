"""The simulators' RFC 3161 time-stamping authority, as the hub's client and openssl see it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ehis.audit.timestamps import TimestampError, TsaClient, check_token, load_roots
from ehis.simulators import create_app
from ehis.testing import missing_service


@pytest.fixture
def client(pki) -> TsaClient:
    return TsaClient("http://simulators.test/tsa", load_roots(pki.ca_file),
                     transport=httpx.ASGITransport(app=create_app(pki)))


def test_the_tsa_certificate_is_for_time_stamping_only(pki) -> None:
    usage = pki.tsa().cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert usage.critical and list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


async def test_a_stamp_verifies_for_exactly_its_data(client: TsaClient, pki, tmp_path: Path) -> None:
    stamp = await client.stamp(b"checkpoint bytes")
    assert check_token(stamp.token, b"checkpoint bytes", client.roots).time == stamp.time
    with pytest.raises(TimestampError, match="does not verify"):
        check_token(stamp.token, b"checkpoint bytez", client.roots)
    changed = bytearray(stamp.token)
    changed[len(changed) // 2] ^= 1
    with pytest.raises(TimestampError):
        check_token(bytes(changed), b"checkpoint bytes", client.roots)
    openssl = shutil.which("openssl")
    if openssl is None:
        missing_service("openssl is not installed (.ci/run installs it)")
    (tmp_path / "data").write_bytes(b"checkpoint bytes")
    (tmp_path / "stamp.tsr").write_bytes(stamp.token)
    done = await asyncio.to_thread(
        subprocess.run, [openssl, "ts", "-verify", "-data", str(tmp_path / "data"), "-in", str(tmp_path / "stamp.tsr"),
                         "-CAfile", str(pki.ca_file)], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stderr
    await client.close()


async def test_a_refusing_or_absent_tsa_is_a_timestamp_error(pki) -> None:
    app = create_app(pki)
    app.state.tsa.fail = True
    refusing = TsaClient("http://simulators.test/tsa", load_roots(pki.ca_file), transport=httpx.ASGITransport(app=app))
    with pytest.raises(TimestampError, match="refused|GRANTED"):
        await refusing.stamp(b"x")
    absent = TsaClient("http://127.0.0.1:9/tsa", load_roots(pki.ca_file), timeout=1)
    with pytest.raises(TimestampError, match="cannot be reached"):
        await absent.stamp(b"x")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        assert (await http.post("http://simulators.test/tsa", content=b"nonsense")).status_code == 415
