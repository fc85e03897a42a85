"""Child processes (ffmpeg, ffprobe) that can always be stopped: each starts in its own process group and
dies with its parent, and `kill_group_and_wait` SIGKILLs the whole group and reaps it. Both runners use
these two functions, so no encoder or probe is ever left running after its job. A memory cap
(RLIMIT_AS) can be set in the child too, so a hostile input fails an allocation instead of taking the
machine's memory."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import resource
import signal
from collections.abc import Iterable

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it when the worker dies. Cancellation covers
    every orderly exit; this covers a worker that is SIGKILLed or crashes outright, which would
    otherwise leave ffmpeg encoding for a job that another worker is about to take over."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the process group kill still covers orderly exits
        pass


def _prepare_child(max_memory_bytes: int | None) -> None:
    """Runs in the child between fork and exec: only async-signal-safe work (two syscalls)."""
    _die_with_parent()
    if max_memory_bytes is not None:
        # Address space, not RSS: Linux enforces no RSS limit. ffmpeg's address space runs ~1.5x its
        # RSS (thread stacks, malloc arenas), so the cap is set with that in mind (settings.py).
        resource.setrlimit(resource.RLIMIT_AS, (max_memory_bytes, max_memory_bytes))


async def start_in_own_group(argv: list[str], *, max_memory_bytes: int | None = None) -> asyncio.subprocess.Process:
    """Start `argv` with stdout and stderr piped, stdin closed, its address space capped at
    `max_memory_bytes` if given. OSError if it cannot start."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # own process group: killpg reaches it and anything it starts
        preexec_fn=functools.partial(_prepare_child, max_memory_bytes),
    )


async def kill_group_and_wait(proc: asyncio.subprocess.Process, pumps: Iterable[asyncio.Task] = ()) -> None:
    """SIGKILL the process group, stop the tasks reading its pipes, and reap it."""
    # Kill first, synchronously: even if this task is cancelled again below, the child is already dying.
    if proc.returncode is None:  # not yet reaped, so the pid (= pgid) cannot have been reused
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    pumps = list(pumps)
    for task in pumps:
        task.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)
    await proc.wait()
