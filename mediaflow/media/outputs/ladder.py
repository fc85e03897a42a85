"""`type: hls` and `type: dash`: an adaptive-bitrate ladder encoded by one ffmpeg.

The source is decoded once and `split` into one scaler per rendition; every rendition forces a
keyframe at each segment boundary (and x264's scene-cut keyframes are off), so segments start at the
same instants in every rendition and a player can switch between them at any boundary. ffmpeg's
muxers write the master playlist (HLS: BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION, CODECS per variant)
or the MPD (bandwidth, codecs, width/height per representation).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mediaflow.media.inputs import file_url
from mediaflow.media.outputs.params import bits_per_second
from mediaflow.media.outputs.plan import (
    OutputPlan,
    Source,
    Step,
    clip_range,
    even,
    media_seconds,
    number,
    pixels_factor,
)
from mediaflow.media.outputs.shaping import Shaping, shape
from mediaflow.media.outputs.spec import DashOutput, HlsOutput
from mediaflow.media.outputs.stream_hdr import VIDEO_RANGES, mark_dash_transfer, mark_hls_video_range
from mediaflow.media.outputs.stream_tracks import (
    audio_maps,
    dash_adaptation_sets,
    finish_hls,
    hls_var_stream_map,
    subtitle_steps,
)
from mediaflow.media.outputs.timing import timing_args, timing_notes
from mediaflow.media.outputs.track_map import TrackChoice, choose_tracks, language_args
from mediaflow.media.probe import MediaInfo, VideoStreamInfo
from mediaflow.media.tracks import AudioTrack

# (height, video bitrate): a common web ladder for H.264 at 30 fps.
AUTO_RUNGS = ((1080, "5000k"), (720, "2800k"), (480, "1400k"), (360, "800k"), (240, "400k"), (144, "200k"))
MAX_AUTO_RENDITIONS = 4
MASTER_PLAYLIST = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"


@dataclass(frozen=True)
class Rung:
    """One rendition. `height` names it the way people do ("720p"): the picture's SHORT side, so a
    portrait phone video's 720p rung is 720x1280, as tall as a landscape 720p one is wide."""

    width: int  # of the frames
    height: int  # the rung's name: its short side (the frames' height unless the picture is portrait)
    bitrate: str
    frame_height: int | None = None  # the frames' height when the picture is portrait

    @property
    def label(self) -> str:
        return f"{self.height}p"

    @property
    def frame(self) -> tuple[int, int]:
        return self.width, self.frame_height or self.height


def build_ladder(output: HlsOutput | DashOutput, src_w: int, src_h: int) -> tuple[list[Rung], list[str]]:
    """The renditions for a picture of src_w x src_h (upright, square pixels), highest first, and notes
    on what was left out.

    Never above the source's short side: upscaling spends bits on detail that is not there. `auto`
    takes the standard rungs at or below the source (up to four; three or more from 720p up); a source
    smaller than the smallest rung gets one rendition at its own size.
    """
    notes: list[str] = []
    portrait = src_h > src_w
    short, long_ = (src_w, src_h) if portrait else (src_h, src_w)
    side = "short side" if portrait else "height"
    if output.renditions == "auto":
        wanted = [(h, b) for h, b in AUTO_RUNGS if h <= short][:MAX_AUTO_RENDITIONS]
        if not wanted:
            wanted = [(short, AUTO_RUNGS[-1][1])]
    else:
        wanted = sorted(((r.height, r.bitrate) for r in output.renditions), key=lambda hb: -hb[0])
        above = [h for h, _ in wanted if h > short]
        wanted = [(h, b) for h, b in wanted if h <= short]
        if above:
            notes.append(
                f"renditions {', '.join(f'{h}p' for h in above)} skipped: above the source's {side} ({short} px)"
            )
        if not wanted:
            lowest = min(output.renditions, key=lambda r: bits_per_second(r.bitrate))
            wanted = [(short, lowest.bitrate)]
            notes.append(f"one rendition at the source's {side} ({short} px) instead")
    if portrait:
        return [Rung(even(h), even(h), b, frame_height=even(long_ * h / short)) for h, b in wanted], notes
    return [Rung(even(long_ * h / short), even(h), b) for h, b in wanted], notes


