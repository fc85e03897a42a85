"""A background loop that runs one pass every few seconds for the life of a process (the webhook
outbox sweeper, the retention sweeper). A failing pass is logged and the loop carries on: a store
hiccup must not end a sweeper for good."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mediaflow.logs import get_logger

log = get_logger("periodic")


class Periodic:
    def __init__(self, name: str, interval_s: Callable[[], float], one_pass: Callable[[], Awaitable[object]]) -> None:
        self.name = name  # in the log line of a failed pass: "<name>.pass_failed"
        self._interval_s = interval_s
        self._one_pass = one_pass
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """In the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._one_pass()
            except Exception:
                log.exception(f"{self.name}.pass_failed")
            await asyncio.sleep(self._interval_s())
