"""The picture side of a source's description: orientation, pixel shape, scanning and colour.

`Picture` is what every graph builder needs to know about the first video stream beyond its stored
size: the display matrix's rotation, the sample aspect ratio, the field order, the frame-rate mode,
the colour description (primaries, transfer, matrix, range), the pixel format with its bit depth and
chroma subsampling, and HDR10's static metadata (mastering display, content light level).

Both probers fill it: `picture_from_ffprobe` from a stream of ffprobe's JSON, `picture_from_pyav`
from PyAV's stream. What only a decoded frame tells (the display matrix and HDR10 metadata, which
decoders attach to frames; interlacing when the container does not say) is read by
`read_frame_facts` on the first frames, with PyAV, whichever prober ran: one way to read it, so the
two probers cannot disagree. Names are ffmpeg's own (`bt709`, `smpte2084`, `bt2020nc`, `tv`), as
ffprobe prints them and as ffmpeg's options take them.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from mediaflow.media.inputs import file_url

FieldOrder = Literal["progressive", "tff", "bff"]
FrameRateMode = Literal["constant", "variable"]

HDR_TRANSFERS = {"smpte2084": "HDR10 (PQ)", "arib-std-b67": "HLG"}
# Frames idet looks at when the container does not say whether the video is interlaced; a verdict
# needs a clear majority of the frames it could decide.
IDET_FRAMES = 48
IDET_MAJORITY = 0.6
# Film telecined into interlaced video (3:2 pulldown) repeats a field in 2 frames of 5 (40 %); true
# interlaced video repeats none. A fifth or more says the pictures are whole film frames in fields.
TELECINE_REPEATS = 0.2

# ffmpeg's enum values (libavutil/pixfmt.h) → the names ffprobe prints; PyAV gives the numbers.
_PRIMARIES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_TRANSFERS = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
_MATRICES = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    14: "ictcp",
}
_RANGES = {1: "tv", 2: "pc"}
# AVFieldOrder: TT/TB put the top field first in time, BB/BT the bottom one.
_FIELD_ORDERS: dict[int, FieldOrder] = {1: "progressive", 2: "tff", 3: "bff", 4: "tff", 5: "bff"}
_FFPROBE_FIELD_ORDERS: dict[str, FieldOrder] = {
    "progressive": "progressive",
    "tt": "tff",
    "tb": "tff",
    "bb": "bff",
    "bt": "bff",
}


@dataclass(frozen=True)
class MasteringDisplay:
    """SMPTE ST 2086: chromaticities in units of 0.00002, luminance in units of 0.0001 cd/m², the
    units of HEVC's SEI and of x265's `master-display`."""

    red: tuple[int, int]
    green: tuple[int, int]
    blue: tuple[int, int]
    white_point: tuple[int, int]
    max_luminance: int
    min_luminance: int

    def x265(self) -> str:
        g, b, r, wp = self.green, self.blue, self.red, self.white_point
        return (
            f"G({g[0]},{g[1]})B({b[0]},{b[1]})R({r[0]},{r[1]})WP({wp[0]},{wp[1]})"
            f"L({self.max_luminance},{self.min_luminance})"
        )


@dataclass(frozen=True)
class Picture:
    rotation: int = 0  # degrees clockwise the stored frames are turned to be seen upright: 0, 90, 180, 270
    sample_aspect: Fraction = Fraction(1)  # the pixels' shape: 64/45 for a 16:9 PAL DVD
    field_order: FieldOrder | None = None  # None: nobody could tell
    field_order_measured: bool = False  # True: idet decided, the container did not say
    telecined: bool = False  # interlaced frames that carry film (3:2 pulldown): fields can be matched back
    frame_rate_mode: FrameRateMode | None = None
    pixel_format: str | None = None  # "yuv420p10le"
    bit_depth: int | None = None
    chroma_subsampling: str | None = None  # "4:2:0", "4:2:2", "4:4:4"
    color_primaries: str | None = None  # None: untagged
    color_transfer: str | None = None
    color_matrix: str | None = None
    color_range: str | None = None  # "tv" (limited) | "pc" (full)
    mastering_display: MasteringDisplay | None = None
    content_light: tuple[int, int] | None = None  # (MaxCLL, MaxFALL) in cd/m²

    def display_size(self, width: int, height: int) -> tuple[int, int]:
        """The upright picture with square pixels: the width stretched by the sample aspect (the
        height is the lines the source really has), then turned by the rotation."""
        if self.sample_aspect != 1:
            width = max(2, round(width * self.sample_aspect))
        return (height, width) if self.rotation in (90, 270) else (width, height)

    @property
    def hdr(self) -> str | None:
        """ "HDR10 (PQ)" or "HLG" for an HDR transfer, else None."""
        return HDR_TRANSFERS.get(self.color_transfer or "")

    @property
    def interlaced(self) -> bool:
        return self.field_order in ("tff", "bff")

    @property
    def rgb(self) -> bool:
        """Stored as RGB (screen recordings, QuickTime Animation, PNG): no YUV matrix of its own."""
        return is_rgb(self.pixel_format)

    @property
    def full_range(self) -> bool:
        return self.color_range == "pc" or (self.pixel_format or "").startswith("yuvj")


def is_rgb(name: str | None) -> bool:
    if not name:
        return False
    import av

    try:
        return bool(av.VideoFormat(name, 16, 16).is_rgb)
    except (ValueError, av.error.FFmpegError):
        return False


def pixel_format_facts(name: str | None) -> tuple[int | None, str | None]:
    """(bit depth, chroma subsampling) of a pixel format, from ffmpeg's own description of it."""
    if not name:
        return None, None
    import av

    try:
        fmt = av.VideoFormat(name, 64, 64)
    except (ValueError, av.error.FFmpegError):
        return None, None
    components = fmt.components
    depth = max((c.bits for c in components), default=None) or None
    if len(components) < 3 or fmt.is_rgb:
        return depth, "4:4:4" if fmt.is_rgb else None
    luma, chroma = components[0], components[1]
    horizontal = chroma.width < luma.width
    vertical = chroma.height < luma.height
    subsampling = "4:2:0" if horizontal and vertical else "4:2:2" if horizontal else "4:4:4"
    return depth, subsampling


