"""`type: video` outputs: one encode with the chosen codec, rate control, frame size, frame rate and audio.

The argv keeps the order of the seed's presets (maps, -vf, video encoder, -movflags, audio, -threads,
-f), so the built-in templates for the five seed methods produce exactly the seed's commands.
"""

from __future__ import annotations

from pathlib import Path

from mediaflow.media.outputs.audio import Loudness, audio_args
from mediaflow.media.outputs.params import VideoSettings, bits_per_second
from mediaflow.media.outputs.plan import (
    OutputPlan,
    Source,
    Step,
    clip_range,
    even,
    media_seconds,
    number,
    pixels_factor,
    scaled_size,
)
from mediaflow.media.outputs.shaping import Shaping, shape
from mediaflow.media.outputs.spec import VideoOutput, default_audio_codec
from mediaflow.media.outputs.timing import timing_args, timing_notes
from mediaflow.media.outputs.track_map import (
    TrackChoice,
    audio_layout_args,
    choose_tracks,
    disposition_args,
    language_args,
    subtitle_codec_args,
)
from mediaflow.media.probe import VideoStreamInfo

VIDEO_MUXERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm"}
# Relative encoding cost per frame at the same size (measured roughly on this build, fastest presets).
# The codecs that can carry HDR10/HLG here (10-bit 4:2:0 in this build's libx265 and libsvtav1).
HDR_CODECS = ("h265", "av1")
CODEC_COST = {"h264": 1.0, "h265": 3.0, "vp9": 3.0, "av1": 2.0}

_SVT_AV1_PRESETS = {
    "ultrafast": 13,
    "superfast": 12,
    "veryfast": 11,
    "faster": 10,
    "fast": 9,
    "medium": 8,
    "slow": 6,
    "slower": 4,
    "veryslow": 2,
}
# libvpx-vp9 `-cpu-used` (with -deadline good, 0 is slowest); 4 is what the seed's presets use.
_VP9_CPU_USED = {
    "ultrafast": 8,
    "superfast": 7,
    "veryfast": 6,
    "faster": 5,
    "fast": 5,
    "medium": 4,
    "slow": 2,
    "slower": 1,
    "veryslow": 0,
}
_VP9_DEFAULT_CRF = 31


def video_shaping(video: VideoSettings, stream: VideoStreamInfo) -> Shaping:
    """The picture rules (shaping.py) for this output: HDR kept only where asked and possible."""
    return shape(stream, keep_hdr=video.hdr == "keep" and video.codec in HDR_CODECS)


def video_filters(video: VideoSettings, stream: VideoStreamInfo) -> tuple[str | None, tuple[int, int]]:
    """The -vf chain (or None) and the output frame size: the picture rules first (deinterlacing and
    colour work on the source's own frames), then the size, computed from the upright, square-pixel
    display size."""
    shaping = video_shaping(video, stream)
    filters = list(shaping.filters)
    display_w, display_h = shaping.display
    size = (even(display_w), even(display_h)) if shaping.resample else (display_w, display_h)
    scaled = scaled_size(display_w, display_h, video.width, video.height, video.fit, video.upscale)
    if scaled is not None:
        scaled_w, scaled_h, out_w, out_h = scaled
        if video.fit == "stretch" and video.width is not None and video.height is not None:
            filters.append(f"scale={out_w}:{out_h}")  # exactly the box, as the seed's resize did
            filters += ["setsar=1"] if shaping.resample else []
        else:
            filters.append(f"scale={scaled_w}:{scaled_h}")
            if (scaled_w, scaled_h) != (out_w, out_h):
                filters.append(f"crop={out_w}:{out_h}")
            filters.append("setsar=1")  # even-rounded sides must not turn into non-square pixels
        size = (out_w, out_h)
    elif shaping.resample:
        filters += [f"scale={size[0]}:{size[1]}", "setsar=1"]
    if video.fps is not None:
        filters.append(f"fps={number(video.fps)}")
    if video.grayscale:
        filters.append("hue=s=0")
    return (",".join(filters) or None), size


def video_codec_args(video: VideoSettings) -> list[str]:
    """The encoder's options. `hdr: keep` (h265/av1 only) encodes 10-bit whatever the source, so every
    path that builds its options here alone (the chunked path's pieces too) keeps an HDR source's
    precision; the frames' HDR tags and HDR10 side data are written by the encoder (ffmpeg hands
    libx265 and libsvtav1 the mastering display and content light level)."""
    codec = video.codec
    args: list[str]
    if codec in ("h264", "h265"):
        args = ["-c:v", "libx264" if codec == "h264" else "libx265"]
        args += _quality(video)
        args += ["-preset", video.preset] if video.preset else []
        args += ["-profile:v", video.profile] if video.profile else []
        args += ["-level:v", video.level] if video.level else []
        args += ["-tag:v", "hvc1"] if codec == "h265" else []  # what Apple players need to play HEVC in MP4/MOV
    elif codec == "vp9":
        args = ["-c:v", "libvpx-vp9"]
        if video.bitrate is not None:
            args += ["-b:v", video.bitrate, *_caps(video)]
        else:  # constant quality; -b:v is the cap (0: none) in libvpx's constrained-quality mode
            args += [
                "-crf",
                str(video.crf if video.crf is not None else _VP9_DEFAULT_CRF),
                "-b:v",
                video.maxrate or "0",
            ]
            args += ["-bufsize", video.bufsize] if video.bufsize else []
        cpu_used = _VP9_CPU_USED[video.preset] if video.preset else 4
        args += ["-deadline", "good" if cpu_used <= 5 else "realtime", "-cpu-used", str(cpu_used), "-row-mt", "1"]
    else:  # av1
        args = ["-c:v", "libsvtav1", *_quality(video)]
        args += ["-preset", str(_SVT_AV1_PRESETS[video.preset])] if video.preset else []
    return [*args, "-pix_fmt", "yuv420p10le" if video.hdr == "keep" else "yuv420p"]


