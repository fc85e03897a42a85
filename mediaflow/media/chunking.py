"""Chunked encoding: split a video on keyframes, encode the chunks apart, join them, check the join.

The steps are separate functions because each becomes its own task on the queue (any worker can take
a chunk): `plan_chunks` → `split` (one stream-copy pass) → `encode_chunk` per chunk and `encode_audio`
once → `join` (concat demuxer, stream copy, audio muxed in) → `verify_join`. `encode_chunked` runs
them all on one machine, for tests, the benchmark and a worker that has the whole job.

Pitfalls, most of them written up by Av1an (github.com/master-of-zen/Av1an, split.rs/concat.rs):
- Cuts must fall on keyframes that start a *closed* GOP, or the frames after the cut that reference
  the previous GOP (open GOP, leading B-frames) cannot be decoded and are dropped (measured: x265's
  default open GOPs lost 6 of 75 frames, and the job fell back to a single encode). The timeline marks
  keyframes followed by leading pictures (`open_keyframes`) and `plan_chunks` never cuts there; a
  source with no closed keyframe to cut on is one chunk. We cut with the segment muxer on frame numbers
  of keyframes (Av1an's `-segment_frames`), never on times, and the frame count check below still
  catches anything else that drops frames.
- Timestamps: a chunk of a B-frame stream starts at its decoder delay, not at zero (measured: the
  first chunk of an x264 MP4 starts at 0.0667 s). Each chunk encode restarts its timestamps at zero
  (`setpts=PTS-STARTPTS`), so the concat demuxer, which lays the pieces end to end by their
  durations, gives exactly the source's frame times. Chunks stay MP4 (the source's time base), not
  Matroska, whose millisecond timestamps would make a 30 fps video jitter between 33 and 34 ms frames.
- Concat copies the first piece's codec parameters for the whole output (Av1an: "does not work with
  x265"): every chunk is encoded with the same options, and x265 chunks repeat their headers in
  band (`repeat-headers=1`) so a decoder never depends on the first piece's extradata.
- Audio is encoded once over the whole range, never per chunk: per-chunk audio would put an encoder
  priming gap (AAC: 1024 samples) at every join.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow.media.concat import concat_copy
from mediaflow.media.ffmpeg import ProgressUpdate, check, run_ffmpeg
from mediaflow.media.inputs import INPUT_SAFETY_OPTIONS, file_url
from mediaflow.media.join_check import AV_TOLERANCE_S, JoinCheck, verify_join
from mediaflow.media.timeline import StreamTimeline, read_timeline

# The join check lives in join_check.py; its names stay importable from here, where callers find them.
__all__ = [
    "AV_TOLERANCE_S",
    "Chunk",
    "ChunkingError",
    "JoinCheck",
    "encode_audio",
    "encode_audio_argv",
    "encode_chunk",
    "encode_chunk_argv",
    "chunk_video_options",
    "encode_chunked",
    "join",
    "plan_chunks",
    "split",
    "verify_join",
]


class ChunkingError(Exception):
    """The source cannot be chunked (no keyframes, no video); the caller encodes it in one piece."""


@dataclass(frozen=True)
class Chunk:
    index: int
    first_frame: int  # the source frame (presentation order) the chunk starts at: a keyframe
    start: float  # time of that frame, seconds after the source's first frame
    end: float | None  # source time the next chunk starts at; None: the end of the source
    trim_start: float = 0.0  # chunk-local seconds to drop at the start (a clip starting inside it)
    trim_end: float | None = None  # chunk-local second to stop at (a clip ending inside it)

    @property
    def name(self) -> str:
        return f"chunk{self.index:05d}.mp4"


def plan_chunks(
    video: StreamTimeline, chunk_seconds: float, clip_start: float = 0.0, clip_end: float | None = None
) -> list[Chunk]:
    """Chunks of about `chunk_seconds`, each starting on a keyframe, covering [clip_start, clip_end).

    A chunk is never shorter than one GOP (it runs to a keyframe), and a last piece shorter than half
    a chunk is merged into the one before, rather than paying a task for a second of video.
    """
    if not video.times or not video.keyframes:
        raise ChunkingError("the video has no keyframes to cut on")
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be positive; got {chunk_seconds!r}")
    half = (video.frame_duration or 0.001) / 2
    index_of = {round(t, 6): i for i, t in enumerate(video.times)}
    # times from here on count from the first frame, as clip ranges and ffmpeg's -ss do
    keyframes = [
        (t - video.origin, index_of[round(t, 6)])
        for t in video.keyframes
        if round(t, 6) in index_of and t not in video.open_keyframes  # closed GOPs only: nothing lost at a cut
    ]
    starts_before_clip = [k for k in keyframes if k[0] <= clip_start + half]
    if not starts_before_clip:
        raise ChunkingError("the video does not start with a keyframe")
    bounds = [starts_before_clip[-1]]
    for time, frame in keyframes:
        if clip_end is not None and time >= clip_end - half:
            break
        if time >= bounds[-1][0] + chunk_seconds - half:
            bounds.append((time, frame))
    last_end = clip_end if clip_end is not None else video.end - video.origin
    if len(bounds) > 1 and last_end - bounds[-1][0] < chunk_seconds / 2:
        bounds.pop()  # a short tail joins the chunk before it
    chunks = []
    for i, (start, frame) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else None
        trim_start = max(0.0, clip_start - start)
        trim_end = None
        if clip_end is not None and (end is None or clip_end < end - half):
            trim_end = clip_end - start
        chunks.append(
            Chunk(i, frame, start, end, round(trim_start, 6), None if trim_end is None else round(trim_end, 6))
        )
    return chunks


def _ffmpeg(ffmpeg: str) -> list[str]:
    return [ffmpeg, "-hide_banner", "-nostdin", "-y", "-nostats", "-progress", "pipe:1", "-loglevel", "info"]


async def split(ffmpeg: str, source: Path, chunks: Sequence[Chunk], workdir: Path) -> list[Path]:
    """Cut the source's video into the planned chunks, by stream copy, in one pass; no audio."""
    workdir.mkdir(parents=True, exist_ok=True)
    first = chunks[0]
    # Frame numbers count from the first frame written, so they are relative to the first chunk's.
    cuts = ",".join(str(c.first_frame - first.first_frame) for c in chunks[1:])
    seek: list[str] = []
    # A clip starting later: seek (by stream copy: to the keyframe at or before). The seek counts from
    # the container's start, which can be an audio packet's: the join check catches a source where
    # that differs from the first video frame by more than the slack.
    if first.first_frame > 0:
        seek = ["-ss", f"{first.start + _seek_slack(chunks):.6f}"]
    # Stop after the last planned chunk: the frames past a clip's end are not worth copying.
    last = chunks[-1]
    stop = ["-t", f"{last.start + last.trim_end + 1 - first.start:.6f}"] if last.trim_end is not None else []
    # One chunk has no cut: the segment muxer would then cut every 2 s (its default segment_time), and
    # all but the first piece would be dropped below as "past a clip's end"; write the piece directly.
    target = (
        [
            "-f",
            "segment",
            "-segment_format",
            "mp4",
            "-reset_timestamps",
            "1",
            "-segment_frames",
            cuts,
            file_url(workdir / "split%05d.mp4"),
        ]
        if cuts
        else ["-f", "mp4", file_url(workdir / "split00000.mp4")]
    )
    argv = [
        *_ffmpeg(ffmpeg),
        *INPUT_SAFETY_OPTIONS,
        *seek,
        "-i",
        file_url(source),
        *stop,
        "-map",
        "0:V:0",
        "-an",
        "-sn",
        "-dn",
        "-c",
        "copy",
        *target,
    ]
    check(await run_ffmpeg(argv, log_path=workdir / "split.log"))
    paths = [workdir / f"split{c.index:05d}.mp4" for c in chunks]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ChunkingError(f"splitting made fewer pieces than planned (missing {', '.join(missing)})")
    for extra in sorted(workdir.glob("split*.mp4"))[len(paths) :]:
        extra.unlink()  # past a clip's end
    return paths