def rotation_clockwise(counter_clockwise: float | None) -> int:
    """ffmpeg reports a display matrix's angle counter-clockwise (-90 for a phone held upright);
    we keep the clockwise turn to the nearest quarter."""
    if counter_clockwise is None or not math.isfinite(counter_clockwise):
        return 0
    return int(round(-counter_clockwise / 90)) % 4 * 90


def _aspect(value: Any) -> Fraction:
    try:
        aspect = Fraction(str(value).replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return Fraction(1)
    return aspect if aspect > 0 else Fraction(1)


def frame_rate_mode_of(nominal: Fraction | None, average: Fraction | None) -> FrameRateMode | None:
    """Constant when the stream's base rate and its average agree (or the base is the field rate of
    interlaced video, twice the frame rate); variable when they differ. A hint: the timestamps decide."""
    if not nominal or not average:
        return None
    if abs(nominal - average) <= average / 100 or abs(nominal - 2 * average) <= average / 100:
        return "constant"
    return "variable"


def _named(value: Any) -> str | None:
    text = str(value) if value is not None else ""
    return text if text and text not in ("unknown", "unspecified", "reserved", "N/A") else None


def picture_from_ffprobe(stream: dict[str, Any]) -> Picture:
    """The picture facts a stream of `ffprobe -show_streams` states (rotation when its display
    matrix is in the container; `read_frame_facts` adds what frames carry)."""
    rotation = 0
    for side in stream.get("side_data_list") or []:
        if side.get("side_data_type") == "Display Matrix":
            try:
                rotation = rotation_clockwise(float(side.get("rotation", 0)))
            except (TypeError, ValueError):
                rotation = 0
    pixel_format = _named(stream.get("pix_fmt"))
    depth, chroma = pixel_format_facts(pixel_format)
    return Picture(
        rotation=rotation,
        sample_aspect=_aspect(stream.get("sample_aspect_ratio")),
        field_order=_FFPROBE_FIELD_ORDERS.get(str(stream.get("field_order"))),
        frame_rate_mode=frame_rate_mode_of(
            _fraction(stream.get("r_frame_rate")), _fraction(stream.get("avg_frame_rate"))
        ),
        pixel_format=pixel_format,
        bit_depth=depth,
        chroma_subsampling=chroma,
        color_primaries=_named(stream.get("color_primaries")),
        color_transfer=_named(stream.get("color_transfer")),
        color_matrix=_named(stream.get("color_space")),
        color_range=_named(stream.get("color_range")),
    )


def _fraction(value: Any) -> Fraction | None:
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def picture_from_pyav(stream: Any) -> Picture:
    """The same facts from a PyAV video stream (whose container is still open)."""
    cc = stream.codec_context
    pixel_format = cc.format.name if cc.format is not None else None
    depth, chroma = pixel_format_facts(pixel_format)
    sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio
    return Picture(
        sample_aspect=Fraction(sar) if sar and sar > 0 else Fraction(1),
        field_order=_FIELD_ORDERS.get(int(cc.field_order or 0)),
        frame_rate_mode=frame_rate_mode_of(stream.base_rate, stream.average_rate),
        pixel_format=pixel_format,
        bit_depth=depth,
        chroma_subsampling=chroma,
        color_primaries=_PRIMARIES.get(int(cc.color_primaries)),
        color_transfer=_TRANSFERS.get(int(cc.color_trc)),
        color_matrix=_MATRICES.get(int(cc.colorspace))
        if pixel_format and not pixel_format.startswith(("gbr", "rgb"))
        else None,
        color_range=_RANGES.get(int(cc.color_range)) or ("pc" if (pixel_format or "").startswith("yuvj") else None),
    )


def read_frame_facts(
    path: Path, stream_index: int, picture: Picture, options: dict[str, str], max_pixels: int | None = None
) -> Picture:
    """`picture` completed from the stream's first decoded frames: the display matrix and HDR10
    metadata (which decoders attach to frames), and, when the container does not say whether the
    video is interlaced, idet's verdict on up to IDET_FRAMES frames. Blocking; run it on a thread.
    `max_pixels`: the decoder refuses larger frames (raising), as the ffmpeg run's -max_pixels does,
    so an untrusted file cannot make this process allocate a giant frame."""
    import av

    with av.open(file_url(path), container_options=options) as container:
        stream = container.streams.video[[s.index for s in container.streams.video].index(stream_index)]
        if max_pixels is not None:
            stream.codec_context.options = {"max_pixels": str(max_pixels)}
        needs_idet = picture.field_order is None or picture.interlaced
        # One frame comes soonest from one thread (frame threads first fill their pipeline: 1080p H.264
        # 90 -> 48 ms, a 4K HEVC frame 1.5 -> 0.55 s here); idet's 48 frames go faster on all of them.
        stream.thread_type = "AUTO" if needs_idet else "NONE"
        frames = container.decode(stream)
        first: Any = next(frames, None)  # a VideoFrame; typed loosely: PyAV's stubs miss side data's items
        if first is None:
            return picture
        picture = replace(
            picture,
            rotation=rotation_clockwise(first.rotation) or picture.rotation,
            # A decoder may know what the container left out (ProRes' and H.264's own headers)
            color_primaries=picture.color_primaries or _PRIMARIES.get(int(first.color_primaries)),
            color_transfer=picture.color_transfer or _TRANSFERS.get(int(first.color_trc)),
            color_matrix=picture.color_matrix
            or (_MATRICES.get(int(first.colorspace)) if picture.chroma_subsampling else None),
            color_range=picture.color_range or _RANGES.get(int(first.color_range)),
        )
        for side in first.side_data:
            data = bytes(side)
            if side.type.name == "MASTERING_DISPLAY_METADATA" and len(data) >= 88:
                picture = replace(picture, mastering_display=_mastering(data))
            elif side.type.name == "CONTENT_LIGHT_LEVEL" and len(data) >= 8:
                picture = replace(picture, content_light=struct.unpack("2I", data[:8]))
        if needs_idet:
            picture = replace(picture, **_idet(first, frames, stream, picture.field_order is None))
    return picture


def _mastering(data: bytes) -> MasteringDisplay | None:
    """AVMasteringDisplayMetadata: 8 rationals of chromaticity (R, G, B, white point; x then y), min
    and max luminance, then has_primaries and has_luminance."""
    values = struct.unpack("22i", data[:88])
    if not values[20] or not values[21]:
        return None

    def units(index: int, scale: int) -> int:
        numerator, denominator = values[2 * index], values[2 * index + 1]
        return round(numerator * scale / denominator) if denominator else 0

    xy = [units(i, 50000) for i in range(8)]
    return MasteringDisplay(
        red=(xy[0], xy[1]),
        green=(xy[2], xy[3]),
        blue=(xy[4], xy[5]),
        white_point=(xy[6], xy[7]),
        min_luminance=units(8, 10000),
        max_luminance=units(9, 10000),
    )


def _idet(first: Any, frames: Any, stream: Any, decide_order: bool) -> dict[str, Any]:
    """idet's cumulative counts after up to IDET_FRAMES frames, fed one at a time (never held together:
    a 4K frame is tens of megabytes): the field order when `decide_order` (the container did not say),
    and whether the interlaced pictures are telecined film."""
    import av
    import av.filter

    graph = av.filter.Graph()
    source = graph.add_buffer(template=stream)
    detector = graph.add("idet")
    sink = graph.add("buffersink")
    source.link_to(detector)
    detector.link_to(sink)
    graph.configure()
    verdict: dict[str, str] = {}
    frame, fed = first, 0
    while frame is not None and fed < IDET_FRAMES:
        graph.push(frame)
        fed += 1
        while True:
            try:
                verdict = dict(graph.pull().metadata)
            except (av.BlockingIOError, av.EOFError):
                break
        frame = next(frames, None)

    def count(kind: str, name: str) -> float:
        return float(verdict.get(f"lavfi.idet.{kind}.{name}", 0))

    facts: dict[str, Any] = {}
    counts = {name: count("multiple", name) for name in ("tff", "bff", "progressive")}
    decided = sum(counts.values())
    if decide_order and decided >= 4:
        winner = max(counts, key=lambda name: counts[name])
        if counts[winner] >= IDET_MAJORITY * decided:
            facts.update(field_order=winner, field_order_measured=True)
    repeats = [count("repeated", name) for name in ("neither", "top", "bottom")]
    if sum(repeats) >= 4 and (repeats[1] + repeats[2]) >= TELECINE_REPEATS * sum(repeats):
        facts["telecined"] = facts.get("field_order") != "progressive"
    return facts
