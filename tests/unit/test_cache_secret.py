"""The secret of the cache's key names: configured, or made once in the data directory and then
kept, the same for every process that shares that directory."""

from __future__ import annotations

import logging
import stat
import threading
from pathlib import Path

import pytest

from ehis.bootstrap import cache_secret
from ehis.cache.secret import SECRET_FILE, configured_secret, stored_secret
from ehis.config import Settings


def test_made_once_private_and_kept(tmp_path: Path) -> None:
    first = stored_secret(tmp_path / "data")
    path = tmp_path / "data" / SECRET_FILE
    assert len(first) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored_secret(tmp_path / "data") == first
    assert stored_secret(tmp_path / "other") != first
    assert [p.name for p in (tmp_path / "data").iterdir()] == [SECRET_FILE]  # no staging file left


def test_concurrent_first_uses_agree(tmp_path: Path) -> None:
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def first_use() -> None:
        barrier.wait()
        results.append(stored_secret(tmp_path))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1


def test_a_damaged_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("short")
    with pytest.raises(ValueError, match="delete it"):
        stored_secret(tmp_path)


def test_a_configured_secret_must_be_long_enough() -> None:
    assert configured_secret("sixteen chars ok") == b"sixteen chars ok"
    with pytest.raises(ValueError, match="at least 16"):
        configured_secret("short")


def test_the_hub_takes_the_configured_secret_else_the_stored_one(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    configured = Settings(data_dir=tmp_path, cache_key_secret="the deployment's own secret")
    assert cache_secret(configured) == b"the deployment's own secret"
    assert not (tmp_path / SECRET_FILE).exists()
    with caplog.at_level(logging.WARNING, logger="ehis.bootstrap"):
        assert cache_secret(Settings(data_dir=tmp_path)) == stored_secret(tmp_path)
        assert not caplog.records  # memory:// shares nothing: nothing to warn about
        cache_secret(Settings(data_dir=tmp_path, cache_url="redis://127.0.0.1:6379/0"))
    assert any("must use the same one" in r.getMessage() for r in caplog.records)
    assert "the deployment's own secret" not in repr(configured)  # a SecretStr: never printed