def _filter_graph(rungs: list[Rung], fps: float | None, aspect: str, shaping: str | None = None) -> str:
    # setdar: even-rounded sides (426x240) must keep the source's display aspect exactly, or the DASH
    # muxer refuses renditions whose aspect ratios differ by a pixel in one adaptation set.
    # `shaping` (deinterlacing, colour) runs once, before the split.
    pre = "".join(f"{part}," for part in (shaping, f"fps={number(fps)}" if fps else None) if part)
    scales = [f"scale={r.frame[0]}:{r.frame[1]},setdar={aspect}" for r in rungs]
    if len(rungs) == 1:
        return f"[0:V:0]{pre}{scales[0]}[v0]"
    branches = "".join(f"[s{i}]" for i in range(len(rungs)))
    graph = [f"[0:V:0]{pre}split={len(rungs)}{branches}"]
    graph += [f"[s{i}]{scale}[v{i}]" for i, scale in enumerate(scales)]
    return ";".join(graph)


def _video_args(output: HlsOutput | DashOutput, rungs: list[Rung]) -> list[str]:
    seg = number(output.segment_seconds)
    if output.video.codec == "h265":
        # hvc1: what Apple's players and the DASH muxer's codecs string need; no scene-cut keyframes
        # and forced keyframes as IDR, so every rendition's segments start at the same instants
        args = ["-c:v", "libx265", "-tag:v", "hvc1"]
        args += ["-preset", output.video.preset] if output.video.preset else []
        # hdr keep: 10 bits whatever the source, as for video outputs (video.video_codec_args)
        ten_bit = output.video.hdr == "keep"
        args += ["-pix_fmt", "yuv420p10le" if ten_bit else "yuv420p", "-x265-params", "scenecut=0:log-level=error"]
        args += ["-forced-idr", "1", "-force_key_frames", f"expr:gte(t,n_forced*{seg})"]
    else:
        args = ["-c:v", "libx264"]
        args += ["-preset", output.video.preset] if output.video.preset else []
        args += ["-pix_fmt", "yuv420p", "-sc_threshold", "0", "-force_key_frames", f"expr:gte(t,n_forced*{seg})"]
    for i, r in enumerate(rungs):
        rate = bits_per_second(r.bitrate)
        # capped VBR: peaks up to 110 % of the target, a two-second-ish buffer
        args += [f"-b:v:{i}", r.bitrate, f"-maxrate:v:{i}", str(rate * 11 // 10), f"-bufsize:v:{i}", str(rate * 2)]
    return args


def _audio_args(output: HlsOutput | DashOutput) -> list[str]:
    assert output.audio is not False
    return ["-c:a", "aac", "-b:a", output.audio.bitrate, "-ac", str(output.audio.channels)]


def ladder_for(output: HlsOutput | DashOutput, stream: VideoStreamInfo) -> tuple[Shaping, list[Rung], list[str]]:
    """The picture rules and the rungs for this source (sized from its upright, square-pixel picture),
    with the notes on both: what a whole ladder, the fan-out decision and rendition tasks all share."""
    shaping = shape(stream, keep_hdr=output.video.hdr == "keep")  # validated: keep comes with h265
    rungs, notes = build_ladder(output, *shaping.display)
    return shaping, rungs, [*shaping.notes, *notes]


def spread_ladder_notes(output: HlsOutput | DashOutput, info: MediaInfo) -> list[str]:
    """What a whole ladder would say, for one spread over rendition tasks (one audio track at most, no
    subtitles: fanout keeps any other ladder whole), so both ways of making it report alike."""
    assert info.video is not None
    _, _, notes = ladder_for(output, info.video)
    with_audio = output.audio is not False and info.audio is not None
    return [
        *notes,
        *_downmix_notes(output, info.tracks.audio if with_audio else ()),
        *timing_notes(info, output.video.fps),
    ]


def stream_plan(output: HlsOutput | DashOutput, source: Source, out_dir: Path) -> OutputPlan:
    stream = source.need_video(f"{output.type} output {output.name!r}")
    shaping, rungs, notes = ladder_for(output, stream)
    display_w, display_h = shaping.display
    start, duration = clip_range(output.clip, source)
    # None: every variant carries the one audio track (the plain ladder); else renditions of their own
    choice = _track_choice(output, source)
    if choice is None:
        with_audio = output.audio is not False and source.info.audio is not None
    else:
        with_audio = bool(choice.audio)
    argv = [
        *source.head(start, duration),
        "-filter_complex",
        _filter_graph(rungs, output.video.fps, f"{display_w}/{display_h}", shaping.chain),
    ]
    for i in range(len(rungs)):
        argv += ["-map", f"[v{i}]"]
    argv += _audio_maps(output, len(rungs), with_audio) if choice is None else audio_maps(choice)
    argv += _video_args(output, rungs) + timing_args(source.info, output.video.fps)
    argv += _audio_args(output) if with_audio else []
    argv += language_args(choice) if choice is not None else []
    argv += ["-threads", str(source.threads)] if source.threads > 0 else []
    if output.type == "hls":
        variants = None if choice is None else hls_var_stream_map([r.label for r in rungs], choice)
        argv += _hls_muxer(output, rungs, out_dir, with_audio, variants)
    else:
        sets = None if choice is None else dash_adaptation_sets(len(rungs), choice)
        argv += _dash_muxer(output, out_dir, with_audio, sets)
    seconds = media_seconds(start, duration, source)
    steps = [Step("encode", argv, seconds)]
    finishers: list[Callable[[Path], None]] = []
    if choice is not None and output.type == "hls":
        steps += subtitle_steps(choice, source, start, duration, out_dir)
        finishers.append(partial(finish_hls, choice, master_name=MASTER_PLAYLIST, variant=rungs[0].label))
    if shaping.hdr_kept and (mark_hdr := _mark_hdr(output, stream.picture.color_transfer)) is not None:
        finishers.append(mark_hdr)  # last: it tags the variants of the master as finally written
    kept = source.info.tracks.audio if choice is None else choice.audio
    notes += choice.notes if choice is not None else []
    notes += _downmix_notes(output, kept if with_audio else ())
    notes += timing_notes(source.info, output.video.fps)
    weight = (
        (seconds or 60) * sum(pixels_factor(*r.frame) for r in rungs) * (3.0 if output.video.codec == "h265" else 1.0)
    )
    return OutputPlan(steps=steps, weight=weight, finish=_in_order(finishers), notes=notes)


def _mark_hdr(output: HlsOutput | DashOutput, transfer: str | None) -> Callable[[Path], None] | None:
    if transfer not in VIDEO_RANGES:
        return None

    def mark(directory: Path) -> None:
        if output.type == "hls":
            mark_hls_video_range(directory / MASTER_PLAYLIST, transfer)
        else:
            mark_dash_transfer(directory / DASH_MANIFEST, transfer)

    return mark


def _audio_maps(output: HlsOutput | DashOutput, variants: int, with_audio: bool) -> list[str]:
    if not with_audio:
        return []
    if output.type == "hls":
        return ["-map", "0:a:0"] * variants  # each variant carries its audio
    return ["-map", "0:a:0"]  # DASH: one audio representation shared by all


def _in_order(finishers: list[Callable[[Path], None]]) -> Callable[[Path], None] | None:
    """One `finish` running each step's side work in turn (None when there is none)."""
    if not finishers:
        return None

    def finish(folder: Path) -> None:
        for step in finishers:
            step(folder)

    return finish


def _downmix_notes(output: HlsOutput | DashOutput, tracks: Sequence[AudioTrack]) -> list[str]:
    surround = [t.language for t in tracks if (t.channels or 0) > 2] if output.audio is not False else []
    if not surround:
        return []
    return [f"audio ({', '.join(surround)}) downmixed to stereo: {output.type.upper()} audio here is stereo AAC"]


def _track_choice(output: HlsOutput | DashOutput, source: Source) -> TrackChoice | None:
    """None for one or no audio track, no subtitles and every track wanted: the ladder whose variants carry
    their audio, argv unchanged (its audio is stereo AAC whatever the source's layout, so 5.1 changes nothing)."""
    tracks = source.info.tracks
    if len(tracks.audio) <= 1 and not tracks.subtitles and output.audio_tracks == "all":
        return None
    return choose_tracks(
        tracks,
        output.audio_tracks,
        output.subtitle_tracks,
        with_audio=output.audio is not False,
        with_subtitles=output.type == "hls",
        subtitles_skipped_because="a DASH output carries no subtitles here; use an HLS or video output for them",
    )


def _hls_muxer(
    output: HlsOutput | DashOutput, rungs: list[Rung], out_dir: Path, with_audio: bool, variants: str | None = None
) -> list[str]:
    variants = variants or " ".join(
        f"v:{i},a:{i},name:{r.label}" if with_audio else f"v:{i},name:{r.label}" for i, r in enumerate(rungs)
    )
    return [
        "-f",
        "hls",
        "-hls_time",
        number(output.segment_seconds),
        "-hls_playlist_type",
        "vod",
        "-hls_flags",
        "independent_segments",
        *_hls_segments(output, out_dir),
        "-master_pl_name",
        MASTER_PLAYLIST,
        "-var_stream_map",
        variants,
        # A plain absolute path, not file_url: the muxer makes the %v folders from this string as it
        # is, so a "file:" prefix would create a "file:/…" tree in the worker's current directory.
        # Starting with "/" it is neither an option nor a URL.
        os.path.abspath(out_dir / "%v" / "index.m3u8"),
    ]


def _hls_segments(output: HlsOutput | DashOutput, out_dir: Path) -> list[str]:
    if output.video.codec == "h265":  # HEVC in HLS is fragmented MP4 (Apple's authoring spec)
        return [
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
            "-hls_segment_filename",
            str(out_dir / "%v" / "segment_%05d.m4s"),
        ]
    return ["-hls_segment_type", "mpegts", "-hls_segment_filename", str(out_dir / "%v" / "segment_%05d.ts")]


def _dash_muxer(output: HlsOutput | DashOutput, out_dir: Path, with_audio: bool, sets: str | None = None) -> list[str]:
    sets = sets or ("id=0,streams=v id=1,streams=a" if with_audio else "id=0,streams=v")
    return [
        "-f",
        "dash",
        "-seg_duration",
        number(output.segment_seconds),
        "-use_template",
        "1",
        "-use_timeline",
        "1",
        "-adaptation_sets",
        sets,
        "-init_seg_name",
        "init_$RepresentationID$.m4s",
        "-media_seg_name",
        "chunk_$RepresentationID$_$Number%05d$.m4s",
        file_url(out_dir / DASH_MANIFEST),
    ]


def merge_master_playlists(masters: list[str]) -> str:
    """One HLS master playlist from single-variant ones (each rendition made by its own task, its master
    written by ffmpeg with the BANDWIDTH, RESOLUTION and CODECS it measured), variants in the given order."""
    header: list[str] = []
    variants: list[str] = []
    for number_, text in enumerate(masters):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        pending: str | None = None
        for line in lines:
            if line.startswith("#EXT-X-STREAM-INF"):
                pending = line
            elif pending is not None and not line.startswith("#"):
                variants += [pending, line]
                pending = None
            elif number_ == 0 and line.startswith("#") and not variants:
                header.append(line)
        if pending is not None:
            raise ValueError("a rendition's master playlist names a variant without its URI")
    if not header or header[0] != "#EXTM3U":
        raise ValueError("a rendition's master playlist does not start with #EXTM3U")
    return "\n".join([*header, *variants]) + "\n"