def _quality(video: VideoSettings) -> list[str]:
    if video.bitrate is not None:
        return ["-b:v", video.bitrate, *_caps(video)]
    return (["-crf", str(video.crf)] if video.crf is not None else []) + _caps(video)


def _caps(video: VideoSettings) -> list[str]:
    if video.maxrate is None:
        return []
    bufsize = video.bufsize or f"{2 * bits_per_second(video.maxrate)}"
    return ["-maxrate", video.maxrate, "-bufsize", bufsize]


def video_plan(output: VideoOutput, source: Source, out_dir: Path, measured: Loudness | None) -> OutputPlan:
    stream = source.need_video(f"video output {output.name!r}")
    start, duration = clip_range(output.clip, source)
    vf, (width, height) = video_filters(output.video, stream)
    shaping = video_shaping(output.video, stream)
    choice = _track_choice(output, source)
    with_audio = output.audio is not False and (choice is None or bool(choice.audio))
    argv = [*source.head(start, duration), "-map", "0:V:0"]
    if choice is None:
        argv += ["-map", "0:a:0?"] if with_audio else []  # "?": a source without audio still makes a video
    else:
        argv += _track_maps(choice)
    argv += ["-vf", vf] if vf else []
    argv += video_codec_args(output.video)
    argv += timing_args(source.info, output.video.fps)
    if output.faststart and output.format in ("mp4", "mov"):
        argv += ["-movflags", "+faststart"]  # index first: browsers start playing before the end arrives
    if "timecode" in source.info.tracks.ignored and output.format in ("mp4", "mov"):
        argv += ["-write_tmcd", "0"]  # the muxer would make a timecode track from the video's tag again
    notes = timing_notes(source.info, output.video.fps)
    if output.audio is False or not with_audio:
        argv += ["-an"]
    else:
        codec = output.audio.codec or default_audio_codec(output.format)
        argv += audio_args(output.audio, codec, source, measured)
        if choice is not None:
            layout, downmixes = audio_layout_args(choice, codec, output.audio.channels)
            argv += layout
            notes += downmixes
            if measured is not None and len(choice.audio) > 1:  # -af applies to every audio stream
                main = source.info.tracks.audio[source.info.tracks.main_audio]
                notes.append(f"audio.loudness measured on the {main.language} track; its gain applied to every track")
    if choice is not None:
        argv += _track_labels(output, choice)
        notes = [*choice.notes, *notes]
    target = out_dir / f"{output.name}.{output.format}"
    argv += source.tail(VIDEO_MUXERS[output.format], target)
    seconds = media_seconds(start, duration, source)
    fps_factor = (output.video.fps or stream.fps or 30) / 30
    weight = (seconds or 60) * pixels_factor(width, height) * CODEC_COST[output.video.codec] * fps_factor
    return OutputPlan(steps=[Step("encode", argv, seconds)], weight=weight, notes=[*shaping.notes, *notes])


def chunk_video_args(output: VideoOutput, source: Source) -> list[str]:
    """The video options every chunk of `output` is encoded with when it is spread over workers: the same
    filters, encoder and frame timing as a whole encode (a VFR source's chunks keep every frame too)."""
    vf, _ = video_filters(output.video, source.need_video(f"video output {output.name!r}"))
    return [*(["-vf", vf] if vf else []), *video_codec_args(output.video), *timing_args(source.info, output.video.fps)]


def chunk_audio_args(output: VideoOutput, source: Source, measured: Loudness | None) -> list[str] | None:
    """The options of a chunked output's one audio run (the whole range, in the final container's muxer):
    the tracks, codecs, languages and subtitles a whole encode keeps; None when the output has no audio.
    With several tracks or subtitles they carry their own -map (chunking.encode_audio_argv keeps them)."""
    choice = _track_choice(output, source)
    if output.audio is False or (source.info.audio is None if choice is None else not choice.audio):
        return None
    codec = output.audio.codec or default_audio_codec(output.format)
    args = audio_args(output.audio, codec, source, measured)
    if choice is None:
        return args
    layout, _ = audio_layout_args(choice, codec, output.audio.channels)
    return [*_track_maps(choice), *args, *layout, *_track_labels(output, choice)]


def _track_maps(choice: TrackChoice) -> list[str]:
    maps = [arg for track in choice.audio for arg in ("-map", f"0:a:{track.index}")]
    return maps + [arg for sub in choice.subtitles for arg in ("-map", f"0:s:{sub.index}")]


def _track_labels(output: VideoOutput, choice: TrackChoice) -> list[str]:
    """The subtitle codec of the container, the tracks' languages and default flags."""
    return [*subtitle_codec_args(choice, output.format), *language_args(choice), *disposition_args(choice)]


def _track_choice(output: VideoOutput, source: Source) -> TrackChoice | None:
    """None for a plain source with every track wanted: the argv stays the one-audio-track argv."""
    tracks = source.info.tracks
    if tracks.plain and output.audio_tracks == "all":
        return None
    return choose_tracks(tracks, output.audio_tracks, output.subtitle_tracks, with_audio=output.audio is not False)
