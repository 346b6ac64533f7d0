"""Helpers for the gateway's long-running asyncio tasks."""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise `CancelledError` if the current task has a cancellation pending.

    On Python 3.11, `asyncio.wait_for` can return normally although the task was cancelled in
    the same event-loop tick (cpython#86296); pymodbus waits for every answer that way. The
    swallowed request stays counted in `Task.cancelling()`, so a loop that calls this once per
    turn still stops when its gateway shuts down, instead of polling on forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
