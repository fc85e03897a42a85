"""The ffmpeg operations as data (method → argv, output container, MIME type), and running ffmpeg.

`build_argv` is a pure function so the presets can be pinned by golden-argv tests. `run_ffmpeg` runs
one ffmpeg in its own process group and kills that group if its caller is cancelled or fails, so no
ffmpeg outlives the job that started it. Probing (ffprobe or PyAV) lives in `probe.py`.

Input safety: the input is always passed as `file:<absolute path>` (a name starting with "-" or
holding ":" cannot be read as an option or a URL); `-protocol_whitelist file` keeps every nested
open on local files; `-format_whitelist` limits demuxers to ordinary audio/video containers. The
last one is what matters: an HLS playlist (or ffconcat script) may name *local* files, which the file
protocol allows (verified: without it ffmpeg encodes another directory's secret.ts from a .m3u8).
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import os
import re
import shutil
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediaflow.jobs.model import Method

if TYPE_CHECKING:  # re-exported lazily below (probe.py imports this module)
    from mediaflow.media.probe import (  # noqa: F401
        UNSAFE_FORMATS,
        AudioStreamInfo,
        MediaInfo,
        VideoStreamInfo,
        check_safe_input,
        probe,
    )


# --- errors --------------------------------------------------------------------------------------


class FfmpegError(Exception):
    """Base class of everything that goes wrong while probing or running ffmpeg."""


class InvalidFormatError(ValueError):
    """The requested output format is not available for the method; the message lists those that are."""


class ProbeError(FfmpegError):
    """The source is not a media file we accept; the message is fit to show to the user."""


class FfmpegFailedError(FfmpegError):
    def __init__(self, returncode: int, summary: str) -> None:
        self.returncode = returncode
        self.summary = summary
        if returncode < 0:
            message = f"ffmpeg was killed by signal {-returncode}"
        else:
            message = f"ffmpeg failed with exit code {returncode}"
        if summary:
            message += ": " + "; ".join(summary.splitlines())
        super().__init__(message)


# --- output formats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFormat:
    name: str
    extension: str  # without the dot: "mp4"
    mime_type: str


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("mp4", "mp4", "video/mp4"),
        OutputFormat("mov", "mov", "video/quicktime"),
        OutputFormat("mkv", "mkv", "video/x-matroska"),
        OutputFormat("webm", "webm", "video/webm"),
        OutputFormat("mp3", "mp3", "audio/mpeg"),
    )
}
# Passed explicitly with -f so the muxer never depends on the output file name.
_MUXERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "mp3": "mp3"}
_VIDEO_FORMATS = ("mp4", "mov", "mkv", "webm")
_AUDIO_FORMATS = ("mp3",)


def mime_type_for(filename: str) -> str | None:
    """The MIME type of one of our output files, by its extension (None for anything else)."""
    _, dot, extension = filename.rpartition(".")
    fmt = OUTPUT_FORMATS.get(extension.lower()) if dot else None
    return fmt.mime_type if fmt else None


def allowed_formats(method: Method) -> tuple[str, ...]:
    return _AUDIO_FORMATS if Method(method) is Method.EXTRACT_AUDIO else _VIDEO_FORMATS


def default_format(method: Method) -> str:
    return allowed_formats(method)[0]


def resolve_output_format(method: Method, requested: str | None) -> OutputFormat:
    """The output format for a request: None or blank → the method's default; case and a leading dot ignored."""
    method = Method(method)
    allowed = allowed_formats(method)
    if requested is None or not requested.strip():
        return OUTPUT_FORMATS[allowed[0]]
    name = requested.strip().lower().removeprefix(".")
    if name not in allowed:
        raise _not_available(method, requested)
    return OUTPUT_FORMATS[name]


def _not_available(method: Method, requested: str) -> InvalidFormatError:
    allowed = ", ".join(allowed_formats(method))
    return InvalidFormatError(f"output_format {requested!r} is not available for {method.value}; choose one of: {allowed}")


# --- binaries --------------------------------------------------------------------------------------