def _seek_slack(chunks: Sequence[Chunk]) -> float:
    """A little past a keyframe's time, so float rounding cannot make a seek land on the keyframe before."""
    spans = [c.end - c.start for c in chunks if c.end is not None]
    return min(0.005, min(spans, default=1.0) / 4)


def encode_chunk_argv(
    ffmpeg: str, piece: Path, chunk: Chunk, output: Path, video_options: Sequence[str], *, threads: int = 0
) -> list[str]:
    """Encode one split piece: the output's video options (filters as one `-vf`), timestamps from zero,
    a keyframe on its first frame, no audio."""
    trim = ["-ss", f"{chunk.trim_start:.6f}"] if chunk.trim_start else []
    if chunk.trim_end is not None:
        trim += ["-t", f"{chunk.trim_end - chunk.trim_start:.6f}"]
    return [
        *_ffmpeg(ffmpeg),
        *INPUT_SAFETY_OPTIONS,
        *trim,
        "-i",
        file_url(piece),
        "-map",
        "0:V:0",
        *chunk_video_options(video_options),
        "-force_key_frames",
        "0",
        "-an",
        "-sn",
        "-dn",
        *(["-threads", str(threads)] if threads else []),
        "-f",
        "mp4",
        file_url(output),
    ]


def chunk_video_options(video_options: Sequence[str]) -> list[str]:
    """The output's video options with `setpts=PTS-STARTPTS` first in its filter chain, and x265
    told to repeat its headers in every chunk."""
    options = list(video_options)
    if "libx265" in options:
        if "-x265-params" in options:
            i = options.index("-x265-params") + 1
            options[i] = f"{options[i]}:repeat-headers=1"
        else:
            options += ["-x265-params", "repeat-headers=1"]
    for flag in ("-vf", "-filter:v"):
        if flag in options:
            i = options.index(flag) + 1
            options[i] = f"setpts=PTS-STARTPTS,{options[i]}"
            return options
    return ["-vf", "setpts=PTS-STARTPTS", *options]


