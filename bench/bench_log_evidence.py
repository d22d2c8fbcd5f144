"""Exchange-log throughput with full evidence (each signed answer kept, compressed and sealed)
against metadata only (its digest), on SQLite and PostgreSQL, from one run on this machine.

    .venv/bin/python -m bench.bench_log_evidence [--count N] [--concurrency C] [--postgres URL]

What is timed is the log's part of one exchange, as the hub does it: in full mode the source-call
path keeps the signed answer (zlib + AES-GCM + a group-committed insert), then the record is
appended (group commit); in metadata mode only the record. The answers are real signed SOAP
envelopes of a realistic size (signed by the test PKI's `din` before timing starts), each
distinct. Figures: records/s and CPU ms per record (this process: the database work of SQLite is
in it, PostgreSQL's is not), best of three runs; a checkpoint signing the whole run is timed too.
Nothing is asserted: the figures and the ratios are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from ehis.audit import ExchangeRecord, open_log
from ehis.audit.checkpoints import make_checkpoint
from ehis.audit.evidence_store import EvidenceKey, EvidenceStore
from ehis.audit.xmlsig import DocumentSigner
from ehis.evidence import Evidence
from ehis.security.pki import init_pki
from ehis.security.signing import EnvelopeSigner, EnvelopeVerifier

REPEATS = 3
PERSON = ("<p:Person xmlns:p='urn:test:din'><p:Fin>{fin}</p:Fin><p:Name>Aynur</p:Name><p:Surname>Məmmədova</p:Surname>"
          "<p:Patronymic>Elçin qızı</p:Patronymic><p:Born>1987-03-12</p:Born>"
          + "<p:Address><p:District>AZ-BA</p:District><p:Street>Nizami küç. {n}</p:Street></p:Address>" * 6
          + "</p:Person>")


def answers(directory: Path, count: int) -> list[Evidence]:
    """`count` distinct signed answers (about 4 KB each), with the digests the adapter computes."""
    pki = init_pki(directory / "pki", {"din": "DIN"})
    signer, verifier = EnvelopeSigner(pki.identity("din")), EnvelopeVerifier(pki.ca_file)
    found = []
    for n in range(count):
        envelope = etree.fromstring(
            "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Header/><soap:Body>"
            f"{PERSON.format(fin=f'{n:07d}', n=n)}</soap:Body></soap:Envelope>")
        raw = etree.tostring(signer.sign(envelope))
        verified = verifier.verify(raw, expected_signer="din")
        found.append(Evidence(signer=verified.signer, digest=verified.digest, fetched_at=datetime.now(UTC),
                              message_id=str(n), signed=raw))
    return found


def record(n: int, evidence: Evidence) -> ExchangeRecord:
    return ExchangeRecord(request_id=str(uuid.uuid4()), time=datetime.now(UTC), subsystem="emek-muqavilesi",
                          user="bench", purpose="benchmark", service="din.person", source="din",
                          subject=f"{n:07d}", outcome="ok", cache="miss", duration_ms=12.0, signer=evidence.signer,
                          evidence=evidence.digest)


async def run_once(url: str, full: bool, batch: list[Evidence], concurrency: int,
                   signer: DocumentSigner) -> tuple[float, float, float]:
    """(records/s, CPU ms per record, checkpoint seconds) for one fresh log."""
    async with open_log(url) as log:
        store = EvidenceStore(log.backend, EvidenceKey(bytes(32)))
        await store.start()
        semaphore = asyncio.Semaphore(concurrency)

        async def exchange(n: int, evidence: Evidence) -> None:
            async with semaphore:
                if full:
                    await store.keep("din", evidence)
                await log.append(record(n, evidence))

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(exchange(n, e) for n, e in enumerate(batch)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        started = time.perf_counter()
        await make_checkpoint(log.backend, signer)
        checkpoint = time.perf_counter() - started
        await store.stop()
    return len(batch) / wall, cpu / len(batch) * 1000, checkpoint


async def main(count: int, concurrency: int, postgres: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="ehis-bench-") as tmp:
        base = Path(tmp)
        print(f"signing {count} distinct answers…", flush=True)
        batch = answers(base, count)
        size = sum(len(e.signed or b"") for e in batch) / count
        signer = DocumentSigner(init_pki(base / "pki2", {}).operator())
        targets = [("SQLite", lambda run: f"sqlite:///{base / f'{run}.db'}")]
        if postgres:
            targets.append(("PostgreSQL", lambda run: _database(postgres, run)))
        print(f"{count} exchanges at concurrency {concurrency}; answers {size / 1024:.1f} KB each; best of {REPEATS}")
        for name, url_for in targets:
            results = {}
            for mode in ("metadata", "full"):
                runs = []
                for repeat in range(REPEATS):
                    url = await url_for(f"{mode}-{repeat}") if name == "PostgreSQL" else url_for(f"{mode}-{repeat}")
                    runs.append(await run_once(url, mode == "full", batch, concurrency, signer))
                results[mode] = (max(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs))
                rate, cpu, checkpoint = results[mode]
                print(f"  {name:<10} {mode:<8} {rate:8.0f} records/s   {cpu:6.3f} ms CPU/record"
                      f"   checkpoint of {count} records {checkpoint * 1000:6.1f} ms")
            (m_rate, m_cpu, _), (f_rate, f_cpu, _) = results["metadata"], results["full"]
            print(f"  {name:<10} full/metadata: throughput x{f_rate / m_rate:.2f}, CPU per record x{f_cpu / m_cpu:.2f}")


async def _database(server: str, run: str) -> str:
    from urllib.parse import urlsplit

    import asyncpg

    name = f"ehis_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    _CREATED.append((server, name))
    return urlsplit(server)._replace(path=f"/{name}").geturl()


_CREATED: list[tuple[str, str]] = []


async def _drop() -> None:
    import asyncpg

    for server, name in _CREATED:
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server to make scratch databases on; '' to skip PostgreSQL")
    options = parser.parse_args()

    async def both() -> None:
        try:
            await main(options.count, options.concurrency, options.postgres or None)
        finally:
            await _drop()

    asyncio.run(both())
