"""The source contract (tests/contract/base.py), run for every endpoint of every built source."""

from __future__ import annotations

import pytest

from tests.contract.base import SourceContract
from tests.contract.support import endpoints


class TestEverySource(SourceContract):
    @pytest.fixture(params=endpoints(), ids=[name for _, name in endpoints()])
    def where(self, request: pytest.FixtureRequest) -> tuple[str, str]:
        return request.param
