"""What every source contract shares (schemas/): the X-Road headers (xroad.xsd, identifiers.xsd),
the project's common types and faults (ehis.xsd) and the WSDL part every contract imports
(common.wsdl), and what events share (events.xsd). xroad.py builds and checks headers, provider.py
plays the provider's side; codec.py turns messages into dicts and back."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

COMMON_NS = "urn:az:gov:ehis:common:v1"  # ehis.xsd: the common types and the NotFound, InvalidInput faults


def contract_dir() -> Path:
    """The directory of the shared schema files."""
    return Path(str(files(__name__) / "schemas"))
