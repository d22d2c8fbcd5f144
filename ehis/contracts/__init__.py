"""The SOAP contracts of the sources: one <system>.wsdl and <system>.xsd pair each, plus the
X-Road-style message headers they share (xroad.xsd)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def contract_dir() -> Path:
    return Path(str(files(__name__) / "wsdl"))


def wsdl_path(system: str) -> Path:
    return contract_dir() / f"{system}.wsdl"


def xsd_path(system: str) -> Path:
    return contract_dir() / f"{system}.xsd"
