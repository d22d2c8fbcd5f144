"""Application logging: one line per event, and no personal data.

zeep logs whole SOAP messages at DEBUG and httpx logs every URL at INFO; both are held at
WARNING so a FIN or a name never reaches the application log whatever level is configured.
"""

from __future__ import annotations

import logging

QUIET = ("zeep", "httpx", "httpcore", "aio_pika", "aiormq", "faker", "uvicorn.access")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
