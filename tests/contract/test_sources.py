"""The source contract (tests/contract/base.py), run for every built source of the registry."""

from __future__ import annotations

import pytest

from ehis.sources import sources
from tests.contract.base import SourceContract


class TestEverySource(SourceContract):
    @pytest.fixture(params=list(sources()))
    def code(self, request: pytest.FixtureRequest) -> str:
        return request.param