async def encode_chunk(
    ffmpeg: str,
    piece: Path,
    chunk: Chunk,
    output: Path,
    video_options: Sequence[str],
    *,
    threads: int = 0,
    log_path: Path,
    on_progress: Callable[[ProgressUpdate], Awaitable[None]] | None = None,
) -> None:
    check(
        await run_ffmpeg(
            encode_chunk_argv(ffmpeg, piece, chunk, output, video_options, threads=threads),
            log_path=log_path,
            on_progress=on_progress,
        )
    )


def encode_audio_argv(
    ffmpeg: str,
    source: Path,
    output: Path,
    audio_options: Sequence[str],
    *,
    muxer: str,
    clip_start: float = 0.0,
    clip_end: float | None = None,
    threads: int = 0,
) -> list[str]:
    """The audio of the whole range, once, in the final container's muxer (so AAC keeps its edit list).

    The first audio track, unless `audio_options` map their own streams: every kept audio track and the
    text subtitles (outputs/video.chunk_audio_args), which the join then copies in beside the video.
    """
    cut = ["-ss", f"{clip_start:.6f}"] if clip_start else []
    if clip_end is not None:
        cut += ["-t", f"{clip_end - clip_start:.6f}"]
    own_maps = "-map" in audio_options
    return [
        *_ffmpeg(ffmpeg),
        *INPUT_SAFETY_OPTIONS,
        *cut,
        "-i",
        file_url(source),
        *([] if own_maps else ["-map", "0:a:0"]),
        "-vn",
        *([] if own_maps else ["-sn"]),
        "-dn",
        *audio_options,
        *(["-threads", str(threads)] if threads else []),
        "-f",
        muxer,
        file_url(output),
    ]


