"""event_loop = "asyncio" | "uvloop": the setting is validated and the worker's loop is the one named."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from ehis import loops
from ehis.config import Settings


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_default_is_asyncios_own_loop() -> None:
    assert Settings().event_loop == "asyncio"
    assert loops.run(_loop_module()).startswith("asyncio")


def test_uvloop_runs_the_same_coroutines() -> None:
    pytest.importorskip("uvloop")
    assert Settings(event_loop="uvloop").event_loop == "uvloop"
    assert loops.run(_loop_module(), "uvloop").startswith("uvloop")


def test_an_unknown_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="event_loop"):
        Settings(event_loop="trio")
    monkeypatch.setenv("EHIS_EVENT_LOOP", "tokio")
    with pytest.raises(ValidationError, match="event_loop"):
        Settings()
    with pytest.raises(ValueError, match="unknown event_loop"):
        loops.loop_factory("tokio")  # type: ignore[arg-type]


def test_uvloop_missing_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails as if not installed
    with pytest.raises(RuntimeError, match="uvloop is not installed"):
        loops.loop_factory("uvloop")
