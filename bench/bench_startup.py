"""Start-up and footprint of a worker serving every source of the statute.

1. `ehis serve` as a process (embedded memory:// bus, no admin endpoint), best of three: seconds
   from spawn to "worker serving", and resident memory (VmRSS) once ready.
2. The same on RabbitMQ (a vhost and users of its own), when a broker answers.
3. Where the time goes, in this process: importing the hub, compiling every source's contract
   (xmlschema at load, the compiled codec per message), loading the keys.

Targets on this machine (issue 9): ready in under 3 s, under 200 MB RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ehis.testing import ehis_env

READY = "worker serving"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_once(env: dict[str, str]) -> tuple[float, float, int]:
    """Seconds to ready, MB resident once ready, sources served."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ehis", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if READY in line:
                took = time.perf_counter() - started
                services = line.split(READY, 1)[1].rsplit(" on ", 1)[0].split(", ")
                time.sleep(0.2)  # let what start-up allocates settle
                return took, rss_mb(proc.pid), len({s.strip().split(".")[0] for s in services})
        raise RuntimeError(f"the worker exited with {proc.wait()} before it was ready:\n{''.join(seen[-20:])}")
    finally:
        proc.terminate()
        proc.wait(10)


def best_of(env: dict[str, str], runs: int = 3) -> tuple[float, float, int]:
    results = [start_once(env) for _ in range(runs)]
    return min(r[0] for r in results), min(r[1] for r in results), results[0][2]


async def on_rabbitmq(tmp: Path, base: dict[str, str], runs: int) -> None:
    """The same worker on a vhost and users of the benchmark's own (left out without a broker)."""
    from bench.harness import bench

    broker = os.environ.get("EHIS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    try:
        async with bench(tmp, broker) as b:
            env = base | {k: v for k, v in b.env.items() if k in ("EHIS_BROKER_URL", "EHIS_BROKER_USER_PREFIX")}
            took, rss, served = await asyncio.to_thread(best_of, env, runs)
            print(f"worker on amqp://,   {served} sources: ready in {took:.2f} s, {rss:.0f} MB resident "
                  f"(best of {runs})")
    except OSError as exc:
        print(f"(no RabbitMQ: {type(exc).__name__}; the amqp:// figure is left out)")


_STEPS = """
import json, sys, time
t = time.perf_counter(); import ehis.bootstrap; steps = [time.perf_counter() - t]
t = time.perf_counter(); from ehis.sources import sources; built = sources(); steps.append(time.perf_counter() - t)
t = time.perf_counter()
for source in built.values():
    source.codec
steps.append(time.perf_counter() - t)
print(json.dumps(steps + ["xmlschema" in sys.modules]))
"""


def breakdown(cache: Path) -> list[tuple[str, float]]:
    """Where start-up time goes, in a fresh process each: with an empty contract cache, then warm."""
    rows = []
    for state in ("cold", "warm"):
        env = os.environ | {"EHIS_CONTRACT_CACHE": str(cache)}
        imports, discover, compile_, xmlschema = json.loads(
            subprocess.run([sys.executable, "-c", _STEPS], env=env, capture_output=True, text=True,
                           check=True).stdout)
        rows += [(f"{state}: import the hub (pydantic, httpx, aio-pika, lxml, signxml ...)", imports),
                 (f"{state}: discover the source packages", discover),
                 ((f"{state}: compile every contract ({'xmlschema, ' if xmlschema else 'from the cache, '}"
                   "libxml2 schemas, codec plans)"), compile_)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ehis-bench-start-") as tmp:
        base = ehis_env(data_dir=str(Path(tmp) / "data"), pki_dir=str(Path(tmp) / "pki"), broker_url="memory://",
                        admin_listen="", log_level="INFO")
        subprocess.run([sys.executable, "-m", "ehis", "pki", "init", str(Path(tmp) / "pki")], env=base, check=True,
                       capture_output=True)
        took, rss, served = best_of(base, args.runs)
        print(f"worker on memory://, {served} sources: ready in {took:.2f} s, {rss:.0f} MB resident "
              f"(best of {args.runs}; targets < 3 s, < 200 MB)")
        (Path(tmp) / "amqp").mkdir()
        asyncio.run(on_rabbitmq(Path(tmp) / "amqp", base, args.runs))
        print("\nwhere start-up goes (fresh processes):")
        for what, seconds in breakdown(Path(tmp) / "contract-cache"):
            print(f"  {seconds * 1000:8.0f} ms  {what}")


if __name__ == "__main__":
    main()
