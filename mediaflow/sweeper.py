"""The base of every background sweeper (the lease reaper, the webhook outbox sweeper, the retention
sweeper, the worker presence beat): one pass every few seconds for the life of a process. A failing
pass is logged and the loop carries on: a store or broker hiccup must not end a sweeper for good.

A subclass names itself (`name`, used in the log line of a failed pass: "<name>.pass_failed"), says how
often it runs (`interval_s`), whether it is wanted at all (`enabled`), and does one pass (`sweep_once`).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

from mediaflow.logs import get_logger

log = get_logger("sweeper")


class Sweeper(ABC):
    name = "sweeper"
    # The least time between two passes, however often `wake` is called: a burst of changes costs
    # one pass per this many seconds, not one each.
    min_gap_s = 0.0

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    @abstractmethod
    def interval_s(self) -> float: ...

    @property
    def enabled(self) -> bool:
        return True

    @abstractmethod
    async def sweep_once(self) -> object: ...

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """In the running event loop; does nothing when the sweeper is not enabled or already runs."""
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Run the next pass soon (after `min_gap_s`) rather than at the end of the interval: what the
        sweeper reports has changed."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.sweep_once()
            except Exception:
                log.exception(f"{self.name}.pass_failed")
            await asyncio.sleep(self.min_gap_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(self.interval_s() - self.min_gap_s, 0))
