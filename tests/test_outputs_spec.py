"""Output specs: what validation accepts and refuses (the 422 texts), the built-in templates (the seed's
five methods give exactly the seed's argv), and the pure parts of the builders (frame sizes, ladders,
storyboard cues, loudness parsing)."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from mediaflow.jobs.model import Method
from mediaflow.media.operations import allowed_formats
from mediaflow.media.outputs import builtin_template, builtin_templates, method_outputs, parse_outputs, plan_output
from mediaflow.media.outputs.audio import parse_loudness
from mediaflow.media.outputs.images import storyboard_vtt, thumbnail_times
from mediaflow.media.outputs.ladder import build_ladder
from mediaflow.media.outputs.plan import OutputError, Source, scaled_size
from mediaflow.media.outputs.spec import dimension_problems
from mediaflow.media.probe import AudioStreamInfo, MediaInfo, VideoStreamInfo
from tests import media
from tests.golden_argv import GOLDEN, HEAD

FF = "/opt/ffmpeg/bin/ffmpeg"
INFO = MediaInfo(
    format_name="mov,mp4,m4a,3gp,3g2,mj2",
    duration=10.0,
    video=VideoStreamInfo("h264", 1920, 1080, 30.0),
    audio=AudioStreamInfo("aac", 48000, 2, 128000),
    stream_count=2,
    bit_rate=5_000_000,
)
SOURCE = Source(Path("/in/src.mov"), INFO, FF)


def errors(data: object) -> list[str]:
    with pytest.raises(pydantic.ValidationError) as caught:
        parse_outputs(data)
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in caught.value.errors()]


def one(**fields: object) -> list[dict]:
    return [{"name": "out", **fields}]


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], "at least 1 item"),
        ([{"type": "video", "name": f"v{i}"} for i in range(17)], "at most 16 items"),
        ([{"type": "video", "name": "a"}, {"type": "audio", "name": "a"}], "output names must be unique; a used more"),
        (
            one(type="slideshow"),
            "does not match any of the expected tags: 'video', 'audio', 'hls', 'dash', 'thumbnails'",
        ),
        (one(), "Unable to extract tag using discriminator 'type'"),
        (one(type="video", video={"codec": "xvid"}), "Input should be 'h264', 'h265', 'av1' or 'vp9'"),
        (one(type="video", format="avi"), "Input should be 'mp4', 'mov', 'mkv' or 'webm'"),
        (one(type="audio", format="ogg"), "Input should be 'mp3', 'm4a', 'opus', 'flac' or 'wav'"),
        (one(type="thumbnails", format="bmp"), "Input should be 'jpg', 'png' or 'webp'"),
        (
            one(type="video", format="webm", video={"codec": "h264"}),
            "a webm file cannot hold h264 video; with webm use av1 or vp9",
        ),
        (
            one(type="video", format="mov", video={"codec": "vp9"}),
            "a mov file cannot hold vp9 video; with mov use h264 or h265",
        ),
        (
            one(type="video", format="webm", video={"codec": "vp9"}, audio={"codec": "aac"}),
            "a webm file cannot hold aac audio; with webm use opus",
        ),
        (
            one(type="audio", format="mp3", audio={"codec": "aac"}),
            "format mp3 holds mp3 audio; drop audio.codec or set it to 'mp3'",
        ),
        (
            one(type="audio", format="flac", audio={"bitrate": "128k"}),
            "format flac is lossless: it takes no audio.bitrate",
        ),
        (one(type="video", clip={"start": 5, "end": 5}), "clip.end (5) must be greater than clip.start (5)"),
        (one(type="video", clip={"start": 6, "end": 2}), "clip.end (2) must be greater than clip.start (6)"),
        (one(type="video", video={"crf": 23, "bitrate": "1M"}), "give video.crf (constant quality) or video.bitrate"),
        (one(type="video", video={"codec": "h264", "crf": 60}), "video.crf for h264 is 0-51; got 60"),
        (one(type="video", video={"bufsize": "2M"}), "video.bufsize needs video.maxrate"),
        (
            one(type="video", video={"codec": "vp9", "profile": "high"}),
            "video.profile and video.level apply to codec h264 only",
        ),
        (
            one(type="video", video={"bitrate": "fast"}),
            "bitrate must be bits per second or a string like '128k' or '2.5M'",
        ),
        (one(type="video", video={"bitrate": "300M"}), "bitrate must be between 8k and 200M"),
        (one(type="video", video={"width": 10000}), "less than or equal to 8192"),
        (one(type="video", video={"fit": "fill"}), "Input should be 'contain', 'cover' or 'stretch'"),
        (one(type="video", vidoe={}), "vidoe: Extra inputs are not permitted"),
        (one(type="video", audio=True), "audio is an object of audio settings, or false for no audio track"),
        (one(type="dash", audio=0), "audio is an object of audio settings, or false for no audio track"),
        (one(type="hls", renditions=[{"height": 100 + i, "bitrate": "100k"} for i in range(9)]), "at most 8 items"),
        (
            one(type="hls", renditions=[{"height": 360, "bitrate": "1M"}, {"height": 360, "bitrate": "2M"}]),
            "each rendition needs its own height; [360]",
        ),
        (one(type="dash", segment_seconds=0.2), "greater than or equal to 1"),
        (
            one(type="thumbnails", count=3, offsets=[1]),
            "give count (evenly spread) or offsets (chosen times), not both",
        ),
        (
            one(type="thumbnails", offsets=["150%"]),
            "an offset is seconds (a number) or a percentage of the duration like '50%'; got '150%'",
        ),
        (one(type="thumbnails", count=51), "less than or equal to 50"),
        (one(type="waveform", color="red;drawtext"), "String should match pattern '^#[0-9a-fA-F]{6}$'"),
        (one(type="animation", duration=60), "less than or equal to 30"),
        ([{"type": "video", "name": "../etc"}], "String should match pattern"),
        ([{"type": "video", "name": ".logs"}], "String should match pattern"),
        (one(type="animation", start=False), "start: Input should be a valid number"),  # no coercion
        (one(type="thumbnails", count="3"), "count: Input should be a valid integer"),
        (one(type="video", video={"upscale": "yes"}), "upscale: Input should be a valid boolean"),
    ],
)
def test_refused_specs_say_what_is_accepted(data: object, expected: str) -> None:
    found = errors(data)
    assert any(expected in e for e in found), found


def test_the_issue_example_is_accepted() -> None:
    outputs = parse_outputs(media.NINE_OUTPUTS)
    assert [o.type for o in outputs] == [
        "video",
        "video",
        "video",
        "hls",
        "thumbnails",
        "storyboard",
        "animation",
        "audio",
        "waveform",
    ]
    assert outputs[0].clip.duration == 6.0
    assert outputs[7].audio.loudness == -16


def test_dimension_limits_follow_the_server_setting() -> None:
    outputs = parse_outputs(
        [
            {"type": "video", "name": "big", "video": {"width": 4096}},
            {"type": "hls", "name": "s", "renditions": [{"height": 2160, "bitrate": "12M"}]},
            {"type": "waveform", "name": "w", "width": 1000},
        ]
    )
    assert dimension_problems(outputs, 8192) == []
    assert dimension_problems(outputs, 1920) == [
        "output 'big': width 4096 is above this server's limit of 1920",
        "output 's': height 2160 is above this server's limit of 1920",
    ]


# --- templates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "fmt"), [(m, f) for m in Method for f in allowed_formats(m)], ids=lambda v: getattr(v, "value", v)
)
@pytest.mark.parametrize("threads", [0, 2])
def test_method_templates_give_exactly_the_seed_argv(method: Method, fmt: str, threads: int, tmp_path: Path) -> None:
    source = Source(Path("/in/src.mov"), INFO, HEAD[0], threads)
    (output,) = parse_outputs(method_outputs(method, fmt))
    plan = plan_output(output, source, tmp_path, None)
    *options, muxer_flag, muxer = GOLDEN[method, fmt]
    expected = [*HEAD, *options, *(["-threads", str(threads)] if threads else []), muxer_flag, muxer]
    assert [step.argv for step in plan.steps] == [[*expected, f"file:{tmp_path}/{method.value}.{fmt}"]]


def test_builtin_templates() -> None:
    templates = builtin_templates()
    assert list(templates) == [m.value for m in Method] + ["web", "hls"]
    web = builtin_template("web")
    assert [(o.type, o.name) for o in web] == [("video", "web"), ("thumbnails", "poster")]
    assert web[0].video.height == 720 and web[0].faststart
    hls = builtin_template("hls")
    assert [(o.type, o.name) for o in hls] == [("hls", "stream"), ("storyboard", "storyboard")]
    assert hls[0].renditions == "auto"
    assert builtin_template("nope") is None
    assert all(description for description, _ in templates.values())


# --- frame sizes, ladders, cues ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "fit", "upscale", "expected"),
    [
        ((None, 720), "contain", False, (1280, 720, 1280, 720)),
        ((640, None), "contain", False, (640, 360, 640, 360)),
        ((None, 2160), "contain", False, (1920, 1080, 1920, 1080)),  # never upscaled ...
        ((None, 2160), "contain", True, (3840, 2160, 3840, 2160)),  # ... unless asked
        ((1000, 1000), "contain", False, (1000, 562, 1000, 562)),
        ((1000, 1000), "cover", False, (1778, 1000, 1000, 1000)),  # scale to fill, then crop to the box
        ((1000, 1000), "stretch", False, (1000, 1000, 1000, 1000)),
        ((4000, 4000), "cover", False, (1920, 1080, 1080, 1080)),  # box shrunk with its aspect: no upscale
        ((4000, 200), "stretch", False, (1920, 200, 1920, 200)),
        ((None, 101), "contain", False, (180, 100, 180, 100)),  # even sides for 4:2:0
        ((None, None), "contain", False, None),
    ],
)
def test_scaled_size(size: tuple, fit: str, upscale: bool, expected: tuple | None) -> None:
    assert scaled_size(1920, 1080, size[0], size[1], fit, upscale) == expected


def _stream(**fields: object):
    return parse_outputs([{"type": "hls", "name": "s", **fields}])[0]


@pytest.mark.parametrize(
    ("height", "expected"),
    [(1080, [1080, 720, 480, 360]), (720, [720, 480, 360, 240]), (360, [360, 240, 144]), (200, [144]), (90, [90])],
)
def test_auto_ladder_never_goes_above_the_source(height: int, expected: list[int]) -> None:
    rungs, notes = build_ladder(_stream(), height * 16 // 9, height)
    assert [r.height for r in rungs] == expected and notes == []
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in rungs)
    if height >= 720:
        assert len(rungs) >= 3


def test_explicit_ladder_skips_renditions_above_the_source() -> None:
    output = _stream(
        renditions=[
            {"height": 480, "bitrate": "1M"},
            {"height": 1080, "bitrate": "5M"},
            {"height": 720, "bitrate": "3M"},
        ]
    )
    rungs, notes = build_ladder(output, 1280, 720)
    assert [(r.width, r.height, r.bitrate) for r in rungs] == [(1280, 720, "3M"), (854, 480, "1M")]
    assert notes == ["renditions 1080p skipped: above the source's height (720 px)"]
    rungs, notes = build_ladder(_stream(renditions=[{"height": 1080, "bitrate": "5M"}]), 640, 360)
    assert [(r.height, r.bitrate) for r in rungs] == [(360, "5M")] and len(notes) == 2


def test_ladder_argv_forces_aligned_keyframes(tmp_path: Path) -> None:
    output = _stream(
        renditions=[{"height": 720, "bitrate": "2800k"}, {"height": 360, "bitrate": "800k"}], segment_seconds=2
    )
    (step,) = plan_output(output, SOURCE, tmp_path, None).steps
    argv = step.argv
    assert argv.count("-i") == 1  # decoded once
    assert argv[argv.index("-filter_complex") + 1] == (
        "[0:V:0]split=2[s0][s1];[s0]scale=1280:720,setdar=1920/1080[v0];[s1]scale=640:360,setdar=1920/1080[v1]"
    )
    assert argv[argv.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*2)"
    assert argv[argv.index("-sc_threshold") + 1] == "0"
    assert argv[argv.index("-var_stream_map") + 1] == "v:0,a:0,name:720p v:1,a:1,name:360p"
    assert argv[argv.index("-maxrate:v:0") + 1] == "3080000"


def test_thumbnail_times() -> None:
    five = parse_outputs(one(type="thumbnails", count=3))[0]
    assert thumbnail_times(five, 8.0, 25) == [2.0, 4.0, 6.0]
    chosen = parse_outputs(one(type="thumbnails", offsets=[1, "50%", "100%"]))[0]
    assert thumbnail_times(chosen, 10.0, 25) == [1, 5.0, 9.96]  # 100 %: the last frame
    past = parse_outputs(one(type="thumbnails", offsets=[12]))[0]
    with pytest.raises(OutputError, match=r"thumbnail offset 12 s is past the end of the source \(10.00 s\)"):
        thumbnail_times(past, 10.0, 25)


def test_storyboard_cues_walk_the_tiles_row_by_row_and_across_sheets() -> None:
    vtt = storyboard_vtt(frames=5, interval=2, duration=9.5, columns=2, rows=1, tile_w=160, tile_h=90, ext="jpg")
    assert vtt.splitlines() == [
        "WEBVTT",
        "",
        "00:00:00.000 --> 00:00:02.000",
        "sprite_001.jpg#xywh=0,0,160,90",
        "",
        "00:00:02.000 --> 00:00:04.000",
        "sprite_001.jpg#xywh=160,0,160,90",
        "",
        "00:00:04.000 --> 00:00:06.000",
        "sprite_002.jpg#xywh=0,0,160,90",
        "",
        "00:00:06.000 --> 00:00:08.000",
        "sprite_002.jpg#xywh=160,0,160,90",
        "",
        "00:00:08.000 --> 00:00:09.500",
        "sprite_003.jpg#xywh=0,0,160,90",
    ]


def test_plans_refuse_what_the_source_cannot_give(tmp_path: Path) -> None:
    silent = Source(Path("/in/v.mp4"), MediaInfo("mov", 5.0, INFO.video, None, 1, None), FF)
    mute = Source(Path("/in/a.m4a"), MediaInfo("mov", 5.0, None, INFO.audio, 1, None), FF)
    cases = [
        (silent, one(type="audio"), "the source has no audio stream, so it cannot make audio output 'out'"),
        (silent, one(type="waveform"), "the source has no audio stream, so it cannot make waveform 'out'"),
        (mute, one(type="video"), "the source has no video stream, so it cannot make video output 'out'"),
        (mute, one(type="hls"), "the source has no video stream, so it cannot make hls output 'out'"),
        (mute, one(type="storyboard"), "the source has no video stream"),
        (
            silent,
            one(type="video", clip={"start": 7}),
            r"clip.start \(7 s\) is at or past the end of the source \(5.00 s\)",
        ),
        (silent, one(type="animation", start=5), r"animation start \(5 s\) is at or past the end of the source"),
    ]
    for source, data, message in cases:
        with pytest.raises(OutputError, match=message):
            plan_output(parse_outputs(data)[0], source, tmp_path, None)
    # a video output on a source without audio is fine: the audio map is optional
    plan_output(parse_outputs(one(type="video"))[0], silent, tmp_path, None)


def test_parse_loudness() -> None:
    log = (
        'noise\n[Parsed_loudnorm_0 @ 0x1] \n{\n\t"input_i" : "-21.82",\n\t"input_tp" : "-16.08",\n\t"input_lra" : "0.00",'
        '\n\t"input_thresh" : "-31.82",\n\t"output_i" : "-16.01",\n\t"target_offset" : "0.01"\n}\nmore'
    )
    measured = parse_loudness(log)
    assert measured is not None and (measured.input_i, measured.target_offset) == (-21.82, 0.01)
    assert parse_loudness(log.replace('"-21.82"', '"-inf"')) is None  # silence
    assert parse_loudness("no json here") is None
