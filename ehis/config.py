"""One Settings object, read from the environment (EHIS_*) and an optional TOML file.

The file is `ehis.toml` in the working directory, or the path in EHIS_CONFIG. The environment
wins over the file, and both over the defaults, which make every command work on a fresh
machine: the embedded `memory://` bus, simulators on 127.0.0.1:8701, a test PKI made on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ehis.policy import DEFAULT_ACCESS


def _default_pki_dir() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "ehis" / "pki"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHIS_", extra="ignore")

    broker_url: str = Field("memory://", description="memory:// (embedded) or amqp://user:pass@host:port/vhost")
    bus_namespace: str = Field("ehis", description="prefix of the exchanges and queues on RabbitMQ")
    simulator_url: str = Field("http://127.0.0.1:8701", description="where `ehis simulators serve` listens")
    source_urls: dict[str, str] = Field(
        default_factory=dict, description="per-system SOAP endpoint; default <simulator_url>/<system>"
    )
    pki_dir: Path = Field(default_factory=_default_pki_dir)
    request_timeout: float = Field(10.0, gt=0, description="a caller's default deadline, seconds")
    source_timeout: float = Field(5.0, gt=0, description="the longest one call to a source may take, seconds")
    worker_prefetch: int = Field(64, ge=1, description="requests a worker handles at once")
    log_level: str = "INFO"
    access: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_ACCESS))

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

    def source_url(self, system: str) -> str:
        return self.source_urls.get(system) or f"{self.simulator_url.rstrip('/')}/{system}"
