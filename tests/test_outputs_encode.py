"""Every output type encoded for real from short lavfi clips, then checked with PyAV and ffmpeg's own
meters: codecs, durations, frame sizes, the HLS ladder decodable variant by variant with aligned
segments, the DASH representations, thumbnail count and size, storyboard cues inside the sprite,
animation frames, the waveform, and the measured loudness against the target."""

from __future__ import annotations

import math
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import pytest

from mediaflow.media.outputs import OutputResult, parse_outputs, run_outputs
from mediaflow.media.probe import probe
from mediaflow.settings import Settings
from tests import media

NO_FFPROBE = Settings(_env_file=None, FFPROBE_BINARY=None)
TINY = {"preset": "ultrafast", "height": 90}  # H.265/AV1/VP9 stay tiny so the suite stays fast

SPEC = [
    {
        "name": "web",
        "type": "video",
        "format": "mp4",
        "video": {"codec": "h264", "crf": 30, "preset": "ultrafast", "height": 180, "fps": 15},
        "audio": {"codec": "aac", "bitrate": "96k"},
        "clip": {"start": 0.5, "end": 2.0},
    },
    {"name": "small", "type": "video", "format": "mp4", "video": {"codec": "h265", **TINY}},
    {"name": "modern", "type": "video", "format": "webm", "video": {"codec": "av1", **TINY}},
    {"name": "vp9", "type": "video", "format": "mkv", "video": {"codec": "vp9", "crf": 40, **TINY}, "audio": False},
    {
        "name": "square",
        "type": "video",
        "format": "mov",
        "video": {"preset": "ultrafast", "width": 120, "height": 120, "fit": "cover"},
    },
    {"name": "stream", "type": "hls", "renditions": "auto", "segment_seconds": 1, "video": {"preset": "ultrafast"}},
    {
        "name": "dash",
        "type": "dash",
        "segment_seconds": 1,
        "video": {"preset": "ultrafast"},
        "renditions": [{"height": 240, "bitrate": "300k"}, {"height": 144, "bitrate": "150k"}],
    },
    {"name": "poster", "type": "thumbnails", "count": 5, "width": 320, "format": "jpg"},
    {"name": "frames", "type": "thumbnails", "offsets": [0, "50%", 2.9], "height": 90, "format": "webp"},
    {"name": "scrub", "type": "storyboard", "interval_seconds": 0.7, "columns": 2, "rows": 2, "width": 96},
    {"name": "preview", "type": "animation", "format": "gif", "start": 1, "duration": 1.5, "width": 160, "fps": 10},
    {"name": "loop", "type": "animation", "format": "webp", "start": 0, "duration": 1, "width": 100, "fps": 8},
    {"name": "voice", "type": "audio", "format": "mp3", "audio": {"bitrate": "128k", "loudness": -16}},
    {"name": "wave", "type": "waveform", "width": 400, "height": 80, "color": "#ff8800"},
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("output-clips")
    return {
        "av": media.make_clip(d, "av360.mp4", width=640, height=360, seconds=3),
        "video_only": media.make_clip(d, "silent.mp4", width=320, height=180, seconds=1, audio=False),
    }


@pytest.fixture(scope="module")
async def job(
    clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, OutputResult], list]:
    workdir = tmp_path_factory.mktemp("outputs")
    info = await probe(clips["av"], NO_FFPROBE)
    reports = []

    async def on_progress(progress) -> None:
        reports.append(progress)

    results = await run_outputs(
        parse_outputs(SPEC),
        input_path=clips["av"],
        info=info,
        workdir=workdir,
        ffmpeg=media.ffmpeg(),
        on_progress=on_progress,
    )
    return workdir, {r.name: r for r in results}, reports


def summary(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0] if c.streams.video else None
        a = c.streams.audio[0] if c.streams.audio else None
        frames = sum(1 for _ in c.decode(video=0)) if v else 0
        return {
            "duration": c.duration / av.time_base if c.duration else None,
            "video": (v.codec_context.codec.canonical_name, v.codec_context.width, v.codec_context.height)
            if v
            else None,
            "fps": float(v.average_rate) if v and v.average_rate else None,
            "audio": a.codec_context.codec.canonical_name if a else None,
            "frames": frames,
            "format": c.format.name,
        }


def only_file(result: OutputResult, workdir: Path) -> Path:
    assert result.status == "completed", result.error
    (file,) = result.files
    return workdir / file.path


def test_every_output_completed_with_files_sizes_and_types(job) -> None:
    workdir, results, _ = job
    assert [r.status for r in results.values()] == ["completed"] * len(SPEC), {n: r.error for n, r in results.items()}
    for result in results.values():
        assert result.files and all(f.size == (workdir / f.path).stat().st_size > 0 for f in result.files)
        assert all(f.path.startswith(result.name + "/") for f in result.files)
        assert all(log.is_file() for log in result.logs)
    assert not (workdir / ".partial").exists() or not any((workdir / ".partial").iterdir())
    mimes = {f.path: f.mime_type for r in results.values() for f in r.files}
    assert mimes["web/web.mp4"] == "video/mp4" and mimes["stream/master.m3u8"] == "application/vnd.apple.mpegurl"
    assert mimes["scrub/storyboard.vtt"] == "text/vtt" and mimes["dash/manifest.mpd"] == "application/dash+xml"


