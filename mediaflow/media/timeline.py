"""A media file's packet timeline: frame counts, keyframe times, durations and timestamp order.

Read by demuxing only (PyAV, no decoding), so it costs a fraction of a second even for long files.
Chunked encoding uses it to plan chunks on keyframes and to verify a joined output against its source;
the quality report uses it to know which frames a comparison covers. PyAV is already the product's
probing fallback, so this needs no ffprobe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mediaflow.media.errors import ProbeError
from mediaflow.media.probe_threads import PROBE_THREADS


@dataclass(frozen=True)
class StreamTimeline:
    kind: str  # "video" | "audio"
    codec: str
    frames: int  # packets; for video one packet is one frame
    start: float  # seconds: the earliest presentation time
    end: float  # seconds: the latest presentation time plus that packet's duration
    keyframes: tuple[float, ...] = field(default=(), repr=False)  # presentation times, ascending
    # keyframes that open an *open* GOP: frames decoded after them but shown before them (leading
    # pictures: HEVC's RASL after a CRA, x264 --open-gop) reference the GOP before, so a piece that
    # starts there cannot decode them. x265 makes every keyframe but the first one of these by default.
    open_keyframes: frozenset[float] = field(default=frozenset(), repr=False)
    dts_monotonic: bool = True  # decode timestamps strictly increase (video) / never go back (audio)
    pts_unique: bool = True  # no two frames share a presentation time
    frame_duration: float | None = None  # seconds, the most common packet duration (video)
    times: tuple[float, ...] = field(default=(), repr=False)  # every frame's presentation time, ascending (video)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def origin(self) -> float:
        """The first frame's time: clip ranges count from it (an MPEG-TS file starts at 1.4 s, not 0)."""
        return self.times[0] if self.times else self.start

    def frames_between(self, start: float, end: float | None) -> int:
        """How many frames are presented in [start, end) seconds after the first (end None: to the end)."""
        # as ffmpeg's -ss/-t cut: frames at or after start, before end; 1 ms of slack for containers that
        # round timestamps (Matroska stores milliseconds)
        start, end = start + self.origin - 0.001, None if end is None else end + self.origin - 0.001
        return sum(1 for t in self.times if t >= start and (end is None or t < end))


@dataclass(frozen=True)
class Timeline:
    video: StreamTimeline | None
    audio: StreamTimeline | None


async def read_timeline(path: Path, *, timeout: float = 120.0) -> Timeline:
    """The first video and audio streams' timelines; raises ProbeError when the file cannot be demuxed.

    PyAV blocks in C, so this runs on the probe threads (probe_threads.py), not asyncio's default pool:
    a crafted source that keeps the demuxer busy holds one of those, never the process's I/O threads.
    """
    try:
        return await PROBE_THREADS.run(_read, Path(path), timeout=timeout)
    except TimeoutError as exc:
        raise ProbeError(f"reading the timestamps of {Path(path).name} took longer than {timeout:g} s") from exc


def _read(path: Path) -> Timeline:
    import av  # imported here: only workers that chunk or measure need it

    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError) as exc:
        raise ProbeError(f"cannot read {path.name} to check its timestamps ({exc})") from exc
    with container:
        video = next((s for s in container.streams.video if not _is_attached_picture(s)), None)
        audio = next(iter(container.streams.audio), None)
        wanted = [s for s in (video, audio) if s is not None]
        if not wanted:
            return Timeline(None, None)
        stats = {s.index: _Accumulator(s) for s in wanted}
        for packet in container.demux(wanted):
            if packet.size == 0 and packet.pts is None:  # the flush packet demux yields at the end
                continue
            stats[packet.stream.index].add(packet)
        return Timeline(
            video=stats[video.index].result("video") if video is not None else None,
            audio=stats[audio.index].result("audio") if audio is not None else None,
        )


def _is_attached_picture(stream) -> bool:  # av.VideoStream (PyAV, imported lazily)
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)  # cover art, not the video


class _Accumulator:
    def __init__(self, stream) -> None:  # av.Stream (PyAV, imported lazily)
        self.time_base = stream.time_base
        self.codec = stream.codec_context.name
        self.count = 0
        self.start: int | None = None
        self.end: int | None = None
        self.keyframes: list[int] = []
        self.open_keyframes: set[int] = set()
        self.gop_key: int | None = None  # the last keyframe's pts, while the packets of its GOP are read
        self.last_dts: int | None = None
        self.dts_strict = True
        self.dts_nondecreasing = True
        self.pts_seen: set[int] = set()
        self.pts_unique = True
        self.durations: dict[int, int] = {}

    def add(self, packet) -> None:  # av.Packet (PyAV, imported lazily)
        self.count += 1
        pts, dts, duration = packet.pts, packet.dts, packet.duration or 0
        if dts is not None:
            if self.last_dts is not None:
                self.dts_strict &= dts > self.last_dts
                self.dts_nondecreasing &= dts >= self.last_dts
            self.last_dts = dts
        if pts is None:
            return
        if pts in self.pts_seen:
            self.pts_unique = False
        self.pts_seen.add(pts)
        self.start = pts if self.start is None else min(self.start, pts)
        self.end = pts + duration if self.end is None else max(self.end, pts + duration)
        if packet.is_keyframe:
            self.keyframes.append(pts)
            self.gop_key = pts
        elif self.gop_key is not None and pts < self.gop_key:  # a leading picture: its GOP is open
            self.open_keyframes.add(self.gop_key)
        if duration:
            self.durations[duration] = self.durations.get(duration, 0) + 1

    def result(self, kind: str) -> StreamTimeline:
        tb = float(self.time_base)
        common = max(self.durations, key=self.durations.__getitem__) if self.durations else None
        return StreamTimeline(
            kind=kind,
            codec=self.codec,
            frames=self.count,
            start=(self.start or 0) * tb,
            end=(self.end or 0) * tb,
            keyframes=tuple(k * tb for k in sorted(self.keyframes)),
            open_keyframes=frozenset(k * tb for k in self.open_keyframes),
            dts_monotonic=self.dts_strict if kind == "video" else self.dts_nondecreasing,
            pts_unique=self.pts_unique,
            frame_duration=common * tb if common else None,
            times=tuple(t * tb for t in sorted(self.pts_seen)) if kind == "video" else (),
        )
