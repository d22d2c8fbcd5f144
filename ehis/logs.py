"""Application logging: one line per event, and no personal data.

httpx logs every URL at INFO, aiosqlite every SQL parameter:
they are held at WARNING so a FIN or a name never reaches the application log at any level.
aiormq logs a failed connection at ERROR before aio-pika raises it, and the command then says
what went wrong in one line: it is held at CRITICAL (aio-pika's own reconnect warnings remain).
"""

from __future__ import annotations

import logging

QUIET = ("httpx", "httpcore", "aio_pika", "aiosqlite", "asyncpg", "faker", "uvicorn.access", "xmlschema")
SILENT = ("aiormq",)


def setup_logging(level: str = "INFO", *, process: bool = False) -> None:
    """`process`: put the process id on each line (the worker processes of `ehis serve --processes N`)."""
    pid = " [%(process)d]" if process else ""
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s{pid} %(name)s %(message)s",
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    for name in SILENT:
        logging.getLogger(name).setLevel(logging.CRITICAL)