def test_h264_with_clip_size_fps_and_audio(job) -> None:
    workdir, results, _ = job
    info = summary(only_file(results["web"], workdir))
    assert info["video"] == ("h264", 320, 180) and info["audio"] == "aac"
    assert info["fps"] == pytest.approx(15, abs=0.1)
    assert info["duration"] == pytest.approx(1.5, abs=0.1)  # clip 0.5 → 2.0
    head = only_file(results["web"], workdir).read_bytes()[:4096]  # faststart: the index before the media
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


@pytest.mark.parametrize(
    ("name", "codec", "size", "audio", "fmt"),
    [
        ("small", "hevc", (160, 90), "aac", "mov,mp4,m4a,3gp,3g2,mj2"),
        ("modern", "av1", (160, 90), "opus", "matroska,webm"),
        ("vp9", "vp9", (160, 90), None, "matroska,webm"),
        ("square", "h264", (120, 120), "aac", "mov,mp4,m4a,3gp,3g2,mj2"),  # cover: filled and cropped
    ],
)
def test_codecs_and_containers(job, name: str, codec: str, size: tuple, audio: str | None, fmt: str) -> None:
    workdir, results, _ = job
    info = summary(only_file(results[name], workdir))
    assert info["video"][0] == codec and info["video"][1:] == size
    assert info["audio"] == audio and info["format"] == fmt
    assert info["duration"] == pytest.approx(3.0, abs=0.15) and info["frames"] >= 85


def _attributes(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line)}


def test_hls_master_lists_each_variant_and_every_variant_decodes(job) -> None:
    workdir, results, _ = job
    assert results["stream"].status == "completed", results["stream"].error
    master = (workdir / "stream/master.m3u8").read_text().splitlines()
    variants = [
        (_attributes(line), master[i + 1]) for i, line in enumerate(master) if line.startswith("#EXT-X-STREAM-INF")
    ]
    assert [uri for _, uri in variants] == ["360p/index.m3u8", "240p/index.m3u8", "144p/index.m3u8"]  # auto, ≤ source
    assert [a["RESOLUTION"] for a, _ in variants] == ["640x360", "426x240", "256x144"]
    assert not (Path.cwd() / "file:").exists(), "the HLS muxer made its %v folders from a file: URL in the cwd"
    for attributes, uri in variants:
        assert int(attributes["BANDWIDTH"]) > 0 and re.fullmatch(r"avc1\.[0-9a-f]{6},mp4a\.40\.2", attributes["CODECS"])
        info = summary(workdir / "stream" / uri)
        assert info["video"][0] == "h264" and info["audio"] == "aac" and info["frames"] >= 85
    # segments aligned: same count and durations in every variant, each starting on a keyframe
    durations = []
    for _, uri in variants:
        playlist = (workdir / "stream" / uri).read_text()
        durations.append(re.findall(r"#EXTINF:([0-9.]+)", playlist))
        for segment in re.findall(r"^(segment_\d+\.ts)$", playlist, re.MULTILINE):
            with av.open(str(workdir / "stream" / Path(uri).parent / segment)) as c:
                assert next(c.demux(video=0)).is_keyframe
    assert durations[0] == durations[1] == durations[2] and len(durations[0]) == 3


def test_dash_manifest_and_representations(job) -> None:
    workdir, results, _ = job
    assert results["dash"].status == "completed", results["dash"].error
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    mpd = ET.parse(workdir / "dash/manifest.mpd").getroot()
    reps = mpd.findall(".//d:Representation", ns)
    video = [r.attrib for r in reps if r.get("mimeType") == "video/mp4"]
    assert [(r["width"], r["height"], r["bandwidth"]) for r in video] == [
        ("426", "240", "300000"),
        ("256", "144", "150000"),
    ]
    assert all(r["codecs"].startswith("avc1.") for r in video)
    assert [r.get("codecs") for r in reps if r.get("mimeType") == "audio/mp4"] == ["mp4a.40.2"]
    for rep_id in ("0", "1"):  # init segment + media segments = a playable fragmented MP4
        joined = workdir / f"joined_{rep_id}.mp4"
        parts = [workdir / f"dash/init_{rep_id}.m4s", *sorted((workdir / "dash").glob(f"chunk_{rep_id}_*.m4s"))]
        joined.write_bytes(b"".join(p.read_bytes() for p in parts))
        info = summary(joined)
        assert info["video"][0] == "h264" and info["frames"] >= 85


