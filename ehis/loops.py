"""Which asyncio event loop the worker runs on (`event_loop = "asyncio" | "uvloop"`).

uvloop (libuv, C) runs the same coroutines with less CPU per callback and per socket read, which
is most of what a cached answer costs (aio-pika's frames, the tasks of each message). It is an
option, not the default: asyncio's loop is the reference every test runs on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
EventLoop = Literal["asyncio", "uvloop"]


def loop_factory(name: EventLoop) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for `name` (None: asyncio's default); a clear error if uvloop is not installed."""
    if name == "asyncio":
        return None
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise RuntimeError("event_loop = \"uvloop\" but uvloop is not installed (pip install uvloop)") from None
        return uvloop.new_event_loop
    raise ValueError(f"unknown event_loop {name!r}: asyncio or uvloop")


def run(main: Coroutine[Any, Any, T], event_loop: EventLoop = "asyncio") -> T:
    """`asyncio.run(main)` on the chosen loop (Python 3.11's asyncio.run takes no loop factory)."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        return runner.run(main)
