"""Resource limits enforced while ffmpeg decodes, not only on the probed first frame.

The probe (policy.py) sees a file's header and first frame; an attacker controls everything after
that. A raw H.264 stream can switch from 320x240 to 8K mid-stream, a raw stream declares no duration,
and a 100 KB file can make the decoder and encoder ask for gigabytes. So every ffmpeg run also gets:

- `-max_pixels` on the input: the decoder refuses any frame above MAX_INPUT_PIXELS (and above
  MAX_INPUT_DIMENSION², the largest frame the per-side limit allows); ffmpeg then logs "exceeds
  specified max pixel count", which stops the run.
- `-t` on the input, a little past MAX_INPUT_DURATION_S: ffmpeg never reads more than that, and a
  decoded duration past the limit means the source was longer (`check_decoded_duration`).
- an address-space cap (RLIMIT_AS, FFMPEG_MAX_MEMORY_MB) set in the child before exec
  (subprocesses.py): allocation fails instead of the worker's machine swapping or OOM-killing.
  Under the cap ffmpeg's decoder can log "Cannot allocate memory" in a loop without ever exiting
  (measured: 25,000 lines a second), so that line stops the run too.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from mediaflow.media.errors import InputLimitError
from mediaflow.settings import Settings

# `-t` reads this much past the limit, so a source of exactly the limit passes and a longer one
# shows up as a decoded duration past limit + DURATION_TOLERANCE_S.
DURATION_READ_PAST_S = 1.0
DURATION_TOLERANCE_S = 0.5

_PIXELS = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count")
_CRASH_SIGNALS = (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS)
_NO_MEMORY = re.compile(
    r"cannot allocate memory|could not allocate|out of memory|failed to allocate|malloc of size \d+ failed",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int
    max_duration_s: float
    max_memory_mb: int  # 0: no cap

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeLimits:
        limits = settings.limits
        return cls(
            max_pixels=min(limits.max_pixels, limits.max_dimension**2),
            max_duration_s=limits.max_duration_s,
            max_memory_mb=settings.ffmpeg.max_memory_mb,
        )

    @property
    def memory_bytes(self) -> int | None:
        return self.max_memory_mb * 1024 * 1024 if self.max_memory_mb else None

    def input_options(self) -> list[str]:
        """Options that go before `-i`, so they apply to the input's demuxer and decoders."""
        return ["-max_pixels", str(self.max_pixels), "-t", f"{self.max_duration_s + DURATION_READ_PAST_S:g}"]

    def breach(self, stderr_line: str) -> InputLimitError | None:
        """The limit a line of ffmpeg's stderr says the input hit, as the job's error, else None."""
        if match := _PIXELS.search(stderr_line):
            return InputLimitError(
                f"the source has {match[1]}x{match[2]} frames after its start; at most {self.max_pixels} pixels a "
                "frame are decoded (MAX_INPUT_PIXELS, MAX_INPUT_DIMENSION)"
            )
        if self.max_memory_mb and _NO_MEMORY.search(stderr_line):
            return self.out_of_memory()
        return None

    def out_of_memory(self) -> InputLimitError:
        return InputLimitError(
            f"ffmpeg needed more than FFMPEG_MAX_MEMORY_MB={self.max_memory_mb} MB for this source; send a "
            "smaller frame size, or raise FFMPEG_MAX_MEMORY_MB if the worker has the memory"
        )

    def explain_failure(self, returncode: int, stderr: str) -> InputLimitError | None:
        """After a failed run: the limit that made it fail, if one did (checked before the generic
        ffmpeg error, which would only say "exit code 1")."""
        if returncode == 0:
            return None
        for line in stderr.splitlines():
            if (error := self.breach(line)) is not None:
                return error
        if not self.max_memory_mb:
            return None
        if returncode in _CRASH_SIGNALS:  # an unchecked failed allocation
            return self.out_of_memory()
        # A decoder whose frame allocation failed says only "get_buffer() failed"; the same line
        # follows a frame refused for its size, which "image parameters invalid" announces.
        if "get_buffer() failed" in stderr and "image parameters invalid" not in stderr:
            return self.out_of_memory()
        return None

    def check_decoded_duration(self, seconds: float | None) -> None:
        """`-t` stopped reading just past the limit: more than the limit decoded means a longer source
        (one that declared no duration, or a false one, since the probe checked the declared one)."""
        if seconds is not None and seconds > self.max_duration_s + DURATION_TOLERANCE_S:
            raise InputLimitError(
                f"the source lasts longer than MAX_INPUT_DURATION_S={self.max_duration_s:g} s "
                "(it declared no duration, or a shorter one)"
            )
