"""The source contract (tests/contract/base.py), run for every endpoint of every built source."""

from __future__ import annotations

import pytest

from ehis.sources import source
from tests.contract.base import SourceContract
from tests.contract.support import endpoints


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every case for every endpoint of every built source, but a case marked `applies(...)` only
    where it means something."""
    if "where" in metafunc.fixturenames:
        applies = getattr(metafunc.function, "applies", None)
        chosen = [w for w in endpoints() if applies is None or applies(source(w[0]))]
        metafunc.parametrize("where", chosen, ids=[name for _, name in chosen])


class TestEverySource(SourceContract):
    pass
