"""`ehis log verify|search|report|archive` and `ehis outages`: the operator's view of the journal.

These print personal data (subjects, officials, purposes) to the operator's terminal on purpose:
that is what the journal is for. None of it goes to the application log.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import sys
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ehis.audit import evidence_commands
from ehis.audit.archive import ArchiveError
from ehis.audit.chain import utc
from ehis.audit.log import ExchangeLog, open_log
from ehis.audit.model import LogQuery, StoredRecord, VerifyReport
from ehis.audit.outages import open_outages
from ehis.config import Settings
from ehis.errors import ErrorCode
from ehis.identifiers import normalize_subject

T = TypeVar("T")
ERROR_CODES = [code.value for code in ErrorCode]


def register(commands: argparse._SubParsersAction) -> None:
    """Add `log` (verify, search, report, archive) and `outages` to the `ehis` command."""
    log = commands.add_parser("log", help="the exchange log: verify, search, subject report, archive")
    actions = log.add_subparsers(dest="sub", required=True, metavar="ACTION")

    verify = actions.add_parser("verify", help="check the hash chain; exit 1 if it is broken")
    verify.add_argument("--archives", action="store_true", help="also check the archive files and their chain")
    verify.add_argument("--dir", type=Path, default=None, help="archive directory (default: settings archive_dir)")
    evidence_commands.verify_options(verify)
    verify.set_defaults(run=_verify)

    search = actions.add_parser("search", help="exchange records, newest first")
    search.add_argument("--subject", type=_subject, default=None, help="a FIN or VÖEN, in any case")
    search.add_argument("--subsystem", default=None, help="the caller, e.g. emek-muqavilesi")
    search.add_argument("--service", default=None, help="e.g. din.person")
    search.add_argument("--outcome", type=_outcome, default=None, help="ok or error")
    search.add_argument("--error", dest="error_code", type=_error_code, default=None, metavar="CODE",
                        help=f"one error code: {', '.join(ERROR_CODES)}")
    _window(search)
    search.add_argument("--limit", type=_limit, default=100, help="at most this many records (1-10000)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(run=_search)

    report = actions.add_parser("report", help="who accessed a person's data, when and why")
    report.add_argument("subject", type=_subject, help="the data subject's FIN or VÖEN, in any case")
    _window(report)
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument("--with-proofs", type=Path, default=None, metavar="FILE",
                        help="write the report with a proof of every record (live and archived) to FILE")
    report.set_defaults(run=_report)

    archive = actions.add_parser("archive", help="move old records to an archive file")
    archive.add_argument("--before", type=_when, default=None,
                         help="ISO date (default: now minus log_retention_days)")
    archive.add_argument("--dir", type=Path, default=None, help="default: settings archive_dir")
    archive.add_argument("--no-compress", action="store_true", help="plain JSON lines instead of gzip")
    archive.set_defaults(run=_archive)
    evidence_commands.register(actions)

    outages = commands.add_parser("outages", help="when each source was unavailable, newest first")
    outages.add_argument("--source", default=None, help="one source system, e.g. din")
    outages.add_argument("--since", type=_when, default=None, help="ISO date: outages going on since then")
    outages.add_argument("--json", action="store_true", help="print JSON")
    outages.set_defaults(run=_outages)


def _window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_when, default=None, help="ISO date or time (UTC unless given)")
    parser.add_argument("--until", type=_when, default=None, help="ISO date or time, exclusive")


def _subject(text: str) -> str:
    """A subject as the log keeps it (`5gxm4dz` -> `5GXM4DZ`): the hub stores normalised identifiers."""
    try:
        return normalize_subject(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _outcome(text: str) -> str:
    value = text.strip().lower()
    if value in ("ok", "error"):
        return value
    if value in ERROR_CODES:
        raise argparse.ArgumentTypeError(f"{text!r} is an error code: use --error {value} (--outcome is ok or error)")
    raise argparse.ArgumentTypeError(f"{text!r}: --outcome is ok or error (--error CODE for one error code)")


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1 to 10000")
    return int(text)


def _error_code(text: str) -> str:
    value = text.strip().lower()
    if value in ERROR_CODES:
        return value
    near = difflib.get_close_matches(value, ERROR_CODES, n=1)
    hint = f"did you mean {near[0]}? " if near else ""
    raise argparse.ArgumentTypeError(f"no error code {text!r}: {hint}the codes are {', '.join(ERROR_CODES)}")


def _unknown(kind: str, value: str | None, known: Collection[str]) -> None:
    """Say so when a name matches nothing the hub knows (a typo would otherwise find nothing, silently)."""
    if value is None or value in known:
        return
    near = difflib.get_close_matches(value, list(known), n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    print(f"note: no {kind} {value!r} in this hub's catalogue and access table{hint}", file=sys.stderr)


def _when(text: str) -> datetime:
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from None


def _with_log(settings: Settings, use: Callable[[ExchangeLog], Awaitable[T]]) -> T:
    async def run() -> T:
        async with open_log(settings.database) as log:
            return await use(log)

    return asyncio.run(run())


def _print_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") for v in value]
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    directory = args.dir or settings.archive_path
    report: VerifyReport = evidence_commands.full_verify(settings, args, directory if args.archives else None)
    what = f"archives in {directory} and the live log" if args.archives else "exchange log"
    if report.ok:
        print(f"{what}: ok, {report.checked} records checked; head seq {report.last_seq} hash {report.last_hash};"
              f" {report.checkpoints} signed checkpoints reached ({report.stamped} time-stamped),"
              f" {report.answers} kept signed answers verified")
        return 0
    where = f" in {report.archive}" if report.archive else ""
    seq = f" at seq {report.first_bad_seq}" if report.first_bad_seq is not None else ""
    print(f"{what}: BROKEN{where}{seq}: {report.problem}: {report.detail}"
          f" ({report.checked} records checked before it)")
    return 1


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from ehis.catalogue import METASERVICES, SERVICES

    _unknown("service", args.service, set(SERVICES) | set(METASERVICES))
    _unknown("subsystem", args.subsystem, settings.access)
    outcome = "error" if args.error_code and args.outcome is None else args.outcome
    query = LogQuery(subject=args.subject, subsystem=args.subsystem, service=args.service, outcome=outcome,
                     error_code=args.error_code, since=args.since, until=args.until, limit=args.limit)
    records = _with_log(settings, lambda log: log.search(query))
    if args.json:
        _print_json(records)
    else:
        for record in records:
            print(_record_line(record))
        print(f"{len(records)} records")
    return 0


def _record_line(r: StoredRecord) -> str:
    outcome = r.outcome if r.error_code is None else f"{r.outcome}/{r.error_code}"
    return (f"{r.seq:>8}  {_time(r.time)}  {r.subsystem}  user={r.user or '-'}  {r.service}  "
            f"subject={r.subject or '-'}  {outcome}  {r.duration_ms:.0f} ms")


def _report(args: argparse.Namespace, settings: Settings) -> int:
    if args.with_proofs is not None:
        return evidence_commands.report_with_proofs(settings, args.subject, args.with_proofs)
    report = _with_log(settings, lambda log: log.subject_report(args.subject, args.since, args.until,
                                                                archive_dir=settings.archive_path))
    if args.json:
        _print_json(report)
        return 0
    print(f"Who accessed the data of {report.subject} (generated {_time(report.generated_at)},"
          f" from the exchange log and its archives)")
    if not report.accesses:
        print("No access to this person's data is recorded.")
    for a in report.accesses:
        result = "answered" if a.outcome == "ok" else f"failed ({a.error_code or a.outcome})"
        print(f"- {_time(a.time)}: {a.subsystem}, official {a.user or '(not given)'}, asked {a.service}"
              f" from {a.source}; purpose: {a.purpose or '(not given)'}; {result}")
    print(f"{len(report.accesses)} accesses")
    return 0


def _archive(args: argparse.Namespace, settings: Settings) -> int:
    before = args.before or datetime.now(UTC) - timedelta(days=settings.log_retention_days)
    directory = args.dir or settings.archive_path
    try:
        evidence_commands.checkpoint_before_archive(settings)  # every archived record under a signed checkpoint
        result = _with_log(settings, lambda log: log.archive(before, directory, compress=not args.no_compress))
    except ArchiveError as exc:
        print(f"ehis log archive: {exc}", file=sys.stderr)
        return 1
    if result.path is None:
        print(f"nothing older than {_time(before)} to archive")
    else:
        print(f"archived {result.count} records (seq {result.first_seq}..{result.last_seq}) to {result.path};"
              f" anchor {result.anchor}")
    return 0


def _outages(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> list:
        async with open_outages(settings.database) as store:
            return await store.list(args.source, args.since)

    outages = asyncio.run(run())
    if args.json:
        _print_json(outages)
        return 0
    for o in outages:
        until = _time(o.ended_at) if o.ended_at else "ongoing"
        print(f"{o.source}  {_time(o.started_at)} .. {until}  {o.reason}")
    print(f"{len(outages)} outages")
    return 0
