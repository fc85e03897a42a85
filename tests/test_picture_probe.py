"""The picture side of the probe (issue 23): both probers describe the generated corpus alike and right."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from mediaflow.media.picture import (
    MasteringDisplay,
    Picture,
    picture_from_ffprobe,
    pixel_format_facts,
    read_frame_facts,
)
from mediaflow.media.probe import MediaInfo, probe
from mediaflow.settings import Settings
from tests import corpus, media

NO_FFPROBE = Settings(_env_file=None, FFPROBE_BINARY=None)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


async def _both(path: Path) -> MediaInfo:
    """Probe with PyAV and, when the tests have one, with ffprobe; they must agree."""
    info = await probe(path, NO_FFPROBE)
    binary = media.ffprobe()
    if binary is not None and path.suffix != ".ts":  # the static test ffprobe (2023) crashes on AC-3 5.1 in TS
        assert await probe(path, Settings(_env_file=None, FFPROBE_BINARY=binary)) == info
    return info


async def test_rotation_from_the_display_matrix(corpus_dir: Path) -> None:
    for codec in ("h264", "hevc"):
        info = await _both(corpus.rotated(corpus_dir, codec, degrees_ccw=90))
        assert info.video is not None
        assert (info.video.width, info.video.height) == (320, 180)
        assert info.video.picture.rotation == 270  # 90° counter-clockwise = 270° clockwise
        assert info.video.display_size == (180, 320)
    phone = await _both(corpus.rotated(corpus_dir, "h264", degrees_ccw=-90))
    assert phone.video is not None and phone.video.picture.rotation == 90


async def test_hdr10_and_hlg(corpus_dir: Path) -> None:
    pq = await _both(corpus.hdr(corpus_dir, "pq"))
    assert pq.video is not None
    picture = pq.video.picture
    assert (picture.color_primaries, picture.color_transfer, picture.color_matrix, picture.color_range) == (
        "bt2020",
        "smpte2084",
        "bt2020nc",
        "tv",
    )
    assert (picture.bit_depth, picture.chroma_subsampling, picture.hdr) == (10, "4:2:0", "HDR10 (PQ)")
    assert picture.mastering_display == MasteringDisplay(
        red=(34000, 16000),
        green=(13250, 34500),
        blue=(7500, 3000),
        white_point=(15635, 16450),
        max_luminance=10_000_000,
        min_luminance=1,
    )
    assert picture.mastering_display.x265() == corpus.HDR10_MASTERING
    assert picture.content_light == (1000, 400)
    hlg = await _both(corpus.hdr(corpus_dir, "hlg"))
    assert hlg.video is not None
    assert (hlg.video.picture.hdr, hlg.video.picture.mastering_display) == ("HLG", None)


async def test_anamorphic_interlaced_dvd(corpus_dir: Path) -> None:
    info = await _both(corpus.pal_dvd(corpus_dir))
    assert info.video is not None
    picture = info.video.picture
    assert picture.sample_aspect == Fraction(64, 45)
    assert info.video.display_size == (1024, 576)  # 16:9, the 576 lines kept
    assert (picture.field_order, picture.field_order_measured, picture.interlaced) == ("tff", False, True)


async def test_1080i_transport_stream(corpus_dir: Path) -> None:
    info = await _both(corpus.broadcast_1080i(corpus_dir))
    assert info.video is not None and info.audio is not None
    assert info.video.picture.field_order == "tff"
    assert info.video.picture.frame_rate_mode == "constant"  # 50 fields, 25 frames a second: not variable
    assert (info.video.picture.color_matrix, info.video.picture.color_range) == ("bt709", "tv")
    assert info.audio.channels == 6


async def test_idet_decides_when_the_container_does_not_say(corpus_dir: Path) -> None:
    interlaced = await _both(corpus.unflagged_interlaced(corpus_dir))
    assert interlaced.video is not None
    assert (interlaced.video.picture.field_order, interlaced.video.picture.field_order_measured) == ("tff", True)
    progressive = await _both(corpus.unflagged_progressive(corpus_dir))
    assert progressive.video is not None
    assert progressive.video.picture.field_order == "progressive"


async def test_telecined_film_is_told_from_interlaced_video(corpus_dir: Path) -> None:
    film = await _both(corpus.telecined(corpus_dir))
    assert film.video is not None
    assert (film.video.picture.field_order, film.video.picture.telecined) == ("tff", True)
    video = await _both(corpus.broadcast_1080i(corpus_dir))
    assert video.video is not None and not video.video.picture.telecined


async def test_prores_and_full_range(corpus_dir: Path) -> None:
    prores = await _both(corpus.prores_422_10bit(corpus_dir))
    assert prores.video is not None
    assert (prores.video.picture.bit_depth, prores.video.picture.chroma_subsampling) == (10, "4:2:2")
    full = await _both(corpus.full_range_bt601(corpus_dir))
    assert full.video is not None
    assert (full.video.picture.color_range, full.video.picture.color_matrix) == ("pc", "bt470bg")
    assert full.video.picture.full_range


async def test_a_plain_clip_is_plain(tmp_path: Path) -> None:
    info = await _both(media.make_clip(tmp_path, seconds=1, width=320, height=180))
    assert info.video is not None
    picture = info.video.picture
    assert (picture.rotation, picture.sample_aspect, picture.field_order, picture.hdr) == (0, 1, "progressive", None)
    assert not picture.full_range and not picture.interlaced
    assert info.video.display_size == (320, 180)


def test_pixel_formats() -> None:
    assert pixel_format_facts("yuv420p") == (8, "4:2:0")
    assert pixel_format_facts("yuv422p10le") == (10, "4:2:2")
    assert pixel_format_facts("yuv444p12le") == (12, "4:4:4")
    assert pixel_format_facts("p010le") == (10, "4:2:0")
    assert pixel_format_facts("no-such-format") == (None, None)
    assert pixel_format_facts(None) == (None, None)


def test_ffprobe_stream_json() -> None:
    stream = {
        "pix_fmt": "yuv420p",
        "sample_aspect_ratio": "32:27",
        "field_order": "bb",
        "r_frame_rate": "60/1",
        "avg_frame_rate": "24/1",
        "color_range": "tv",
        "color_space": "smpte170m",
        "color_primaries": "unknown",
        "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
    }
    picture = picture_from_ffprobe(stream)
    assert picture == Picture(
        rotation=90,
        sample_aspect=Fraction(32, 27),
        field_order="bff",
        frame_rate_mode="variable",
        pixel_format="yuv420p",
        bit_depth=8,
        chroma_subsampling="4:2:0",
        color_matrix="smpte170m",
        color_range="tv",
    )
    assert picture.display_size(720, 480) == (480, 853)
    assert picture_from_ffprobe({"sample_aspect_ratio": "0:1"}).sample_aspect == 1  # "unknown" in ffprobe's words


async def test_frames_beyond_the_input_limits_are_never_decoded_by_the_probe(corpus_dir: Path) -> None:
    import av

    rotated = corpus.rotated(corpus_dir, "h264", degrees_ccw=90)
    small = Settings(_env_file=None, FFPROBE_BINARY=None, MAX_INPUT_PIXELS=320 * 180 - 1)
    info = await probe(rotated, small)
    assert info.video is not None and info.video.picture.rotation == 0  # the first frame was not read
    with pytest.raises(av.error.FFmpegError):  # and the decoder itself enforces the limit
        read_frame_facts(rotated, 0, Picture(), {}, max_pixels=320 * 180 - 1)
    assert read_frame_facts(rotated, 0, Picture(), {}, max_pixels=320 * 180).rotation == 270
