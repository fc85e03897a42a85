"""Running ffmpeg: `run_ffmpeg` runs one ffmpeg in its own process group (see subprocesses.py), streams
its stderr to a log file and its `-progress` blocks to a callback, and kills the group if its caller is
cancelled or fails, so no ffmpeg outlives the job that started it. `summarize_stderr` turns a log into
the few lines a user can act on."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediaflow.media.errors import FfmpegError, FfmpegFailedError
from mediaflow.media.subprocesses import kill_group_and_wait, start_in_own_group

# --- progress --------------------------------------------------------------------------------------


@dataclass
class ProgressUpdate:
    out_time_s: float | None
    speed: float | None
    ended: bool


class ProgressParser:
    """Parses `-progress pipe:1` output: key=value lines, each block closed by `progress=continue|end`."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def feed(self, line: str | bytes) -> ProgressUpdate | None:
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        key, sep, value = line.partition("=")
        if not sep:
            return None
        key, value = key.strip(), value.strip()
        if key != "progress":
            self._fields[key] = value
            return None
        fields, self._fields = self._fields, {}
        return ProgressUpdate(out_time_s=_out_time(fields), speed=_speed(fields.get("speed")), ended=value == "end")


def _out_time(fields: dict[str, str]) -> float | None:
    for key in ("out_time_us", "out_time_ms"):  # both are microseconds (out_time_ms is misnamed)
        try:
            return int(fields[key]) / 1_000_000
        except (KeyError, ValueError):
            pass
    match = re.fullmatch(r"(-?)(\d+):(\d+):(\d+(?:\.\d+)?)", fields.get("out_time", ""))
    if match is None:
        return None
    seconds = int(match[2]) * 3600 + int(match[3]) * 60 + float(match[4])
    return -seconds if match[1] else seconds


def _speed(value: str | None) -> float | None:
    try:
        speed = float((value or "").removesuffix("x"))
    except ValueError:  # "N/A"
        return None
    return speed if math.isfinite(speed) else None


# --- stderr ------------------------------------------------------------------------------------------

_NOISE_PREFIXES = (
    "ffmpeg version",
    "Input #",
    "Output #",
    "Stream mapping:",
    "Press [q]",
    "frame=",
    "size=",
    "Last message repeated",
    "video:",
)
_ERRORISH = re.compile(
    r"error|invalid|not found|fail|does not contain|no such file|matches no streams|not on whitelist|"
    r"unsupported|not supported|corrupt|cannot|could not|unable|denied|partial file|incomplete|"
    r"unknown|not allowed|out of memory|too large",
    re.IGNORECASE,
)
_TAG = re.compile(r"^\[[^\]]* @ 0x[0-9a-fA-F]+\]\s*")  # "[mov,mp4,... @ 0x55d1a90651c0] "
_WHITELIST = re.compile(r"(not on whitelist) '[^']*'")  # the whole allow-list is noise in a summary
_FILE_URL = re.compile(r"\s*(?:'file:[^']*'|(?<!\w)file:\S*)")  # our own file:/tmp/... paths mean nothing to a user


def summarize_stderr(stderr: str, max_lines: int = 4) -> str:
    """The meaningful last lines of ffmpeg's stderr: error-ish lines if any, else the last plain ones."""
    lines = []
    for raw in stderr.splitlines():
        if not raw.strip() or raw[0].isspace() or raw.startswith(_NOISE_PREFIXES):
            continue  # banner, config, stream descriptions and metadata are indented
        if raw.startswith("[") and " @ 0x" in raw and _ERRORISH.search(raw) is None:
            continue  # encoder statistics and other component chatter
        line = _FILE_URL.sub("", _TAG.sub("", raw)).strip().rstrip(".")
        line = _WHITELIST.sub(r"\1", line)
        if line:
            lines.append(line)
    chosen = [line for line in lines if _ERRORISH.search(line)] or lines
    picked: list[str] = []
    for line in reversed(chosen):  # the last occurrence of each distinct line, in order
        if line not in picked:
            picked.append(line)
        if len(picked) == max_lines:
            break
    return "\n".join(reversed(picked))


# --- running -----------------------------------------------------------------------------------------


@dataclass
class FfmpegResult:
    returncode: int
    log: str  # the full stderr text (only its tail when it passed _LOG_MEMORY_LIMIT; the log file has all)


_LOG_MEMORY_LIMIT = 4 * 1024 * 1024


def check(result: FfmpegResult) -> None:
    if result.returncode != 0:
        raise FfmpegFailedError(result.returncode, summarize_stderr(result.log))


async def run_ffmpeg(
    argv: list[str],
    *,
    log_path: Path,
    on_progress: Callable[[ProgressUpdate], Awaitable[None]] | None = None,
    stop_when: Callable[[str], Exception | None] | None = None,
    max_memory_bytes: int | None = None,
) -> FfmpegResult:
    """Run ffmpeg, streaming stderr to `log_path` and progress blocks to `on_progress`.

    `stop_when` sees each stderr line; an exception it returns stops the run and is raised (a limit
    hit: ffmpeg may otherwise carry on, or log the same error in a loop). `max_memory_bytes` caps
    ffmpeg's address space. A non-zero exit is returned, not raised (see `check`). If the caller is
    cancelled or anything raises (on_progress and stop_when included), the whole process group is
    SIGKILLed and reaped before re-raising.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stderr_tail = bytearray()
    truncated = False

    async def pump_stderr(stream: asyncio.StreamReader, log_file: Any) -> None:
        nonlocal truncated
        unfinished = b""  # the start of a line whose end has not arrived yet
        while chunk := await stream.read(65536):
            log_file.write(chunk)
            log_file.flush()  # the log is worth most when ffmpeg hangs or dies
            stderr_tail.extend(chunk)
            if len(stderr_tail) > _LOG_MEMORY_LIMIT:
                del stderr_tail[: len(stderr_tail) - _LOG_MEMORY_LIMIT]
                truncated = True
            if stop_when is not None:
                *lines, unfinished = (unfinished + chunk).split(b"\n")
                unfinished = unfinished[-4096:]
                for line in lines:
                    if (error := stop_when(line.decode("utf-8", "replace"))) is not None:
                        raise error

    async def pump_progress(stream: asyncio.StreamReader) -> None:
        parser = ProgressParser()
        async for line in stream:
            update = parser.feed(line)
            if update is not None and on_progress is not None:
                await on_progress(update)

    with open(log_path, "wb") as log_file:  # noqa: ASYNC230 - opening a local file does not wait on I/O worth a thread
        try:
            proc = await start_in_own_group(argv, max_memory_bytes=max_memory_bytes)
        except OSError as exc:
            raise FfmpegError(f"cannot start ffmpeg ({argv[0]}): {exc.strerror or exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            asyncio.create_task(pump_progress(proc.stdout)),
            asyncio.create_task(pump_stderr(proc.stderr, log_file)),
        ]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raise a failed on_progress
            returncode = await proc.wait()
        except BaseException:
            await kill_group_and_wait(proc, pumps)
            raise
    text = stderr_tail.decode("utf-8", "replace")
    if truncated:
        text = f"[... earlier output omitted; the full log is in {log_path}]\n" + text
    return FfmpegResult(returncode=returncode, log=text)
