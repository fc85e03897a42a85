"""What an output does to the source's picture before sizing it: the one place for the picture rules.

`shape(stream, keep_hdr=..., image=...)` turns the probed description (picture.py) into the filters
every builder puts before its scaler (colour tags included, as `setparams`), the upright size it sizes
from, and the notes a user reads:
- orientation: ffmpeg turns frames upright itself (autorotate, on by default, for -vf and
  -filter_complex alike), so builders size from `display_size`; we only say that it happened;
- shape: anamorphic pixels are resampled to square ones at the display size (the lines the source has
  kept, the width stretched), then `setsar=1`;
- interlacing: bwdif before any scaling (scaling interlaced frames blends the fields into combs),
  one frame per frame; with the container's flag only the frames marked interlaced are touched
  (soft-telecined film and progressive stretches pass as they are), with idet's verdict all of them;
  film telecined into interlaced frames is field-matched back into whole frames instead;
- colour, for an SDR target (H.264 and anything not asking for HDR): PQ and HLG are tone-mapped
  (zscale to linear light with HDR reference white 203 cd/m² at 1.0, mobius, BT.709), full range and
  BT.601 matrices converted with the colorspace filter, and the output tagged BT.709 limited range;
  with `keep_hdr` an HDR source stays HDR (its encoder writes 10 bits, the tags and HDR10 metadata);
- JPEG (`image="jpg"`): full-range BT.601 YUV, the only kind the mjpeg encoder takes.

A plain source (progressive, SDR BT.709 or untagged, square pixels, upright) gets nothing, so its
commands stay exactly what they were before these rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mediaflow.media.picture import Picture
from mediaflow.media.probe import VideoStreamInfo

# Frame properties the encoder writes into the stream (H.264/HEVC VUI, AV1 sequence header): in the
# filter chain rather than as encoder options, so every path that uses the chain (one encode, the
# chunked path's pieces, the ladder, the quality probes) labels its output alike.
SDR_TAGS = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"
# HDR reference white (BT.2408: 203 cd/m²) at linear 1.0, so mobius keeps everything up to it nearly
# linear and rolls the highlights off towards the mastering peak: reference white lands at ~90 % of
# SDR white (measured: Y 214 of 235).
TONE_MAP_TAIL = (
    "format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=mobius:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)


def tone_map(picture: Picture) -> str:
    """zscale is told the source's colour explicitly (what the probe found, BT.2020 where a tag is
    missing): with an untagged field it finds "no path between colorspaces" and the run fails."""
    primaries = picture.color_primaries or "bt2020"
    source = (
        f"tin={picture.color_transfer}:pin={primaries}:min={picture.color_matrix or 'bt2020nc'}"
        f":rin={picture.color_range or 'tv'}"
    )
    return f"zscale={source}:t=linear:p={primaries}:npl=203,{TONE_MAP_TAIL}"


JPEG_RANGE = "scale=out_range=pc:out_color_matrix=bt601,format=yuvj420p"
# A BT.601 matrix says which standard the rest of the description follows (625 lines: PAL, 525: NTSC).
_STANDARDS = {"bt470bg": "bt601-6-625", "smpte170m": "bt601-6-525", "bt709": "bt709", "bt2020nc": "bt2020"}
_ROTATIONS = {90: "rotated 90° clockwise", 180: "rotated 180°", 270: "rotated 90° counter-clockwise"}


@dataclass(frozen=True)
class Shaping:
    filters: list[str] = field(default_factory=list)  # before scaling, in order
    display: tuple[int, int] = (0, 0)  # the upright, square-pixel size every size is computed from
    resample: bool = False  # anamorphic: the frames must be scaled to `display` even with no size asked
    notes: list[str] = field(default_factory=list)
    hdr_kept: bool = False
    last: list[str] = field(default_factory=list)  # after sizing, just before the encoder (JPEG's range)

    @property
    def chain(self) -> str | None:
        return ",".join(self.filters) or None


def shape(stream: VideoStreamInfo, *, keep_hdr: bool = False, image: str | None = None) -> Shaping:
    """The picture rules for one output of this source (see the module's docstring)."""
    picture = stream.picture
    width, height = stream.display_size
    filters: list[str] = []
    notes: list[str] = []
    if picture.rotation in _ROTATIONS:
        notes.append(_ROTATIONS[picture.rotation])
    if picture.interlaced and picture.telecined:
        filters.append(field_match(picture))
        notes.append("telecined film: fields matched back into whole film frames (cadence kept)")
    elif picture.interlaced:
        filters.append(deinterlace(picture))
        notes.append("deinterlaced" + (" (interlacing detected with idet)" if picture.field_order_measured else ""))
    hdr_kept = keep_hdr and picture.hdr is not None
    colour, colour_notes = _colour(picture, stream.height, hdr_kept)
    filters += colour
    notes += colour_notes
    if keep_hdr and not hdr_kept:
        notes.append("video.hdr keep: the source is SDR, so there was no HDR to keep (encoded 10-bit SDR)")
    elif not keep_hdr and (depth_note := _depth_note(picture)):
        notes.append(depth_note)
    resample = picture.sample_aspect != 1
    if resample:
        notes.append(f"anamorphic {_aspect_name(width, height)} made square pixels ({width}x{height})")
    last = []
    if image == "jpg" and (filters or picture.color_range or picture.color_matrix):
        # JPEG is full-range BT.601 YUV: the mjpeg encoder refuses the limited range a source (or our
        # own conversion) states, which is why a 1080i TS poster failed with "Could not open encoder"
        last.append(JPEG_RANGE)
    if colour and image is None:  # labelled only where we converted: untagged SD stays untagged (BT.601)
        filters.append(SDR_TAGS)
    return Shaping(filters, (width, height), resample, notes, hdr_kept, last)


def field_match(picture: Picture) -> str:
    """Inverse telecine without decimation: fieldmatch pairs each frame's fields with the neighbour
    that completes the film frame, so every picture is a whole film frame again (no field is
    interpolated); the frames it cannot match are left marked interlaced for bwdif. The repeated
    frame of each five is kept, so frame count, rate and timestamps stay the source's (the chunked
    path's join counts on it) and the 3:2 cadence the source plays with is unchanged."""
    order = picture.field_order
    return f"fieldmatch=order={order},bwdif=mode=send_frame:parity={order}:deint=interlaced"


def deinterlace(picture: Picture) -> str:
    # send_frame: one picture per frame, so the frame rate, frame count and timestamps stay the source's
    deint = "all" if picture.field_order_measured else "interlaced"
    return f"bwdif=mode=send_frame:parity={picture.field_order}:deint={deint}"


def _colour(picture: Picture, stored_height: int, keep_hdr: bool) -> tuple[list[str], list[str]]:
    """(filters, notes) for the colour rules."""
    if picture.hdr is not None:
        if keep_hdr:  # the frames keep their tags and HDR10 side data; the encoder writes them
            return [], [f"HDR kept: {picture.hdr}, 10-bit BT.2020"]
        filters = [tone_map(picture)]
        notes = [f"tone-mapped from {picture.hdr} to SDR BT.709"]
    elif picture.rgb:
        # swscale would use BT.601 and write no tag: an HD player then decodes it as BT.709
        filters = ["scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"]
        notes = [f"RGB ({picture.pixel_format}) converted to BT.709 limited-range YUV 4:2:0"]
    elif picture.full_range or picture.color_matrix in ("bt470bg", "smpte170m"):
        matrix = picture.color_matrix or ("bt709" if stored_height >= 720 else "bt470bg")  # the usual guess
        source = _STANDARDS.get(matrix, "bt709")
        source_range = "pc" if picture.full_range else "tv"
        filters = [f"colorspace=all=bt709:iall={source}:irange={source_range}:range=tv:format=yuv420p"]
        what = " ".join(
            part
            for part in ("full-range" if picture.full_range else "", "BT.601" if source.startswith("bt601") else "")
            if part
        )
        notes = [f"colour converted from {what} to BT.709 limited range"]
    else:
        filters, notes = [], []
    return filters, notes


def _depth_note(picture: Picture) -> str | None:
    depth, chroma = picture.bit_depth, picture.chroma_subsampling
    if picture.rgb or depth is None or (depth <= 8 and chroma in (None, "4:2:0")):
        return None
    return f"{depth}-bit {chroma or ''} reduced to 8-bit 4:2:0".replace("  ", " ")


def _aspect_name(width: int, height: int) -> str:
    ratio = width / height
    for name, value in (("16:9", 16 / 9), ("4:3", 4 / 3), ("21:9", 64 / 27), ("1.85:1", 1.85), ("2.39:1", 2.39)):
        if abs(ratio - value) < 0.02:
            return name
    return f"{ratio:.2f}:1"
