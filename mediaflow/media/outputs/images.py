"""Still and moving pictures of the source: thumbnails, storyboards (sprite + WebVTT), animations, waveforms."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from mediaflow.media.inputs import GLOBAL_OPTIONS, file_url
from mediaflow.media.outputs.plan import (
    OutputError,
    OutputPlan,
    Source,
    Step,
    even,
    number,
    scaled_size,
)
from mediaflow.media.outputs.shaping import shape
from mediaflow.media.outputs.spec import AnimationOutput, StoryboardOutput, ThumbnailsOutput, WaveformOutput

IMAGE_ENCODERS = {
    "jpg": ["-c:v", "mjpeg", "-q:v", "3"],
    "png": ["-c:v", "png"],
    "webp": ["-c:v", "libwebp", "-quality", "80"],
}
STORYBOARD_VTT = "storyboard.vtt"
MAX_STORYBOARD_ROWS = 20


# --- thumbnails ----------------------------------------------------------------------------------------


def thumbnail_times(output: ThumbnailsOutput, duration: float, fps: float | None) -> list[float]:
    """Seconds to take each thumbnail at. `count` spreads them evenly and skips the very ends (often
    black); offsets past the end are refused rather than quietly moved."""
    last_frame = max(0.0, duration - 1 / (fps or 25))
    if output.offsets is None:
        count = output.count or 1
        return [duration * (i + 1) / (count + 1) for i in range(count)]
    times = []
    for offset in output.offsets:
        if isinstance(offset, str):
            times.append(min(last_frame, duration * float(offset.removesuffix("%")) / 100))
        elif offset > duration:
            raise OutputError(f"thumbnail offset {offset:g} s is past the end of the source ({duration:.2f} s)")
        else:
            times.append(min(last_frame, offset))
    return times


def thumbnails_plan(output: ThumbnailsOutput, source: Source, out_dir: Path) -> OutputPlan:
    stream = source.need_video(f"thumbnails {output.name!r}")
    if source.duration is None:
        raise OutputError("the source's duration is unknown, so thumbnails cannot be placed in it")
    times = thumbnail_times(output, source.duration, stream.fps)
    shaping = shape(stream, image=output.format)
    display_w, display_h = shaping.display
    scaled = scaled_size(display_w, display_h, output.width, output.height, "contain", False)
    sizing = [] if scaled is None else [f"scale={scaled[0]}:{scaled[1]}"]
    if shaping.resample:
        sizing = [*(sizing or [f"scale={even(display_w)}:{even(display_h)}"]), "setsar=1"]
    chain = ",".join([*shaping.filters, *sizing, *shaping.last])
    scale = ["-vf", chain] if chain else []
    # One ffmpeg, one input per thumbnail, each seeking on its own: no decoding between the frames.
    argv = [source.ffmpeg, *GLOBAL_OPTIONS]
    for t in times:
        argv += source.input(t)
    for i in range(len(times)):
        target = out_dir / f"thumbnail_{i + 1:03d}.{output.format}"
        argv += [
            "-map",
            f"{i}:V:0",
            "-frames:v",
            "1",
            *scale,
            *IMAGE_ENCODERS[output.format],
            "-update",
            "1",
            "-f",
            "image2",
            file_url(target),
        ]
    return OutputPlan(steps=[Step("encode", argv, None)], weight=0.05 * len(times), notes=list(shaping.notes))


# --- storyboard ---------------------------------------------------------------------------------------


def storyboard_plan(output: StoryboardOutput, source: Source, out_dir: Path) -> OutputPlan:
    stream = source.need_video(f"storyboard {output.name!r}")
    duration = source.duration
    if duration is None or duration <= 0:
        raise OutputError("the source's duration is unknown, so a storyboard cannot be timed")
    interval = output.interval_seconds
    frames = max(1, math.ceil(duration / interval - 1e-6))
    shaping = shape(stream, image=output.format)
    display_w, display_h = shaping.display
    tile_w, tile_h = even(output.width), even(output.width * display_h / display_w)
    columns = min(output.columns, frames)
    rows = output.rows or min(MAX_STORYBOARD_ROWS, math.ceil(frames / columns))
    rate = Fraction(interval).limit_denominator(1000)
    # tpad + trim make the frame count exact (the fps filter alone may stop one short at the end), so
    # every WebVTT cue points at a real tile.
    chain = "".join(f"{part}," for part in shaping.filters) + (
        f"tpad=stop_mode=clone:stop_duration={number(interval + 1)},fps={rate.denominator}/{rate.numerator},"
        f"trim=end_frame={frames},scale={tile_w}:{tile_h},setsar=1,tile={columns}x{rows}"
    )
    chain += "".join(f",{part}" for part in shaping.last)
    pattern = out_dir / f"sprite_%03d.{output.format}"
    argv = [
        *source.head(),
        "-map",
        "0:V:0",
        "-vf",
        chain,
        *IMAGE_ENCODERS[output.format],
        "-start_number",
        "1",
        *source.tail("image2", pattern),
    ]

    def write_vtt(directory: Path) -> None:
        (directory / STORYBOARD_VTT).write_text(
            storyboard_vtt(frames, interval, duration, columns, rows, tile_w, tile_h, output.format)
        )

    weight = duration * 0.15 * max(0.2, stream.width * stream.height / (1280 * 720))
    return OutputPlan(
        steps=[Step("encode", argv, duration)], weight=weight, finish=write_vtt, notes=list(shaping.notes)
    )


def storyboard_vtt(
    frames: int, interval: float, duration: float, columns: int, rows: int, tile_w: int, tile_h: int, ext: str
) -> str:
    """WebVTT whose cues name a sprite and a tile in it (`sprite_001.jpg#xywh=x,y,w,h`), as players expect."""
    per_sheet = columns * rows
    lines = ["WEBVTT", ""]
    for k in range(frames):
        sheet, index = divmod(k, per_sheet)
        x, y = (index % columns) * tile_w, (index // columns) * tile_h
        start, end = k * interval, min((k + 1) * interval, duration)
        lines += [
            f"{_vtt_time(start)} --> {_vtt_time(end)}",
            f"sprite_{sheet + 1:03d}.{ext}#xywh={x},{y},{tile_w},{tile_h}",
            "",
        ]
    return "\n".join(lines)


def _vtt_time(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


# --- animation ----------------------------------------------------------------------------------------


def animation_plan(output: AnimationOutput, source: Source, out_dir: Path) -> OutputPlan:
    stream = source.need_video(f"animation {output.name!r}")
    if source.duration is not None and output.start >= source.duration:
        raise OutputError(
            f"animation start ({output.start:g} s) is at or past the end of the source ({source.duration:.2f} s)"
        )
    duration = output.duration if source.duration is None else min(output.duration, source.duration - output.start)
    shaping = shape(stream)
    display_w, display_h = shaping.display
    width = min(output.width, display_w)  # never upscaled
    height = even(width * display_h / display_w)
    width = even(width)
    pre = "".join(f"{part}," for part in shaping.filters)
    fps = number(output.fps)
    target = out_dir / f"{output.name}.{output.format}"
    head = source.head(output.start, duration)
    if output.format == "gif":
        # GIF has 256 colours: a palette made from these very frames, then dithered onto it
        graph = (
            f"[0:V:0]{pre}fps={fps},scale={width}:{height}:flags=lanczos,setsar=1,split[a][b];"
            "[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=5[out]"
        )
        argv = [*head, "-filter_complex", graph, "-map", "[out]", "-loop", "0", *source.tail("gif", target)]
    else:
        argv = [
            *head,
            "-map",
            "0:V:0",
            "-vf",
            f"{pre}fps={fps},scale={width}:{height},setsar=1",
            "-c:v",
            "libwebp",
            "-quality",
            "75",
            "-loop",
            "0",
            "-an",
            *source.tail("webp", target),
        ]
    return OutputPlan(steps=[Step("encode", argv, duration)], weight=duration * 0.3, notes=list(shaping.notes))


# --- waveform -----------------------------------------------------------------------------------------


def waveform_plan(output: WaveformOutput, source: Source, out_dir: Path) -> OutputPlan:
    source.need_audio(f"waveform {output.name!r}")
    color = "0x" + output.color.removeprefix("#")  # validated #RRGGBB
    graph = f"[0:a:0]aformat=channel_layouts=mono,showwavespic=s={output.width}x{output.height}:colors={color}[out]"
    target = out_dir / f"{output.name}.png"
    argv = [
        *source.head(),
        "-filter_complex",
        graph,
        "-map",
        "[out]",
        "-frames:v",
        "1",
        "-c:v",
        "png",
        "-update",
        "1",
        *source.tail("image2", target),
    ]
    return OutputPlan(steps=[Step("encode", argv, None)], weight=0.02 * (source.duration or 60))