def decoded_image(path: Path):
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def test_thumbnails_count_size_and_format(job) -> None:
    workdir, results, _ = job
    poster = results["poster"]
    assert [f.path for f in poster.files] == [f"poster/thumbnail_{i:03d}.jpg" for i in range(1, 6)]
    assert {decoded_image(workdir / f.path).shape for f in poster.files} == {(180, 320, 3)}
    frames = results["frames"]
    assert [f.mime_type for f in frames.files] == ["image/webp"] * 3
    assert {decoded_image(workdir / f.path).shape for f in frames.files} == {(90, 160, 3)}
    # taken at different times: testsrc2 moves, so the pictures differ
    first, middle = (decoded_image(workdir / f.path) for f in frames.files[:2])
    assert abs(first.astype(int) - middle.astype(int)).mean() > 1


def test_storyboard_cues_point_inside_the_sprites_at_real_frames(job) -> None:
    workdir, results, _ = job
    names = [f.path for f in results["scrub"].files]
    assert names == ["scrub/sprite_001.jpg", "scrub/sprite_002.jpg", "scrub/storyboard.vtt"]
    vtt = (workdir / "scrub/storyboard.vtt").read_text()
    cues = re.findall(
        r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(sprite_\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)", vtt
    )
    assert vtt.startswith("WEBVTT\n") and len(cues) == math.ceil(3.0 / 0.7)  # 5 cues for 3 s every 0.7 s
    assert cues[0][:2] == ("00:00:00.000", "00:00:00.700") and cues[-1][1] == "00:00:03.000"
    sprites = {name: decoded_image(workdir / "scrub" / name) for name in {c[2] for c in cues}}
    assert {s.shape for s in sprites.values()} == {(108, 192, 3)}  # 2x2 tiles of 96x54
    for *_, name, x, y, w, h in cues:
        x, y, w, h = map(int, (x, y, w, h))
        sprite = sprites[name]
        assert x + w <= sprite.shape[1] and y + h <= sprite.shape[0]
        assert sprite[y : y + h, x : x + w].mean() > 20  # a frame, not the black padding of a partial sheet
    last = sprites["sprite_002.jpg"]
    assert last[54:, 96:].mean() < 20  # the 5th frame is tile 1 of sheet 2; the rest is padding


def test_animations(job) -> None:
    workdir, results, _ = job
    gif = summary(only_file(results["preview"], workdir))
    assert gif["video"] == ("gif", 160, 90) and gif["frames"] == pytest.approx(15, abs=1)  # 1.5 s at 10 fps
    webp = only_file(results["loop"], workdir).read_bytes()
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP" and b"ANIM" in webp
    assert webp.count(b"ANMF") == pytest.approx(8, abs=1)  # 1 s at 8 fps


def test_waveform(job) -> None:
    workdir, results, _ = job
    image = decoded_image(only_file(results["wave"], workdir))
    assert image.shape == (80, 400, 3)
    orange = (image[:, :, 0] > 200) & (image[:, :, 1] > 100) & (image[:, :, 2] < 60)
    assert 0.05 < orange.mean() < 0.95  # the wave is drawn in the colour asked, and is not a filled box


def measured_loudness(path: Path) -> float:
    ran = subprocess.run(
        [media.ffmpeg(), "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(re.findall(r"I:\s+(-?[0-9.]+) LUFS", ran.stderr)[-1])


def test_loudness_lands_on_the_target(job, clips) -> None:
    workdir, results, _ = job
    voice = only_file(results["voice"], workdir)
    assert measured_loudness(clips["av"]) < -19  # the sine is quieter than the target: gain was applied
    assert measured_loudness(voice) == pytest.approx(-16, abs=1.0)
    assert summary(voice)["audio"] == "mp3" and summary(voice)["duration"] == pytest.approx(3.0, abs=0.1)
    assert [log.name for log in results["voice"].logs] == ["voice.loudness.log", "voice.encode.log"]


def test_progress_is_per_output_and_overall(job) -> None:
    _, results, reports = job
    overall = [r.overall for r in reports]
    assert overall == sorted(overall) and overall[-1] == 100.0
    assert reports[-1].outputs == {name: 100.0 for name in results}
    assert len({r.overall for r in reports if 0 < r.overall < 100}) >= len(results) - 1  # one step per output at least
    assert {r.current for r in reports} >= set(results)


@pytest.mark.parametrize(("fmt", "codec"), [("m4a", "aac"), ("opus", "opus"), ("flac", "flac"), ("wav", "pcm_s16le")])
async def test_audio_formats(clips, tmp_path: Path, fmt: str, codec: str) -> None:
    info = await probe(clips["av"], NO_FFPROBE)
    spec = [{"type": "audio", "name": "a", "format": fmt, "audio": {"channels": 1}, "clip": {"start": 1}}]
    (result,) = await run_outputs(
        parse_outputs(spec), input_path=clips["av"], info=info, workdir=tmp_path, ffmpeg=media.ffmpeg()
    )
    with av.open(str(only_file(result, tmp_path))) as c:
        (stream,) = c.streams
        assert stream.codec_context.codec.canonical_name == codec and stream.codec_context.channels == 1
        assert c.duration / av.time_base == pytest.approx(2.0, abs=0.1)
