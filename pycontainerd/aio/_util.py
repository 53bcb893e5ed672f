"""Waiting primitives of the asyncio client that never lose a cancellation.

``asyncio.wait_for`` before Python 3.12 returns the inner result, and drops the
caller's cancellation, when the awaited thing finishes in the same loop turn as the
cancel arrives (CPython gh-86296). A cancelled ``aio.run()`` must never carry on as
if nothing happened, so the client waits with :func:`wait_for` here instead, built
on ``asyncio.wait``, which always delivers the caller's cancel. :func:`shielded`
runs a clean-up to its end whatever the caller does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["shielded", "wait_for"]

T = TypeVar("T")


async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds (``None``: no limit).

    On timeout the awaitable is cancelled (and waited for) and :class:`TimeoutError`
    is raised. A cancellation of the caller is always raised, never swallowed; the
    awaitable is then cancelled too.

    Raises:
        TimeoutError: The time ran out.
        asyncio.CancelledError: The caller was cancelled.
    """
    if timeout is None:
        return await awaitable
    inner = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({inner}, timeout=timeout)
    except asyncio.CancelledError:
        inner.cancel()
        with contextlib.suppress(BaseException):
            await inner
        raise
    if inner in done:
        return inner.result()
    inner.cancel()
    with contextlib.suppress(BaseException):
        await inner
    raise TimeoutError


async def shielded(work: Awaitable[Any]) -> None:
    """Run ``work`` to its end even if the caller is cancelled meanwhile; then re-raise that cancel.

    A second cancel during the wait is absorbed the same way: the work is never
    abandoned half-way.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        with contextlib.suppress(BaseException):
            task.result()
        raise
