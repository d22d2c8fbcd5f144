"""`ehis log checkpoint|proof|check-proof` and the checkpoint part of `ehis log verify`.

`check-proof` needs nothing but the file and the CA certificates: it is what a citizen or an
auditor runs, and `--extract` writes the parts for openssl and xmlsec1 with the commands to run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from ehis.audit import wiring
from ehis.audit.attest import verify_against_checkpoints
from ehis.audit.checkpointer import Checkpointer
from ehis.audit.checkpoints import CheckpointError, LogTrust, export
from ehis.audit.log import ExchangeLog, open_log
from ehis.audit.model import VerifyReport
from ehis.audit.proof_export import Exporter
from ehis.audit.proofs import ProofError, check, parts
from ehis.audit.timestamps import TimestampError
from ehis.config import Settings
from ehis.security.pki import OPERATOR_CN, ensure_pki

T = TypeVar("T")


def register(actions: argparse._SubParsersAction) -> None:
    checkpoint = actions.add_parser("checkpoint", help="sign the log's head now and time-stamp it")
    checkpoint.add_argument("--export", type=Path, default=None, metavar="DIR",
                            help="also write the newest checkpoint to DIR (to keep elsewhere)")
    checkpoint.set_defaults(run=_checkpoint)

    proof = actions.add_parser("proof", help="a proof file of one exchange, checkable offline")
    proof.add_argument("request_id")
    proof.add_argument("-o", "--output", type=Path, default=None, help="default proof-<request id>.json")
    proof.set_defaults(run=_proof)

    checker = actions.add_parser("check-proof", help="verify a proof (or a report with proofs) offline")
    checker.add_argument("file", type=Path)
    checker.add_argument("--ca", type=Path, default=None, help="CA certificates (PEM); default the PKI's ca.pem")
    checker.add_argument("--tsa-ca", type=Path, default=None, help="the TSA's CA (PEM); default --ca")
    checker.add_argument("--operator", default=OPERATOR_CN, help="common name of the checkpoints' signer")
    checker.add_argument("--extract", type=Path, default=None, metavar="DIR",
                         help="also write the parts, for openssl and xmlsec1")
    checker.set_defaults(run=_check_proof)


def verify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, action="append", default=[], metavar="FILE",
                        help="an exported checkpoint kept elsewhere (repeatable)")
    parser.add_argument("--no-answers", action="store_true", help="skip opening and verifying the kept answers")


def _run(settings: Settings, use: Callable[[ExchangeLog, Checkpointer], Awaitable[T]]) -> T:
    pki = ensure_pki(settings.pki_path)

    async def run() -> T:
        async with open_log(settings.database) as log:
            checkpoints = wiring.checkpointer(settings, log.backend, pki)
            try:
                return await use(log, checkpoints)
            finally:
                if checkpoints.tsa is not None:
                    await checkpoints.tsa.close()

    return asyncio.run(run())


def full_verify(settings: Settings, args: argparse.Namespace, directory: Path | None) -> VerifyReport:
    """The chain (and archives), then the checkpoints, exported checkpoints and kept answers."""
    pki = ensure_pki(settings.pki_path)
    trust = wiring.log_trust(settings, pki)
    exported = [path.read_bytes() for path in args.checkpoint]
    key = None if args.no_answers else wiring.evidence_key(settings)

    async def run() -> VerifyReport:
        async with open_log(settings.database) as log:
            chain = await (log.verify_archives(directory) if directory is not None else log.verify())
            return await verify_against_checkpoints(log.backend, chain, trust, archive_dir=directory,
                                                    exported=exported, key=key, ca_file=pki.ca_file)

    return asyncio.run(run())


def _checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    async def use(log: ExchangeLog, checkpoints: Checkpointer) -> int:
        made = await checkpoints.checkpoint()
        last = await log.backend.last_checkpoint()
        if last is None:
            print("no record to sign: the log is empty")
            return 0
        stamped = "time-stamped" if checkpoints.unstamped_since is None else (
            f"NOT time-stamped ({checkpoints.last_error or 'no TSA configured'})")
        print(f"{'signed' if made else 'already signed'}: checkpoint at seq {last.seq} hash {last.hash}; {stamped}")
        if args.export is not None:
            print(f"exported to {export(last, args.export)}")
        return 0

    try:
        return _run(settings, use)
    except CheckpointError as exc:
        print(f"ehis log checkpoint: {exc}", file=sys.stderr)
        return 1


def _proof(args: argparse.Namespace, settings: Settings) -> int:
    async def use(log: ExchangeLog, checkpoints: Checkpointer) -> bytes:
        exporter = Exporter(log.backend, checkpoints, settings.archive_path, wiring.evidence_key(settings))
        return await exporter.single(args.request_id)

    try:
        data = _run(settings, use)
    except (ProofError, CheckpointError, TimestampError) as exc:
        print(f"ehis log proof: {exc}", file=sys.stderr)
        return 1
    output = args.output or Path(f"proof-{args.request_id}.json")
    output.write_bytes(data)
    print(f"proof of request {args.request_id} written to {output} ({len(data)} bytes);"
          f" check it with: ehis log check-proof {output}")
    return 0


def report_with_proofs(settings: Settings, subject: str, output: Path) -> int:
    async def use(log: ExchangeLog, checkpoints: Checkpointer) -> bytes:
        exporter = Exporter(log.backend, checkpoints, settings.archive_path, wiring.evidence_key(settings))
        return await exporter.report(subject)

    try:
        data = _run(settings, use)
    except (ProofError, CheckpointError, TimestampError) as exc:
        print(f"ehis log report: {exc}", file=sys.stderr)
        return 1
    output.write_bytes(data)
    print(f"report with proofs written to {output}; check it with: ehis log check-proof {output}")
    return 0


def _check_proof(args: argparse.Namespace, settings: Settings) -> int:
    ca = args.ca or settings.pki_path / "ca.pem"
    trust = LogTrust.from_files(ca, args.tsa_ca, args.operator)
    data = args.file.read_bytes()
    try:
        checked = check(data, trust, ca)
    except ProofError as exc:
        print(f"REFUSED: {exc}")
        return 1
    what = f"report on {checked.subject} with {len(checked.records)} proofs" if checked.subject else "proof"
    print(f"{args.file}: valid {what}, sealed {checked.sealed_at:%Y-%m-%d %H:%M:%S} UTC by the TSA")
    for record, stamped in zip(checked.records, checked.stamped_at, strict=True):
        outcome = record.outcome if record.error_code is None else f"{record.outcome}/{record.error_code}"
        print(f"- seq {record.seq} request {record.request_id}: {record.time:%Y-%m-%d %H:%M:%S} UTC"
              f" {record.subsystem} (official {record.user or '-'}) asked {record.service} about"
              f" {record.subject or '-'}; purpose: {record.purpose or '-'}; {outcome};"
              f" logged before {stamped:%Y-%m-%d %H:%M:%S} UTC (time-stamp)")
    print(f"{checked.answers} signed source answers included and verified")
    if args.extract is not None:
        _extract(data, args.extract, ca, args.tsa_ca or ca)
    return 0


def _extract(data: bytes, directory: Path, ca: Path, tsa_ca: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    files = parts(data)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    print(f"parts written to {directory}; the same checks with standard tools:")
    print(f"  openssl ts -verify -data {directory}/payload.json -in {directory}/seal.tsr -CAfile {tsa_ca}")
    for name in sorted(files):
        if name.endswith(".xml"):
            print(f"  xmlsec1 --verify --trusted-pem {ca} {directory}/{name}")
        elif name.endswith(".tsr") and name != "seal.tsr":
            document = name.removesuffix(".tsr") + ".xml"
            print(f"  openssl ts -verify -data {directory}/{document} -in {directory}/{name} -CAfile {tsa_ca}")


def checkpoint_before_archive(settings: Settings) -> None:
    """Sign the head before records leave the database, so every archived record is covered."""
    async def use(log: ExchangeLog, checkpoints: Checkpointer) -> None:
        await checkpoints.checkpoint()

    _run(settings, use)
