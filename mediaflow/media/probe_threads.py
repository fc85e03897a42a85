"""PyAV probes on threads of their own, so a probe that never returns cannot starve the process.

PyAV blocks in C and cannot be interrupted: a probe that outlives its timeout keeps its thread until
libavformat returns, if ever (a crafted file can keep a demuxer busy). On asyncio's default executor
those threads are the ones every `asyncio.to_thread` shares — local storage copies, upload writes —
so a few hostile files could stall every job and request in the process. Here probes get a small pool
of their own; a probe that timed out is counted as stuck until its thread comes back, and once every
thread is stuck, further probes fail at once with ProbeThreadsBusyError (the job goes back to the queue
for another worker) instead of queueing behind them. ffprobe, when installed, runs as a killable
subprocess instead (probe.py) and needs none of this.

A PyAV probe in a subprocess would be killable too, but costs 0.4-0.5 s of interpreter start and
`import av` per probe (measured here), twice per job, on the embedded default.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class ProbeThreadsBusyError(RuntimeError):
    """Every probe thread is held by a probe that timed out; this process cannot probe right now."""


class ProbeThreads:
    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="pyav-probe")
        self._lock = threading.Lock()
        self._stuck = 0

    @property
    def stuck(self) -> int:
        return self._stuck

    async def run(self, function: Callable[..., T], *args: object, timeout: float) -> T:
        """`function(*args)` on a probe thread; TimeoutError after `timeout` s (the thread is left to
        finish and counted as stuck until it does)."""
        with self._lock:
            if self._stuck >= self.size:
                raise ProbeThreadsBusyError(
                    f"all {self.size} PyAV probe threads are held by probes that did not finish; install "
                    "ffprobe (it runs as a killable process) or restart this worker"
                )
        future = self._pool.submit(function, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            with self._lock:
                self._stuck += 1
            future.add_done_callback(self._came_back)
            raise

    def _came_back(self, _future: object) -> None:
        with self._lock:
            self._stuck -= 1


PROBE_THREADS = ProbeThreads()
