"""The PostgreSQL fixtures of tests/audit, for the chaos tests' exchange log."""

from tests.audit.conftest import postgres_database, postgres_url  # noqa: F401 - fixtures
