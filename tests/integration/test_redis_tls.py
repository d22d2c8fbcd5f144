"""The cache on a Redis of this test's own that takes a password and TLS (a redis-server started
in a temporary directory, never the shared one): rediss:// verified against the test CA, a
password in the URL, and every failure (wrong password, a certificate of another CA) a miss
that is logged without the password, never a crash or an answer."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ehis.cache import CachedAnswer, CacheStatus, ResponseCache, open_cache
from ehis.cache.redis import RedisBackend
from ehis.security.pki import TLS_SERVER, Pki, init_pki
from ehis.testing import free_port, missing_service

pytestmark = pytest.mark.redis

PASSWORD = "s3cret-of-this-test"
SECRET = b"a cache key secret for this test"
FIN = "5ABC123"


@dataclass(frozen=True)
class OwnRedis:
    plain: int  # redis:// port (password required)
    tls: int  # rediss:// port (password required)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def own_redis(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    executable = shutil.which("redis-server")
    if executable is None:
        missing_service("redis-server is not installed")
    directory = tmp_path_factory.mktemp("redis")
    cert, key = pki.tls_files(TLS_SERVER)
    ports = OwnRedis(free_port(), free_port())
    conf = directory / "redis.conf"
    conf.write_text("\n".join([
        "bind 127.0.0.1", f"port {ports.plain}", f"tls-port {ports.tls}", f"tls-cert-file {cert}",
        f"tls-key-file {key}", f"tls-ca-cert-file {pki.ca_file}", "tls-auth-clients no",
        f"requirepass {PASSWORD}", 'save ""', "appendonly no", f"dir {directory}", "daemonize no",
        f"logfile {directory / 'redis.log'}",
    ]) + "\n")
    proc = subprocess.Popen([executable, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not (_answers(ports.plain) and _answers(ports.tls)):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (directory / "redis.log").read_text() if (directory / "redis.log").exists() else ""
                missing_service(f"redis-server with TLS did not start: {log[-500:]}")
            time.sleep(0.05)
        yield ports
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cache(url: str, ca_file: Path | None = None) -> ResponseCache:
    return ResponseCache(RedisBackend(url, ca_file=ca_file, retry_after=0), negative_ttl=30, key_secret=SECRET)


class Source:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> CachedAnswer:
        self.calls += 1
        return CachedAnswer(data={"fin": FIN, "name": "Əli"})


async def _twice(one: ResponseCache) -> tuple[CacheStatus, CacheStatus, Source]:
    source = Source()
    key = one.key("din.person", {"fin": FIN})
    try:
        _, first = await one.get_or_fetch(key, 60, source)
        _, second = await one.get_or_fetch(key, 60, source)
    finally:
        await one.close()
    return first, second, source


async def test_rediss_with_a_password_shares_entries(pki: Pki, own_redis: OwnRedis) -> None:
    url = f"rediss://:{PASSWORD}@127.0.0.1:{own_redis.tls}/0"
    first, second, source = await _twice(cache(url, pki.ca_file))
    assert (first, second, source.calls) == (CacheStatus.MISS, CacheStatus.HIT, 1)
    # another worker with the same secret, by host name this time (the certificate names localhost too)
    other = cache(f"rediss://:{PASSWORD}@localhost:{own_redis.tls}/0", pki.ca_file)
    try:
        _, status = await other.get_or_fetch(other.key("din.person", {"fin": FIN}), 60, Source())
    finally:
        await other.close()
    assert status is CacheStatus.HIT


async def test_key_names_in_redis_are_keyed_hmacs(pki: Pki, own_redis: OwnRedis) -> None:
    import hashlib
    import json

    from redis.asyncio import Redis

    first, _, _ = await _twice(cache(f"redis://:{PASSWORD}@127.0.0.1:{own_redis.plain}/1"))
    assert first is CacheStatus.MISS
    raw = Redis.from_url(f"redis://:{PASSWORD}@127.0.0.1:{own_redis.plain}/1")
    try:
        names = [name.decode() async for name in raw.scan_iter(match="ehis:cache:*")]
    finally:
        await raw.aclose()
    assert len(names) == 1 and FIN not in names[0]
    digest = names[0].rsplit(":", 1)[1]
    for guess in ({"fin": FIN}, ["din.person", {"fin": FIN}]):  # what a dictionary of FINs would compute
        assert digest != hashlib.sha256(json.dumps(guess, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def test_wrong_password_is_a_logged_miss(own_redis: OwnRedis, caplog: pytest.LogCaptureFixture) -> None:
    wrong = cache(f"redis://:not-{PASSWORD}@127.0.0.1:{own_redis.plain}/0")
    with caplog.at_level(logging.WARNING, logger="ehis.cache"):
        first, second, source = await _twice(wrong)
    assert (first, second, source.calls) == (CacheStatus.MISS, CacheStatus.MISS, 2)
    assert wrong.backend.errors >= 1
    assert caplog.records and all(PASSWORD not in r.getMessage() for r in caplog.records)


async def test_no_password_is_a_miss(own_redis: OwnRedis) -> None:
    first, second, source = await _twice(cache(f"redis://127.0.0.1:{own_redis.plain}/0"))
    assert (first, second, source.calls) == (CacheStatus.MISS, CacheStatus.MISS, 2)


async def test_rediss_refuses_a_server_of_another_ca(own_redis: OwnRedis, tmp_path: Path) -> None:
    rogue = init_pki(tmp_path / "rogue", {})
    other_ca = cache(f"rediss://:{PASSWORD}@127.0.0.1:{own_redis.tls}/0", rogue.ca_file)
    first, second, source = await _twice(other_ca)
    assert (first, second, source.calls) == (CacheStatus.MISS, CacheStatus.MISS, 2)
    assert other_ca.backend.errors >= 1


async def test_plain_redis_to_the_tls_port_is_a_miss(own_redis: OwnRedis) -> None:
    _, _, source = await _twice(cache(f"redis://:{PASSWORD}@127.0.0.1:{own_redis.tls}/0"))
    assert source.calls == 2


@pytest.mark.parametrize("query", ["ssl_cert_reqs=none", "ssl_cert_reqs=optional", "ssl_check_hostname=false",
                                   "ssl_check_hostname=0"])
def test_a_rediss_url_asking_not_to_verify_is_refused(query: str) -> None:
    with pytest.raises(ValueError, match="always verifies"):
        RedisBackend(f"rediss://:{PASSWORD}@127.0.0.1:6380/0?{query}")


def test_open_cache_passes_the_secret_and_the_ca(pki: Pki) -> None:
    shared = open_cache("rediss://127.0.0.1:1/0", max_entries=1, negative_ttl=1, key_secret=SECRET,
                        ca_file=pki.ca_file)
    same = open_cache("memory://", max_entries=1, negative_ttl=1, key_secret=SECRET)
    assert shared.key("din.person", {"fin": FIN}) == same.key("din.person", {"fin": FIN})
    kwargs = shared.backend._redis.connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == str(pki.ca_file) and kwargs["ssl_cert_reqs"] == "required"
