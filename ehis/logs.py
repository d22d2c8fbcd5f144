"""Application logging: one line per event, and no personal data.

httpx logs every URL at INFO, aiosqlite every SQL parameter:
they are held at WARNING so a FIN or a name never reaches the application log at any level.
"""

from __future__ import annotations

import logging

QUIET = ("httpx", "httpcore", "aio_pika", "aiormq", "aiosqlite", "asyncpg", "faker", "uvicorn.access", "xmlschema")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
