"""What every hub benchmark needs: a vhost with per-subsystem broker users (`ehis broker setup`),
a test PKI, and the environment the hub's processes run with."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from ehis.bus.broker_setup import (
    WORKER_USER,
    BrokerAccounts,
    delete_users,
    delete_vhost,
    load_accounts,
    setup_broker,
)
from ehis.config import Settings
from ehis.policy import DEFAULT_ACCESS, DEFAULT_EVENT_ACCESS
from ehis.security.pki import Pki, init_pki, pki_parties
from ehis.testing import ehis_env, free_port

CALLER = "emek-muqavilesi"
FINS = [f"{n:07d}".replace("0", "A", 1) for n in range(1, 1001)]  # never starts with 0: all exist


@dataclass(frozen=True)
class Bench:
    pki: Pki
    accounts: BrokerAccounts
    sim_url: str
    env: dict[str, str]  # for the simulators and workers; the worker logs in as ehis-worker

    def worker_env(self, **settings: str) -> dict[str, str]:
        return self.env | {f"EHIS_{k.upper()}": v for k, v in settings.items()}

    @property
    def caller_url(self) -> str:
        return self.accounts.url_for(CALLER)


@asynccontextmanager
async def bench(tmp: Path, broker: str) -> AsyncIterator[Bench]:
    """A fresh vhost with the hub's users, deleted afterwards."""
    admin_url = Settings().broker_admin_url
    tag = uuid.uuid4().hex[:8]
    vhost, prefix = f"bench-{tag}", f"bench-{tag}-"  # users are broker-wide: ours never touch a running hub's
    pki = init_pki(tmp / "pki", pki_parties())
    await setup_broker(admin_url, broker, vhost=vhost, namespace="ehis",
                       subsystems=sorted({*DEFAULT_ACCESS, *DEFAULT_EVENT_ACCESS}), credentials=tmp / "broker.json",
                       user_prefix=prefix, event_receivers=DEFAULT_EVENT_ACCESS)
    accounts = load_accounts(tmp / "broker.json", broker, vhost, prefix)
    sim_url = f"http://127.0.0.1:{free_port()}"
    env = ehis_env(pki_dir=str(pki.directory), data_dir=str(tmp / "data"), simulator_url=sim_url,
                   broker_url=accounts.url_for(WORKER_USER), bus_namespace="ehis", admin_listen="",
                   broker_user_prefix=prefix)
    try:
        yield Bench(pki, accounts, sim_url, env)
    finally:
        await delete_vhost(admin_url, vhost)
        await delete_users(admin_url, accounts.users)



def process_cpu(pid: int, *, tree: bool = True) -> float:
    """CPU seconds (user + system) used so far by `pid` and (`tree`) every live descendant, from /proc.

    CPU seconds per request are what the issue's targets are stated in: unlike req/s they do not
    move when another engineer's tests share the machine's two cores.
    """
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if tree:
            todo.extend(children.get(current, []))
    return total


class CpuMeter:
    """CPU seconds of named processes across one measured stretch: `with meter: ...; meter.per(n)`."""

    def __init__(self, **pids: int):
        self.pids = pids  # the benchmark's own process counts alone: the others are its children
        self.used: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        return {name: process_cpu(pid, tree=pid != os.getpid()) for name, pid in self.pids.items()}

    def __enter__(self) -> Self:
        self._start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        self.used = {name: end[name] - self._start[name] for name in self.pids}

    def per_request_ms(self, requests: int) -> dict[str, float]:
        return {name: used * 1000 / requests for name, used in self.used.items()}
