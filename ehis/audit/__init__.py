"""The exchange log (hash-chained, one record per exchange) and the outage record of sources."""

from ehis.audit.archive import ArchiveError
from ehis.audit.log import ExchangeLog, open_log
from ehis.audit.model import (
    ArchiveResult,
    ExchangeRecord,
    LogQuery,
    Outage,
    SourceStats,
    StoredRecord,
    SubjectAccess,
    SubjectReport,
    VerifyReport,
)
from ehis.audit.outages import OutageStore, open_outages

__all__ = [
    "ArchiveError",
    "ArchiveResult",
    "ExchangeLog",
    "ExchangeRecord",
    "LogQuery",
    "Outage",
    "OutageStore",
    "SourceStats",
    "StoredRecord",
    "SubjectAccess",
    "SubjectReport",
    "VerifyReport",
    "open_log",
    "open_outages",
]
