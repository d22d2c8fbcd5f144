"""The secret the cache's key names are HMACs with, configured or kept in the data directory.

A key name is `<service>:<HMAC-SHA256(secret, params)>`: a plain digest of a FIN would be
reversed by hashing every possible FIN (a few million), so whoever can list Redis keys would learn
who was looked up. Every worker sharing one Redis must use the same secret, or none of them
finds what another stored.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

SECRET_FILE = "cache-key"
MIN_SECRET_CHARS = 16


def configured_secret(value: str) -> bytes:
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"cache_key_secret must be at least {MIN_SECRET_CHARS} characters")
    return value.encode("utf-8")


def stored_secret(directory: Path) -> bytes:
    """The secret kept in `directory/cache-key`, made (32 random bytes, hex, mode 0600) on first use.

    Made in a temporary file and linked into place, so concurrent first uses agree on one secret
    and none reads a half-written file.
    """
    path = directory.expanduser() / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=".cache-key-", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, secrets.token_hex(32).encode())
            os.close(fd)
            try:
                os.link(staging, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            os.unlink(staging)
    value = path.read_bytes().strip()
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"{path} holds no usable cache key secret; delete it to make a new one")
    return value