def ffmpeg_binary(settings: Any) -> str:
    """FFMPEG_BINARY if set, else `ffmpeg` on PATH, else the static build bundled with imageio-ffmpeg."""
    configured = getattr(settings, "FFMPEG_BINARY", None)
    if configured:
        return str(configured)
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffprobe_binary(settings: Any) -> str | None:
    """FFPROBE_BINARY if set, else `ffprobe` on PATH, else None (probing then uses PyAV)."""
    configured = getattr(settings, "FFPROBE_BINARY", None)
    return str(configured) if configured else shutil.which("ffprobe")


# --- argv ------------------------------------------------------------------------------------------

# Demuxers for ordinary audio/video files (names as in `ffmpeg -demuxers`; "mov" matches
# "mov,mp4,m4a,3gp,3g2,mj2", "matroska" matches "matroska,webm"). Everything that opens other files
# or URLs (hls, dash, concat, imf, sdp, image2, dvdvideo...) is left out. Extend with care.
INPUT_FORMATS: tuple[str, ...] = (
    # video containers and raw video streams
    "mov", "matroska", "avi", "flv", "mpegts", "mpeg", "asf", "ogg", "mxf", "dv", "nut", "rm",
    "wtv", "ivf", "obu", "h264", "hevc", "m4v", "mpegvideo", "gif", "yuv4mpegpipe",
    # audio
    "wav", "w64", "mp3", "aac", "flac", "aiff", "caf", "amr", "ac3", "eac3", "dts", "truehd",
    "wv", "ape", "tta", "au", "mpc", "mpc8", "loas", "tak",
)  # fmt: skip
INPUT_SAFETY_OPTIONS: tuple[str, ...] = (
    "-protocol_whitelist", "file",
    "-format_whitelist", ",".join(INPUT_FORMATS),
)  # fmt: skip
_GLOBAL_OPTIONS = ("-hide_banner", "-nostdin", "-y", "-nostats", "-progress", "pipe:1", "-loglevel", "info")

# "0:V" (capital) skips attached pictures such as cover art; "?" lets a source without audio through.
_MAP_VIDEO_AUDIO = ["-map", "0:V:0", "-map", "0:a:0?"]


def file_url(path: Path | str) -> str:
    """`file:` + absolute path: ffmpeg reads it neither as an option ("-x.mp4") nor as a URL ("a:b")."""
    return "file:" + os.path.abspath(path)


def _x264(crf: int) -> list[str]:
    return ["-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p"]


def _vp9(crf: int) -> list[str]:
    # WebM cannot hold H.264/AAC. libvpx's defaults (cpu-used 0/1, no row-mt) are ~3x slower than
    # these for about the same size (measured: 5 s of 720p, 12.6 s → 4.1 s on 2 cores).
    return ["-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0", "-deadline", "good", "-cpu-used", "4",
            "-row-mt", "1", "-pix_fmt", "yuv420p"]  # fmt: skip


def _audio(fmt: str, bitrate: str) -> list[str]:
    return ["-c:a", "libopus" if fmt == "webm" else "aac", "-b:a", bitrate]


def _method_options(method: Method, fmt: str) -> list[str]:
    webm = fmt == "webm"
    if method is Method.EXTRACT_AUDIO:
        return ["-map", "0:a:0", "-vn", "-c:a", "libmp3lame", "-b:a", "192k"]
    if method is Method.COMPRESS:
        return [*_MAP_VIDEO_AUDIO, *(_vp9(36) if webm else _x264(28)), *_audio(fmt, "128k")]
    if method is Method.RESIZE:
        # The README's preset is exactly 1280x720: sources of another aspect ratio are stretched.
        return [*_MAP_VIDEO_AUDIO, "-vf", "scale=1280:720", *(_vp9(31) if webm else _x264(23)), *_audio(fmt, "128k")]
    if method is Method.BLACK_AND_WHITE:
        return [*_MAP_VIDEO_AUDIO, "-vf", "hue=s=0", *(_vp9(31) if webm else _x264(23)), *_audio(fmt, "128k")]
    if method is Method.CONVERT_FORMAT:
        if webm:
            video = _vp9(31)
        else:
            video = ["-c:v", "libx264", "-profile:v", "high", "-level:v", "4.2", "-pix_fmt", "yuv420p"]
        # moov atom first, so browsers start playing before the whole file has arrived
        faststart = ["-movflags", "+faststart"] if fmt in ("mp4", "mov") else []
        return [*_MAP_VIDEO_AUDIO, *video, *faststart, *_audio(fmt, "192k")]
    raise ValueError(f"unknown method {method!r}")


