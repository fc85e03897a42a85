"""A job's overall progress across its phases, as one monotonic 0-100 percentage.

Encoding dominates a job's time, so it gets most of the range; downloading and uploading move the
bar by bytes transferred within their smaller spans, so a large S3 source or result shows movement
too. 100 is reserved for the completed state: a run reports at most 99.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mediaflow.jobs.model import Phase

# (start, end) of each phase on the overall 0-100 scale.
PHASE_SPAN: dict[Phase, tuple[int, int]] = {
    Phase.DOWNLOADING: (0, 8),
    Phase.PROBING: (8, 10),
    Phase.ENCODING: (10, 95),
    Phase.UPLOADING: (95, 99),
}


@dataclass
class RunProgress:
    """The latest progress of one run, written to the store by the lease keeper (throttled)."""

    phase: Phase = Phase.DOWNLOADING
    percent: int = 0
    speed: float | None = None
    eta_seconds: float | None = None
    last_advance: float = field(default_factory=time.monotonic)  # for the stall detector
    downloaded_bytes: int | None = None  # the source's bytes fetched so far (downloading phase)
    source_size_bytes: int | None = None
    dirty: bool = True
    _encoded_s: float = 0.0

    def enter(self, phase: Phase) -> None:
        self.phase = phase
        self.speed = None if phase is not Phase.ENCODING else self.speed
        self._advance_to(PHASE_SPAN[phase][0])
        self.last_advance = time.monotonic()
        self.dirty = True

    def encoding(self, out_time_s: float | None, duration_s: float | None, speed: float | None) -> None:
        """Record an ffmpeg progress block: `out_time_s` seconds of the input encoded so far."""
        if out_time_s is not None and out_time_s > self._encoded_s:
            self._encoded_s = out_time_s
            self.last_advance = time.monotonic()  # output moved: not stalled
            if duration_s:
                start, end = PHASE_SPAN[Phase.ENCODING]
                self._advance_to(start + int((end - start) * min(out_time_s / duration_s, 1.0)))
        if speed and speed > 0:
            self.speed = round(speed, 3)
            if duration_s:
                self.eta_seconds = round(max(duration_s - self._encoded_s, 0.0) / speed, 1)
        self.dirty = True

    def encoding_share(self, done: float, speed: float | None) -> None:
        """A multi-output job's encodes, `done` 0-1 of their estimated cost. No ETA: its runs differ too
        much in speed; `speed` is the current run's."""
        self.encoding(done * 100, 100.0, None)
        if speed and speed > 0:
            self.speed = round(speed, 3)

    def transfer(self, done_bytes: int, total_bytes: int | None) -> None:
        """Bytes moved in the current phase (downloading or uploading); a `TransferProgress` callback."""
        self.last_advance = time.monotonic()
        if self.phase is Phase.DOWNLOADING:
            self.downloaded_bytes, self.source_size_bytes = done_bytes, total_bytes
            self.dirty = True
        if total_bytes:
            start, end = PHASE_SPAN[self.phase]
            self._advance_to(start + int((end - start) * min(done_bytes / total_bytes, 1.0)))
            self.dirty = True

    def _advance_to(self, value: int) -> None:
        value = min(value, 99)
        if value > self.percent:
            self.percent = value
            self.last_advance = time.monotonic()

    def as_changes(self) -> dict:
        changes = {"phase": self.phase, "progress": self.percent, "speed": self.speed, "eta_seconds": self.eta_seconds}
        if self.downloaded_bytes is not None:
            changes |= {"downloaded_bytes": self.downloaded_bytes, "source_size_bytes": self.source_size_bytes}
        return changes
