"""Sources shaped like what people upload, made by the tests with the bundled ffmpeg (issue 23).

Each maker writes one short, small clip into `directory` (cached by name, like tests/media.py) whose
picture is easy to measure after any processing:
- a white block in the stored frame's TOP-LEFT corner on black, so an output shows where "up" went;
- a white block moving left and right over grey for the interlaced clips, so idet sees combing in
  the source and not in a deinterlaced output (testsrc2's fine patterns fool idet into "tff").
HDR clips are the same picture converted to PQ or HLG with zscale, SDR white placed at 203 cd/m²
(BT.2408's reference white), so a tone-mapped output must bring that white back near SDR white.
"""

from __future__ import annotations

from pathlib import Path

from tests.media import _generate, tone

CORNER = "drawbox=x=0:y=0:w=iw/4:h=ih/4:color=white:t=fill"
BT709 = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"
HDR10_MASTERING = (
    "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"  # P3-D65, 1000 cd/m² (x265 units)
)


def _corner(width: int, height: int, seconds: float, fps: int) -> str:
    return f"color=black:s={width}x{height}:r={fps}:d={seconds},{CORNER}"


def _moving_block(width: int, height: int, seconds: float, field_rate: int) -> str:
    """A graph (for -filter_complex) of a block sweeping sideways at `field_rate` pictures a second."""
    block_w, block_h = width // 6, height // 2
    return (
        f"color=gray:s={width}x{height}:r={field_rate}:d={seconds}[bg];"
        f"color=white:s={block_w}x{block_h}:r={field_rate}:d={seconds}[block];"
        f"[bg][block]overlay=x='mod(t*{width * 2},{width - block_w})':y={height // 4}"
    )


def _display_rotated(plain: Path, target: Path, degrees_ccw: int) -> Path:
    """`plain` rewrapped (stream copy) with a display matrix, the way phones and cameras mark rotation."""
    return _generate(target, ["-display_rotation", str(degrees_ccw), "-i", str(plain), "-c", "copy"])


def rotated(directory: Path, codec: str = "h264", *, degrees_ccw: int = 90) -> Path:
    """A 320x180 clip whose display matrix turns it `degrees_ccw` counter-clockwise (ffmpeg's sense,
    ffprobe's "rotation"; a phone held upright writes -90), with AAC audio."""
    name = f"rotated_{codec}_{degrees_ccw}.mp4"
    plain = _generate(
        Path(directory) / f"unrotated_{codec}.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            _corner(320, 180, 1, 25),
            *tone(440, 1),
            *(
                ["-c:v", "libx264"]
                if codec == "h264"
                else ["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1"]
            ),
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    )
    return _display_rotated(plain, Path(directory) / name, degrees_ccw)


def hdr(directory: Path, transfer: str = "pq", *, transfer_only: bool = False) -> Path:
    """10-bit HEVC, BT.2020, PQ (with HDR10 mastering display and content light metadata) or HLG.
    `transfer_only`: the stream states its transfer and nothing else (no primaries, matrix, metadata),
    as some editing tools write it."""
    trc = {"pq": "smpte2084", "hlg": "arib-std-b67"}[transfer]
    to_hdr = (
        f"zscale=t=linear:npl=203,format=gbrpf32le,zscale=p=bt2020:t={trc}:m=bt2020nc:r=tv:npl=203,format=yuv420p10le"
    )
    if transfer_only:
        to_hdr += ",setparams=color_primaries=unknown:colorspace=unknown"
        params = f"log-level=error:transfer={trc}"
    else:
        params = f"log-level=error:colorprim=bt2020:transfer={trc}:colormatrix=bt2020nc"
    if transfer == "pq" and not transfer_only:
        params += f":hdr10=1:master-display={HDR10_MASTERING}:max-cll=1000,400"
    return _generate(
        Path(directory) / f"hdr_{transfer}{'_transfer_only' if transfer_only else ''}.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            f"{_corner(320, 180, 1, 25)},{BT709},{to_hdr}",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            params,
            "-tag:v",
            "hvc1",
        ],
    )


def pal_dvd(directory: Path) -> Path:
    """MPEG-2 in MPEG-PS, 720x576 with 16:9 pixels (SAR 64:45), interlaced top field first, 25 fps."""
    return _generate(
        Path(directory) / "pal_dvd.mpg",
        [
            "-filter_complex",
            _moving_block(720, 576, 1, 50) + ",tinterlace=mode=interleave_top,setsar=64/45,setfield=tff",
            "-c:v",
            "mpeg2video",
            "-flags",
            "+ilme+ildct",
            "-b:v",
            "4M",
            "-f",
            "vob",
        ],
    )