def build_argv(
    ffmpeg: str,
    method: Method,
    input_path: Path,
    output_path: Path,
    fmt: OutputFormat,
    *,
    threads: int = 0,
) -> list[str]:
    method = Method(method)
    if fmt.name not in allowed_formats(method):
        raise _not_available(method, fmt.name)
    argv = [ffmpeg, *_GLOBAL_OPTIONS, *INPUT_SAFETY_OPTIONS, "-i", file_url(input_path)]
    argv += _method_options(method, fmt.name)
    if threads > 0:
        argv += ["-threads", str(threads)]
    argv += ["-f", _MUXERS[fmt.name], file_url(output_path)]
    return argv


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


def percent(out_time_s: float | None, duration: float | None) -> int | None:
    """0..99 while running (100 is only ever set when the job completes); None when unknown."""
    if out_time_s is None or duration is None or not math.isfinite(out_time_s) or not duration > 0:
        return None
    return max(0, min(99, int(out_time_s * 100 / duration)))


# --- stderr ------------------------------------------------------------------------------------------

_NOISE_PREFIXES = (
    "ffmpeg version", "Input #", "Output #", "Stream mapping:", "Press [q]", "frame=", "size=",
    "Last message repeated", "video:",
)  # fmt: skip
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
) -> FfmpegResult:
    """Run ffmpeg, streaming stderr to `log_path` and progress blocks to `on_progress`.

    A non-zero exit is returned, not raised (see `check`). If the caller is cancelled or anything
    raises (on_progress included), the whole process group is SIGKILLed and reaped before re-raising.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stderr_tail = bytearray()
    truncated = False

    async def pump_stderr(stream: asyncio.StreamReader, log_file: Any) -> None:
        nonlocal truncated
        while chunk := await stream.read(65536):
            log_file.write(chunk)
            log_file.flush()  # the log is worth most when ffmpeg hangs or dies
            stderr_tail.extend(chunk)
            if len(stderr_tail) > _LOG_MEMORY_LIMIT:
                del stderr_tail[: len(stderr_tail) - _LOG_MEMORY_LIMIT]
                truncated = True

    async def pump_progress(stream: asyncio.StreamReader) -> None:
        parser = ProgressParser()
        async for line in stream:
            update = parser.feed(line)
            if update is not None and on_progress is not None:
                await on_progress(update)

    with open(log_path, "wb") as log_file:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # own process group: killpg reaches ffmpeg and anything it starts
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise FfmpegError(f"cannot start ffmpeg ({argv[0]}): {exc.strerror or exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [asyncio.create_task(pump_progress(proc.stdout)), asyncio.create_task(pump_stderr(proc.stderr, log_file))]
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raise a failed on_progress
            returncode = await proc.wait()
        except BaseException:
            await _kill_and_reap(proc, pumps)
            raise
    text = stderr_tail.decode("utf-8", "replace")
    if truncated:
        text = f"[... earlier output omitted; the full log is in {log_path}]\n" + text
    return FfmpegResult(returncode=returncode, log=text)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL ffmpeg when the worker dies. Cancellation
    covers every orderly exit; this covers a worker that is SIGKILLed or crashes outright, which would
    otherwise leave ffmpeg encoding for a job that another worker is about to take over."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the process group kill still covers orderly exits
        pass


_PR_SET_PDEATHSIG = 1


async def _kill_and_reap(proc: asyncio.subprocess.Process, pumps: list[asyncio.Task[None]]) -> None:
    # Kill first, synchronously: even if this task is cancelled again below, ffmpeg is already dying.
    if proc.returncode is None:  # not yet reaped, so the pid (= pgid) cannot have been reused
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for task in pumps:
        task.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)
    await proc.wait()
