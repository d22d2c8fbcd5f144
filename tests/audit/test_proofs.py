"""Proofs of a real log: the hub in process with full evidence for din, then `ehis log proof`,
`check-proof` (and openssl and xmlsec1 on its parts), a report with proofs over archived records."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ehis.audit import open_log
from ehis.audit.commands import register
from ehis.audit.proofs import ProofError, check
from ehis.bus.client import BusClient
from ehis.bus.envelope import Requester
from ehis.config import Settings
from ehis.simulators import create_app
from ehis.testing import hub_in_process, missing_service

from .evidence_support import KEY, verify

CALLER = Requester(subsystem="emek-muqavilesi", user="AZ0000001", purpose="müqavilə 2025/118")
FINS = ("2KLM3NP", "5GXM4DZ")


def tool(name: str) -> str:
    """openssl or xmlsec1; CI installs both, so there a missing one fails instead of skipping."""
    found = shutil.which(name)
    if found is None:
        missing_service(f"{name} is not installed (.ci/run installs it)")
    return found


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, pki) -> tuple[Settings, dict[str, str]]:
    """A log written by the hub: din in full evidence mode, vergiler in metadata mode."""
    data = tmp_path_factory.mktemp("proofs")
    options = {"evidence_key": __import__("base64").b64encode(KEY.secret).decode(),
               "sources": {"din": {"evidence": "full"}}}
    ids: dict[str, str] = {}

    async def run() -> None:
        async with hub_in_process(data, pki, create_app(pki, rng=random.Random(3)), **options) as hub:
            client = BusClient(hub.transport, requester=CALLER, default_timeout=10)
            for fin in FINS:
                reply = await client.request("din.person", {"fin": fin})
                assert reply.status == "ok", reply
                ids[fin] = reply.id
            again = await client.request("din.person", {"fin": FINS[0]})  # a cache hit: the same answer
            assert again.meta.cache == "hit"
            ids["hit"] = again.id
            kept = await hub.parts.evidence.get(again.meta.evidence)
            assert kept is not None and b"Envelope" in kept.open(KEY)
            assert b"Envelope" not in again.model_dump_json().encode()

    asyncio.run(run())
    settings = Settings(data_dir=data, pki_dir=pki.directory, simulator_url="http://simulators.test",
                        archive_dir=data / "archive", **options)
    return settings, ids


def cli(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="ehis")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["log", *argv])
    capsys.readouterr()
    code = args.run(args, settings)
    return code, capsys.readouterr().out


@pytest.fixture
def stamped_settings(logged: tuple[Settings, dict[str, str]], pki, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The log's settings, with the simulators' TSA reachable in process (the proof's seal)."""
    import httpx

    from ehis.audit import wiring

    app = create_app(pki)
    original = wiring.tsa_client
    monkeypatch.setattr(wiring, "tsa_client", lambda s, p, t=None: original(s, p, httpx.ASGITransport(app=app)))
    return logged[0]


def test_the_hub_signed_and_stamped_its_log_and_kept_dins_answers(logged, pki) -> None:
    settings, _ = logged

    async def run():
        async with open_log(settings.database) as log:
            return await verify(log, pki, key=KEY)

    report = asyncio.run(run())
    assert report.ok and report.checkpoints >= 1 and report.stamped == report.checkpoints and report.answers == 2


def test_a_proof_verifies_offline_and_refuses_any_changed_byte(stamped_settings: Settings, logged, pki,
                                                              tmp_path: Path, capsys) -> None:
    _, ids = logged
    out_file = tmp_path / "proof.json"
    code, out = cli(stamped_settings, capsys, "proof", ids[FINS[0]], "-o", str(out_file))
    assert code == 0, out
    code, out = cli(stamped_settings, capsys, "check-proof", str(out_file), "--ca", str(pki.ca_file))
    assert code == 0 and "valid proof" in out and "1 signed source answers included and verified" in out
    assert FINS[0] in out and "din.person" in out
    data = out_file.read_bytes()
    body = json.loads(data)["payload"]
    assert FINS[1] not in data.decode()  # the path is hashes: no one else's record
    assert len(body["inclusion"]["path"]) <= 3 and body["answer"]

    from ehis.audit.checkpoints import LogTrust

    trust = LogTrust.from_files(pki.ca_file)
    step = max(1, len(data) // 400)
    for position in [*range(0, len(data), step), len(data) - 1]:
        changed = bytearray(data)
        changed[position] = changed[position] ^ 0x01 if changed[position] != 0x0A else 0x20
        with pytest.raises(ProofError):
            check(bytes(changed), trust, pki.ca_file)
    with pytest.raises(ProofError):
        check(data + b" ", trust, pki.ca_file)


def test_the_proofs_parts_verify_with_openssl_and_xmlsec1(stamped_settings: Settings, logged, pki,
                                                          tmp_path: Path, capsys) -> None:
    openssl, xmlsec1 = tool("openssl"), tool("xmlsec1")
    _, ids = logged
    proof, parts = tmp_path / "proof.json", tmp_path / "parts"
    assert cli(stamped_settings, capsys, "proof", ids["hit"], "-o", str(proof))[0] == 0
    code, out = cli(stamped_settings, capsys, "check-proof", str(proof), "--ca", str(pki.ca_file),
                    "--extract", str(parts))
    assert code == 0 and "1 signed source answers" in out  # the hit's record points at the kept answer
    commands = [line.split() for line in out.splitlines() if line.startswith(("  openssl", "  xmlsec1"))]
    xml = sorted(parts.glob("*.xml"))
    assert any(p.name.endswith("answer.xml") for p in xml) and len(commands) == len(xml) + 2
    for command in commands:
        command[0] = openssl if command[0] == "openssl" else xmlsec1
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    # and the tools refuse a changed part
    answer = next(p for p in xml if p.name.endswith("answer.xml"))
    answer.write_bytes(answer.read_bytes().replace(b"<", b"<", 1).replace(FINS[0].encode(), b"1AAAAAA", 1))
    done = subprocess.run([xmlsec1, "--verify", "--trusted-pem", str(pki.ca_file), str(answer)], capture_output=True, check=False)
    assert done.returncode != 0
    payload = parts / "payload.json"
    payload.write_bytes(payload.read_bytes().replace(b'"seq":', b'"seq": ', 1))
    done = subprocess.run([openssl, "ts", "-verify", "-data", str(payload), "-in", str(parts / "seal.tsr"),
                           "-CAfile", str(pki.ca_file)], capture_output=True, check=False)
    assert done.returncode != 0


def test_report_with_proofs_reads_archived_records(stamped_settings: Settings, logged, pki, tmp_path: Path,
                                                   capsys) -> None:
    settings = stamped_settings.model_copy(update={"archive_dir": tmp_path / "archive"})
    later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    code, out = cli(settings, capsys, "archive", "--before", later)  # every record so far moves to an archive
    assert code == 0 and "archived" in out
    code, out = cli(settings, capsys, "report", FINS[0])
    assert code == 0 and out.rstrip().endswith("2 accesses")  # read from the archive
    code, out = cli(settings, capsys, "verify", "--archives")
    assert code == 0 and "2 kept signed answers verified" in out, out
    report = tmp_path / "report.json"
    code, out = cli(settings, capsys, "report", FINS[0], "--with-proofs", str(report))
    assert code == 0, out
    code, out = cli(settings, capsys, "check-proof", str(report), "--ca", str(pki.ca_file))
    assert code == 0 and f"report on {FINS[0]} with 2 proofs" in out and "2 signed source answers" in out