def broadcast_1080i(directory: Path) -> Path:
    """H.264 1920x1080 interlaced (tff, 25 frames / 50 fields a second) with AC-3 5.1, in MPEG-TS."""
    return _generate(
        Path(directory) / "broadcast_1080i.ts",
        [
            "-filter_complex",
            _moving_block(1920, 1080, 1, 50) + ",tinterlace=mode=interleave_top,setfield=tff",
            *tone(440, 1, "5.1"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-flags",
            "+ilme+ildct",
            "-g",
            "12",  # a keyframe every half second, as broadcast has: thumbnails seek in a TS by byte position
            "-pix_fmt",
            "yuv420p",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-color_range",
            "tv",
            "-c:a",
            "ac3",
            "-f",
            "mpegts",
        ],
    )


def unflagged_interlaced(directory: Path) -> Path:
    """Interlaced pictures in MPEG-4 Part 2 / AVI, which has no field order flag: only idet can tell."""
    return _generate(
        Path(directory) / "unflagged_interlaced.avi",
        [
            "-filter_complex",
            _moving_block(320, 240, 2, 50) + ",tinterlace=mode=interleave_top,format=yuv420p",
            "-c:v",
            "mpeg4",
            "-q:v",
            "2",
        ],
    )


def unflagged_progressive(directory: Path) -> Path:
    """The same motion, progressive, in the same unflagged container: idet must say progressive."""
    return _generate(
        Path(directory) / "unflagged_progressive.avi",
        ["-filter_complex", _moving_block(320, 240, 2, 25) + ",format=yuv420p", "-c:v", "mpeg4", "-q:v", "2"],
    )


def prores_422_10bit(directory: Path) -> Path:
    """ProRes 422 (10-bit 4:2:2) in MOV."""
    return _generate(
        Path(directory) / "prores_422.mov",
        [
            "-f",
            "lavfi",
            "-i",
            _corner(320, 180, 1, 25),
            "-c:v",
            "prores_ks",
            "-profile:v",
            "2",
            "-pix_fmt",
            "yuv422p10le",
        ],
    )


def full_range_bt601(directory: Path) -> Path:
    """Full-range ("yuvj") H.264 with a BT.601 matrix, as cameras and screen recorders write."""
    return _generate(
        Path(directory) / "full_range_bt601.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            _corner(320, 180, 1, 25),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuvj420p",
            "-colorspace",
            "bt470bg",
            "-color_primaries",
            "bt470bg",
            "-color_trc",
            "smpte170m",
            "-color_range",
            "pc",
        ],
    )


def _film(width: int, height: int, seconds: float) -> str:
    """A block sweeping sideways at film's 24000/1001 frames a second."""
    rate = "24000/1001"
    return (
        f"color=gray:s={width}x{height}:r={rate}:d={seconds}[bg];"
        f"color=white:s={width // 6}x{height // 2}:r={rate}:d={seconds}[block];"
        f"[bg][block]overlay=x='mod(t*{width * 2},{width - width // 6})':y={height // 4}"
    )


def film_master(directory: Path) -> Path:
    """The film itself, 24000/1001 progressive frames, lossless (FFV1): what telecine started from."""
    return _generate(
        Path(directory) / "film_master.mkv", ["-filter_complex", _film(320, 240, 2) + ",format=yuv420p", "-c:v", "ffv1"]
    )


def telecined(directory: Path) -> Path:
    """That film telecined (3:2 pulldown) into 30000/1001 interlaced frames, top field first, H.264."""
    return _generate(
        Path(directory) / "telecined.mkv",
        [
            "-filter_complex",
            _film(320, 240, 2) + ",telecine=first_field=top:pattern=23,setfield=tff",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-flags",
            "+ilme+ildct",
            "-pix_fmt",
            "yuv420p",
        ],
    )


def phone_hlg(directory: Path, seconds: float = 3) -> Path:
    """What an iPhone records held upright: HEVC 10-bit HLG, stored landscape (640x360) with a display
    matrix of -90° (shown 360x640), AAC audio; closed GOPs of half a second so the chunked path can cut
    (with x265's default open GOPs a piece cut at a CRA frame loses its leading pictures: the join
    check then finds 69 frames of 75 and the output is encoded again in one piece)."""
    trc = "arib-std-b67"
    to_hlg = (
        f"zscale=t=linear:npl=203,format=gbrpf32le,zscale=p=bt2020:t={trc}:m=bt2020nc:r=tv:npl=203,format=yuv420p10le"
    )
    plain = _generate(
        Path(directory) / f"phone_unrotated_{seconds:g}s.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            f"{_corner(640, 360, seconds, 25)},{BT709},{to_hlg}",
            *tone(440, seconds),
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tag:v",
            "hvc1",
            "-x265-params",
            f"log-level=error:keyint=12:min-keyint=12:open-gop=0:colorprim=bt2020:transfer={trc}:colormatrix=bt2020nc",
            "-c:a",
            "aac",
            "-shortest",
        ],
    )
    return _display_rotated(plain, Path(directory) / f"phone_hlg_{seconds:g}s.mp4", -90)


def rgb_screen(directory: Path) -> Path:
    """An RGB screen recording (QuickTime Animation, rgb24) of a pure red 1280x720 frame."""
    return _generate(
        Path(directory) / "rgb_screen.mov", ["-f", "lavfi", "-i", "color=red:s=1280x720:d=1:r=10", "-c:v", "qtrle"]
    )
