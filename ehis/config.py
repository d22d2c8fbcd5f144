"""One Settings object, read from the environment (EHIS_*) and an optional TOML file.

The file is `ehis.toml` in the working directory, or the path in EHIS_CONFIG. The environment
wins over the file, and both over the defaults, which make every command work on a fresh
machine: the embedded `memory://` bus, simulators on 127.0.0.1:8701, a test PKI made on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ehis.policy import DEFAULT_ACCESS, DEFAULT_EVENT_ACCESS


def _default_data_dir() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "ehis"


class SourcePolicy(BaseModel):
    """How the hub treats a source: timeouts, retries, breaker, bulkhead, rate limit.

    `source_defaults` applies to every source; `[sources.<code>]` in ehis.toml overrides fields.
    """

    model_config = ConfigDict(extra="forbid")

    connect_timeout: float = Field(2.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(5.0, gt=0, description="seconds one call may take")
    attempts: int = Field(4, ge=1, description="tries per request, for retryable errors only")
    backoff_initial: float = Field(0.05, ge=0, description="first retry delay, seconds (doubles, with jitter)")
    backoff_max: float = Field(1.0, ge=0, description="longest retry delay, seconds")
    breaker_window: int = Field(50, ge=1, description="the breaker judges the last this many calls (not attempts)")
    breaker_minimum_calls: int = Field(20, ge=1, description="calls in the window before the breaker may open")
    breaker_failure_rate: float = Field(0.5, gt=0, le=1, description="share of failed calls that opens it")
    breaker_slow_call_duration: float = Field(5.0, gt=0, description="seconds after which a call counts as slow")
    breaker_slow_call_rate: float = Field(1.0, gt=0, le=1, description="share of slow calls that opens it")
    breaker_half_open_calls: int = Field(5, ge=1, description="probe calls let through once the open delay ends")
    breaker_open_initial: float = Field(1.0, gt=0, description="seconds the breaker first stays open (then x1.5 "
                                                               "with jitter while the source stays down)")
    breaker_open_max: float = Field(30.0, gt=0, description="the longest the breaker stays open before probing")
    max_concurrency: int = Field(32, ge=1, description="calls in flight to this source at once")
    rate_limit: float | None = Field(None, gt=0, description="calls per second, none = unlimited")
    rate_burst: int = Field(10, ge=1, description="calls allowed at once above the steady rate")
    evidence: Literal["metadata", "full"] = Field(
        "metadata", description="full: keep each signed answer (encrypted) beside its record; metadata: its digest")


class Endpoint(BaseModel):
    """Where one source (or one provider of a source: a credit bureau, a district authority)
    answers, whom to trust for its answers, and how it is named in X-Road headers."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="the SOAP endpoint; default <simulator_url>/<path>")
    signer: str | None = Field(None, description="common name of the certificate that must sign its answers; "
                                                 "default the endpoint's name (the test PKI's)")
    fingerprint: str | None = Field(None, pattern=r"^[0-9a-fA-F:]{64,95}$",
                                    description="SHA-256 of that certificate, to pin it (optional)")
    member_class: str = Field("GOV", min_length=1, description="X-Road memberClass of the provider")
    member_code: str | None = Field(None, min_length=1, description="X-Road memberCode; default the system code")
    subsystem_code: str | None = Field(None, min_length=1, description="X-Road subsystemCode of the provider")
    service_version: str = Field("v1", min_length=1, description="X-Road serviceVersion")
    port: str | None = Field(None, min_length=1, description="the WSDL port to use when there are several")


class Provider(Endpoint):
    """One of several endpoints behind one contract: a credit bureau, a district's authority."""

    districts: list[str] = Field(default_factory=list,
                                 description="the districts (ISO 3166-2:AZ) a local authority answers for")