async def encode_audio(
    ffmpeg: str,
    source: Path,
    output: Path,
    audio_options: Sequence[str],
    *,
    muxer: str,
    clip_start: float = 0.0,
    clip_end: float | None = None,
    threads: int = 0,
    log_path: Path,
    on_progress: Callable[[ProgressUpdate], Awaitable[None]] | None = None,
) -> None:
    argv = encode_audio_argv(
        ffmpeg, source, output, audio_options, muxer=muxer, clip_start=clip_start, clip_end=clip_end, threads=threads
    )
    check(await run_ffmpeg(argv, log_path=log_path, on_progress=on_progress))


async def join(
    ffmpeg: str,
    encoded: Sequence[Path],
    output: Path,
    *,
    audio: Path | None,
    muxer: str,
    output_options: Sequence[str] = (),
    log_path: Path,
) -> None:
    """Concatenate the encoded chunks (all in one directory) and mux the audio, by stream copy."""
    directory = encoded[0].parent
    if any(p.parent != directory for p in encoded):
        raise ValueError("the encoded chunks must be in one directory")
    await concat_copy(
        ffmpeg,
        [p.name for p in encoded],
        directory,
        output,
        log_path=log_path,
        audio=audio,
        muxer=muxer,
        output_options=output_options,
    )


async def encode_chunked(
    ffmpeg: str,
    source: Path,
    output: Path,
    workdir: Path,
    *,
    video_options: Sequence[str],
    audio_options: Sequence[str] | None,
    muxer: str = "mp4",
    output_options: Sequence[str] = (),
    chunk_seconds: float = 15.0,
    clip_start: float = 0.0,
    clip_end: float | None = None,
    concurrency: int = 1,
    threads: int = 0,
) -> JoinCheck:
    """All the steps on this machine, `concurrency` chunk encodes at a time; returns the join check.

    `audio_options` None: the output has no audio. The caller publishes `output` only if the check is ok.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    timeline = await read_timeline(source)
    if timeline.video is None:
        raise ChunkingError("the source has no video")
    chunks = plan_chunks(timeline.video, chunk_seconds, clip_start, clip_end)
    pieces = await split(ffmpeg, source, chunks, workdir / "split")
    encoded_dir = workdir / "encoded"
    encoded_dir.mkdir(exist_ok=True)
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(chunk: Chunk, piece: Path) -> Path:
        async with limit:
            out = encoded_dir / chunk.name
            await encode_chunk(
                ffmpeg, piece, chunk, out, video_options, threads=threads, log_path=encoded_dir / f"{chunk.name}.log"
            )
            return out

    with_audio = audio_options is not None and timeline.audio is not None
    audio_path = workdir / "audio"
    async with asyncio.TaskGroup() as group:  # one failure cancels (and kills) the other encodes
        tasks = [group.create_task(one(c, p)) for c, p in zip(chunks, pieces, strict=True)]
        if with_audio:
            group.create_task(
                encode_audio(
                    ffmpeg,
                    source,
                    audio_path,
                    audio_options or [],
                    muxer=muxer,
                    clip_start=clip_start,
                    clip_end=clip_end,
                    threads=threads,
                    log_path=workdir / "audio.log",
                )
            )
    encoded = [t.result() for t in tasks]
    await join(
        ffmpeg,
        encoded,
        output,
        audio=audio_path if with_audio else None,
        muxer=muxer,
        output_options=output_options,
        log_path=workdir / "join.log",
    )
    check_result = await verify_join(output, timeline, clip_start=clip_start, clip_end=clip_end, audio=with_audio)
    check_result.figures["chunks"] = len(chunks)
    return check_result