class SourceSettings(SourcePolicy, Endpoint):
    """Everything the hub is told about one source: its guard and its endpoint (or providers)."""

    providers: dict[str, Provider] = Field(
        default_factory=dict, description="several endpoints by name; default: the source package's own")
    default_provider: str | None = Field(None, description="the provider for what no other one claims")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHIS_", extra="ignore")

    broker_url: str = Field("memory://", description="memory:// (embedded) or amqp://user:pass@host:port/vhost")
    broker_admin_url: str = Field("http://guest:guest@127.0.0.1:15672",
                                  description="RabbitMQ management API, used by `ehis broker setup` only")
    broker_user_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$",
                                    description="prefix of every broker user of this deployment (users are "
                                                "broker-wide): the subsystem is the user name without it")
    bus_namespace: str = Field("ehis", description="prefix of the exchanges and queues on RabbitMQ")
    simulator_url: str = Field("http://127.0.0.1:8701", description="where `ehis simulators serve` listens")
    data_dir: Path = Field(default_factory=_default_data_dir, description="test PKI, SQLite log, archives")
    pki_dir: Path | None = Field(None, description="default <data_dir>/pki")
    request_timeout: float = Field(10.0, gt=0, description="a caller's default deadline, seconds")
    source_defaults: SourcePolicy = Field(default_factory=SourcePolicy)
    sources: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[sources.<code>]: endpoint and overrides of source_defaults, per system")
    serve_sources: list[str] | None = Field(None, description="the systems a worker serves; default every built one")
    xroad_instance: str = Field("AZ", min_length=1, description="X-Road instance code of the EHİS")
    client_member_class: str = Field("GOV", min_length=1, description="the ministry's X-Road memberClass")
    client_member_code: str = Field("EMSN", min_length=1, description="the ministry's X-Road memberCode")
    worker_prefetch: int = Field(64, ge=1, description="requests a worker handles at once")
    queue_type: Literal["quorum", "classic"] = Field(
        "quorum", description="RabbitMQ type of the per-source request queues: quorum (replicated, delivery "
                              "limit) or classic (lower latency, one node; README, Configuration)")
    event_loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio", description="the worker's event loop: asyncio's own, or uvloop (less CPU per message)")
    cache_url: str = Field("memory://", description="memory:// (in-process) or redis://host:port/db (shared)")
    cache_max_entries: int = Field(10_000, ge=0, description="bound of the in-process cache")
    negative_ttl: float = Field(30.0, ge=0, description="seconds a not_found answer is cached")
    database_url: str | None = Field(None, description="exchange log and outages: sqlite:///path or postgresql://")
    exchange_log: bool = Field(True, description="off only for benchmarks: the statute requires it")
    log_retention_days: int = Field(1825, ge=1, description="exchange records older than this are archived")
    archive_dir: Path | None = Field(None, description="default <data_dir>/archive")
    log_spool_dir: Path | None = Field(None, description="default <data_dir>/spool: records the database could not "
                                                         "take in time, fsynced, replayed when it is back")
    log_append_timeout: float = Field(2.0, gt=0, description="seconds an append waits for the database before the "
                                                             "record goes to the spool (never past the deadline)")
    log_commit_delay: float = Field(0.004, ge=0, le=0.1, description="seconds a log transaction may wait for the records "
                                    "of other requests in hand (less CPU under load; a lone request never waits)")
    admin_listen: str = Field("127.0.0.1:8702", description="host:port of /metrics, /health and /admin; '' = off")
    admin_password: str | None = Field(None, description="HTTP Basic password of user 'admin' for /admin and /api")
    simulator_faults: Path | None = Field(None, description="a TOML or JSON file of faults the simulators start with")
    simulator_event_rate: float = Field(0.0, ge=0, description="random events a minute the simulators make happen "
                                                               "(`ehis simulators serve --event-rate`); 0 = on demand only")
    log_level: str = "INFO"
    access: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_ACCESS))
    event_access: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_EVENT_ACCESS),
        description="which event kinds (routing keys, or <system>.*) each subsystem receives; deny by default")

    # -- events: pushed to the hub's inbound endpoint, or polled; published to the subsystems ------
    events_listen: str = Field("127.0.0.1:8703", description="host:port of the inbound endpoint sources push "
                                                             "events to ('' = none)")
    hub_events_url: str = Field("http://127.0.0.1:8703/events", description="where the simulators push events "
                                                                            "(<url>/<system>)")
    event_poll_interval: float = Field(5.0, gt=0, description="seconds between two polls of a source with no "
                                                              "more changes waiting")
    event_catch_up_interval: float = Field(60.0, gt=0, description="seconds between two reads of a pushing "
                                           "source's changes, to catch up with what a push did not bring")
    event_batch: int = Field(100, ge=1, le=500, description="events asked of a polled source at once")
    event_lease: float = Field(15.0, gt=0, description="seconds a worker holds a source's poller before another "
                                                       "may take it over (renewed while it runs)")
    # Credentials and tracing: where broker passwords come from when a URL has none, and where traces go.
    broker_credentials: Path | None = Field(
        None, description="the broker users' passwords as `ehis broker setup` writes them (0600); "
                          "default <data_dir>/broker-credentials.json")
    tracing_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces; none = tracing off")
    tracing_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="share of new traces recorded; a caller's sampling decision is followed")

    # -- evidence a third party can check: checkpoints, time-stamps, kept answers ------------------
    log_name: str = Field("ehis", min_length=1, description="names this exchange log in its signed checkpoints")
    checkpoint_interval: float = Field(600.0, gt=0, description="seconds between signed checkpoints (if records came)")
    checkpoint_records: int = Field(10_000, ge=1, description="records after which a checkpoint is signed sooner")
    checkpoint_export_dir: Path | None = Field(
        None, description="each checkpoint is also written here as a file (mount storage kept elsewhere)")
    tsa_url: str | None = Field(None, description="RFC 3161 time-stamping authority; default <simulator_url>/tsa; "
                                                  "'' = checkpoints are not time-stamped")
    tsa_ca_file: Path | None = Field(None, description="CA of the TSA's certificate; default the PKI's ca.pem")
    tsa_timeout: float = Field(5.0, gt=0, description="seconds one time-stamp request may take")
    max_unstamped: float = Field(
        86_400.0, ge=0, description="seconds the hub goes on answering while no checkpoint can be time-stamped; "
                                    "0 = without limit")
    evidence_key: SecretStr | None = Field(
        None, description="base64 AES-256 key sealing kept answers; default <data_dir>/evidence.key (made on first use)")

    # -- revocation, TLS on every hop, the cache's keys ------------------------------------------
    revocation: Literal["fail-closed", "fail-open"] = Field(
        "fail-closed", description="when a signing certificate's revocation status cannot be learned: refuse "
                                   "the answer (fail-closed) or accept it with a warning and a metric (fail-open)")
    revocation_freshness: float = Field(300.0, gt=0, description="seconds a CRL (and the status it gave) is "
                                                                 "used before it is fetched again")
    revocation_timeout: float = Field(3.0, gt=0, description="seconds one CRL fetch may take")
    crl_urls: list[str] | None = Field(None, description="CRLs to check signers against (files or http(s) URLs); "
                                                         "default <pki_dir>/ca.crl if present, else each "
                                                         "certificate's distribution points")
    tls_ca_file: Path | None = Field(None, description="CA bundle verifying every TLS server the hub dials "
                                                       "(https:// sources, amqps:// broker, rediss:// cache); "
                                                       "default the system's")
    source_client_cert: Path | None = Field(None, description="PEM client certificate presented to https:// "
                                                              "sources (mutual TLS)")
    source_client_key: Path | None = Field(None, description="its private key (PEM, unencrypted)")
    cache_key_secret: SecretStr | None = Field(None, description="HMAC key of the cache's key names; default one "
                                                                 "generated in <data_dir>/cache-key. Workers "
                                                                 "sharing a Redis must share it")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("EHIS_CONFIG", "ehis.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    @model_validator(mode="after")
    def _broker_tls(self) -> Self:
        """An amqps:// broker URL naming no `cafile` gets `tls_ca_file` (aio-pika's URL parameter),
        and one with client certificate and key must name both."""
        parts = urlsplit(self.broker_url)
        if parts.scheme != "amqps":
            return self
        query = dict(parse_qsl(parts.query))
        if self.tls_ca_file is not None and "cafile" not in query:
            query["cafile"] = str(self.tls_ca_file)
            self.broker_url = parts._replace(query=urlencode(query)).geturl()
        if ("certfile" in query) != ("keyfile" in query):
            raise ValueError("broker_url: give both certfile and keyfile, or neither")
        return self

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        if (self.source_client_cert is None) != (self.source_client_key is None):
            raise ValueError("source_client_cert and source_client_key go together")
        return self

    @model_validator(mode="after")
    def _check_sources(self) -> Self:
        """Refuse, at start, a [sources.<code>] for no system of the statute or with unknown keys."""
        from ehis.catalogue import SYSTEMS_BY_CODE

        unknown = sorted(set(self.sources) - set(SYSTEMS_BY_CODE))
        unknown += sorted(set(self.serve_sources or ()) - set(SYSTEMS_BY_CODE) - set(unknown))
        if unknown:
            raise ValueError(f"no source system {', '.join(map(repr, unknown))} in the statute; "
                             f"known: {', '.join(SYSTEMS_BY_CODE)}")
        for code in self.sources:
            try:
                self.source(code)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                     for e in exc.errors(include_input=False, include_url=False))
                raise ValueError(f"[sources.{code}]: {problems}") from None
        return self

    @model_validator(mode="after")
    def _check_event_access(self) -> Self:
        """Refuse, at start, an event kind no source sends: a typo would silently deliver nothing
        (a subsystem name is free: `ehis broker setup` makes its user and queue)."""
        from ehis.catalogue import EVENTS

        systems = {key.split(".", 1)[0] for key in EVENTS}
        for subsystem, patterns in self.event_access.items():
            for pattern in patterns:
                system, _, kind = pattern.partition(".")
                if not (pattern in EVENTS or (kind == "*" and system in systems)):
                    raise ValueError(f"event_access.{subsystem}: no event kind {pattern!r}; kinds are "
                                     f"{', '.join(EVENTS)} (or <source>.* for "
                                     f"{', '.join(sorted(systems))})")
        return self

    def source(self, system: str) -> SourceSettings:
        """`source_defaults` with the system's `[sources.<code>]` on top, validated."""
        return SourceSettings.model_validate(self.source_defaults.model_dump() | self.sources.get(system, {}))

    def source_url(self, path: str, endpoint: Endpoint | None = None) -> str:
        """An endpoint's URL, or the simulators' `<simulator_url>/<path>` when it names none."""
        if endpoint is not None and endpoint.url:
            return endpoint.url
        return f"{self.simulator_url.rstrip('/')}/{path}"

    @property
    def pki_path(self) -> Path:
        return self.pki_dir or self.data_dir / "pki"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ehis.db'}"

    @property
    def admin_auth(self) -> tuple[str, str] | None:
        return ("admin", self.admin_password) if self.admin_password else None

    @property
    def broker_credentials_path(self) -> Path:
        from ehis.bus.broker_setup import CREDENTIALS_FILE

        return self.broker_credentials or self.data_dir / CREDENTIALS_FILE

    @property
    def spool_path(self) -> Path:
        return self.log_spool_dir or self.data_dir / "spool"

    @property
    def archive_path(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"

    @property
    def tsa(self) -> str | None:
        """The TSA's URL, or None when checkpoints are not time-stamped."""
        if self.tsa_url == "":
            return None
        return self.tsa_url or f"{self.simulator_url.rstrip('/')}/tsa"

    @property
    def tsa_ca_path(self) -> Path:
        return self.tsa_ca_file or self.pki_path / "ca.pem"
