"""Real-world pictures through POST /jobs (issue 23): each generated source (tests/corpus.py) makes a web
MP4, an HLS ladder and a JPEG poster on the embedded stack, and the files are measured with PyAV and
ffmpeg: display size and aspect, where the bright corner went, colour tags and tone-mapped levels,
field order by idet on the output, and the notes. Plus the pure argv rules the builders follow."""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mediaflow.media.outputs import Source, parse_outputs, plan_output
from mediaflow.media.outputs.ladder import ladder_for, spread_ladder_notes
from mediaflow.media.outputs.measured import search_filters
from mediaflow.media.outputs.shaping import JPEG_RANGE, SDR_TAGS, tone_map
from mediaflow.media.outputs.spec import HlsOutput, VideoOutput
from mediaflow.media.outputs.video import chunk_video_args
from mediaflow.media.picture import Picture
from mediaflow.media.probe import MediaInfo, VideoStreamInfo, probe
from mediaflow.media.quality import Frame, comparison_argv
from mediaflow.settings import Settings
from tests import corpus, media
from tests.apptools import make_settings, running_app, wait_for_final

SPEC = [
    {"name": "web", "type": "video", "video": {"preset": "ultrafast"}, "audio": {"bitrate": "96k"}},
    {"name": "stream", "type": "hls", "segment_seconds": 1, "video": {"preset": "ultrafast"}},
    {"name": "poster", "type": "thumbnails", "count": 1, "format": "jpg"},
]


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):
    return make_settings(tmp_path_factory.mktemp("picture"))


async def _run(settings, source: Path, tmp_path: Path, spec: list[dict] = SPEC) -> tuple[dict, dict[str, Path]]:
    """POST /jobs with `source` (copied under the source root); the finished job and its files saved."""
    root = Path(settings.LOCAL_SOURCE_ROOTS[0])
    (root / source.name).write_bytes(source.read_bytes())
    async with running_app(settings, api_workers=1) as client:
        answer = await client.post("/jobs", json={"source": source.name, "outputs": spec})
        assert answer.status_code == 201, answer.text
        job = await wait_for_final(client, answer.json()["job_id"], 120, view="/jobs/{}")
        files = {}
        for output in job["outputs"]:
            for file in output["files"]:
                target = tmp_path / file["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes((await client.get(file["url"])).content)
                files[file["path"]] = target
                if file["path"].endswith("/index.m3u8"):  # a variant: its init section and first segment too
                    folder = file["path"].rsplit("/", 1)[0]
                    text = target.read_text()
                    names = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)
                    names.append(next(line for line in text.splitlines() if line and not line.startswith("#")))
                    for name in names:
                        answer = await client.get(f"/jobs/{job['job_id']}/files/{folder}/{name}")
                        assert answer.status_code == 200, name
                        (tmp_path / folder / name).write_bytes(answer.content)
                        files[f"{folder}/{name}"] = tmp_path / folder / name
    assert job["status"] == "completed", job
    return job, files


def _first_frame(path: Path) -> tuple[av.VideoFrame, av.video.stream.VideoStream]:
    container = av.open(str(path))
    stream = container.streams.video[0]
    frame = next(container.decode(stream))
    return frame, stream


def _luma(path: Path) -> np.ndarray:
    frame, _ = _first_frame(path)
    return frame.reformat(format="gray").to_ndarray().astype(float)


def _code_values(path: Path) -> np.ndarray:
    """The luma plane's code values as stored (16-235 in limited range), no range conversion."""
    frame, _ = _first_frame(path)
    plane = frame.planes[0]
    return (
        np.frombuffer(bytes(plane), np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width].astype(float)
    )


def _bright_quadrant(path: Path) -> str:
    y = _luma(path)
    h, w = y.shape
    quadrants = {
        "top-left": y[: h // 2, : w // 2],
        "top-right": y[: h // 2, w // 2 :],
        "bottom-left": y[h // 2 :, : w // 2],
        "bottom-right": y[h // 2 :, w // 2 :],
    }
    return max(quadrants, key=lambda name: quadrants[name].mean())


def _video(path: Path) -> dict:
    frame, stream = _first_frame(path)
    cc = stream.codec_context
    return {
        "size": (frame.width, frame.height),
        "sar": stream.sample_aspect_ratio or Fraction(1),
        "rotation": frame.rotation,
        "pix_fmt": cc.format.name,
        "tags": (int(cc.color_primaries), int(cc.color_trc), int(cc.colorspace), int(cc.color_range)),
    }


def _idet(path: Path) -> dict[str, int]:
    run = subprocess.run(
        [media.ffmpeg(), "-hide_banner", "-nostats", "-i", str(path), "-vf", "idet", "-an", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # ffmpeg may configure the graph twice and print a summary of zeros first: the last one counts
    found = re.findall(r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)", run.stderr)
    assert found, run.stderr[-500:]
    return dict(zip(("tff", "bff", "progressive"), map(int, found[-1]), strict=True))


def _notes(job: dict) -> dict[str, list[str]]:
    return {o["name"]: o["notes"] for o in job["outputs"]}


BT709_TAGS = (1, 1, 1, 1)  # primaries, transfer, matrix: BT.709; range: limited ("tv")


async def test_rotated_phone_video_is_upright_everywhere(settings, src: Path, tmp_path: Path) -> None:
    source = corpus.rotated(src, "hevc", degrees_ccw=90)  # stored 320x180, shown 180x320
    more = [
        {"name": "scrub", "type": "storyboard", "interval_seconds": 0.5, "columns": 2, "rows": 1, "width": 90},
        {"name": "preview", "type": "animation", "format": "gif", "duration": 0.5, "width": 160, "fps": 4},
        {"name": "dash", "type": "dash", "segment_seconds": 1, "video": {"preset": "ultrafast"}},
    ]
    job, files = await _run(settings, source, tmp_path, [*SPEC, *more])
    web = _video(files["web/web.mp4"])
    assert web["size"] == (180, 320) and web["rotation"] == 0
    picture = job["source_media"]["video"]["picture"]
    assert (picture["rotation"], picture["display_width"], picture["display_height"]) == (270, 180, 320)
    rung = _video(files["stream/144p/segment_00000.ts"])
    assert rung["size"] == (144, 256)  # "144p" on a portrait picture: its short side
    poster = files["poster/thumbnail_001.jpg"]
    assert _video(poster)["size"] == (180, 320)
    # turned 90° counter-clockwise, the stored top-left corner is shown bottom-left
    animation = files["preview/preview.gif"]
    assert _video(animation)["size"] == (160, 284)
    for path in (files["web/web.mp4"], files["stream/144p/segment_00000.ts"], poster, animation):
        assert _bright_quadrant(path) == "bottom-left", path
    sprite = _luma(files["scrub/sprite_001.jpg"])
    assert sprite.shape == (160, 180)  # two 90x160 tiles side by side
    first_tile = sprite[:, :90]
    assert first_tile[120:, :45].mean() > 4 * first_tile[:40, 45:].mean() + 20  # its bright corner: bottom-left
    manifest = files["dash/manifest.mpd"].read_text()
    assert re.search(r'width="144" height="256"', manifest), manifest
    assert all("rotated 90° counter-clockwise" in notes for notes in _notes(job).values())


async def test_hdr10_is_tone_mapped_to_bt709(settings, src: Path, tmp_path: Path) -> None:
    job, files = await _run(settings, corpus.hdr(src, "pq"), tmp_path)
    web = _video(files["web/web.mp4"])
    assert web["pix_fmt"] == "yuv420p" and web["tags"] == BT709_TAGS
    white = _luma(files["web/web.mp4"])[:20, :40].mean()
    # SDR white 235; the HDR code values copied as they were would read ~147 here (measured)
    assert white > 200, white
    assert _video(files["stream/144p/segment_00000.ts"])["tags"] == BT709_TAGS
    assert _luma(files["poster/thumbnail_001.jpg"])[:20, :40].mean() > 200
    assert "tone-mapped from HDR10 (PQ) to SDR BT.709" in _notes(job)["web"]
    picture = job["source_media"]["video"]["picture"]
    assert (picture["hdr"], picture["bit_depth"], picture["color_primaries"]) == ("HDR10 (PQ)", 10, "bt2020")
    assert picture["mastering_display"] == corpus.HDR10_MASTERING
    assert picture["content_light"] == {"max_cll": 1000, "max_fall": 400}


async def test_quality_of_a_tone_mapped_output_is_measured_against_the_tone_mapped_source(
    settings, src: Path, tmp_path: Path
) -> None:
    spec = [{"name": "web", "type": "video", "video": {"preset": "ultrafast", "crf": 18}, "quality": ["psnr"]}]
    job, _ = await _run(settings, corpus.hdr(src, "pq"), tmp_path, spec)
    psnr = job["outputs"][0]["quality"]["psnr"]["mean"]
    # against the untouched HDR code values the same encode measured 24.8 dB: its white is another grey
    assert psnr > 40, job["outputs"][0]


async def test_hdr10_can_stay_hdr_with_its_mastering_metadata(settings, src: Path, tmp_path: Path) -> None:
    spec = [
        {"name": "hdr", "type": "video", "video": {"codec": "h265", "preset": "ultrafast", "hdr": "keep"}},
        {
            "name": "av1",
            "type": "video",
            "format": "webm",
            "video": {"codec": "av1", "preset": "ultrafast", "hdr": "keep"},
        },
    ]
    job, files = await _run(settings, corpus.hdr(src, "pq"), tmp_path, spec)
    for path in (files["hdr/hdr.mp4"], files["av1/av1.webm"]):
        kept = await probe(path, Settings(_env_file=None, FFPROBE_BINARY=None))
        assert kept.video is not None
        picture = kept.video.picture
        assert (picture.hdr, picture.bit_depth, picture.color_primaries) == ("HDR10 (PQ)", 10, "bt2020"), path
        assert picture.mastering_display is not None and picture.mastering_display.x265() == corpus.HDR10_MASTERING
        assert picture.content_light == (1000, 400), path


async def test_hdr_stating_only_its_transfer_is_tone_mapped_too(settings, src: Path, tmp_path: Path) -> None:
    source = corpus.hdr(src, "pq", transfer_only=True)
    job, files = await _run(settings, source, tmp_path, [SPEC[0]])
    picture = job["source_media"]["video"]["picture"]
    assert (picture["color_transfer"], picture["color_primaries"], picture["color_matrix"]) == ("smpte2084", None, None)
    assert _luma(files["web/web.mp4"])[:20, :40].mean() > 200  # zscale, told BT.2020, found its way


async def test_hlg_can_stay_hdr_in_hevc(settings, src: Path, tmp_path: Path) -> None:
    spec = [{"name": "hdr", "type": "video", "video": {"codec": "h265", "preset": "ultrafast", "hdr": "keep"}}]
    job, files = await _run(settings, corpus.hdr(src, "hlg"), tmp_path, spec)
    kept = _video(files["hdr/hdr.mp4"])
    assert kept["pix_fmt"] == "yuv420p10le" and kept["tags"][:3] == (9, 18, 9)  # BT.2020, HLG, BT.2020 NCL
    assert _notes(job)["hdr"] == ["HDR kept: HLG, 10-bit BT.2020"]


async def test_hdr_keep_needs_a_codec_that_carries_it(settings) -> None:
    async with running_app(settings) as client:
        for output, expected in (
            ({"type": "video", "video": {"hdr": "keep"}}, "h265 or av1"),
            ({"type": "hls", "video": {"hdr": "keep"}}, "needs video.codec h265"),
        ):
            answer = await client.post("/jobs", json={"source": "any.mp4", "outputs": [{"name": "hdr", **output}]})
            assert answer.status_code == 422 and expected in answer.text, answer.text


async def test_an_hdr10_ladder_stays_hdr_in_hevc(settings, src: Path, tmp_path: Path) -> None:
    video = {"codec": "h265", "preset": "ultrafast", "hdr": "keep"}
    spec = [
        {"name": "stream", "type": "hls", "segment_seconds": 1, "video": video},
        {"name": "dash", "type": "dash", "segment_seconds": 1, "video": video},
    ]
    job, files = await _run(settings, corpus.hdr(src, "pq"), tmp_path, spec)
    variants = [line for line in files["stream/master.m3u8"].read_text().splitlines() if "STREAM-INF" in line]
    assert variants and all('CODECS="hvc1.2.' in line and "VIDEO-RANGE=PQ" in line for line in variants)
    joined = tmp_path / "first.mp4"  # init section + first segment: a playable fragment
    joined.write_bytes(files["stream/144p/init.mp4"].read_bytes() + files["stream/144p/segment_00000.m4s"].read_bytes())
    kept = await probe(joined, Settings(_env_file=None, FFPROBE_BINARY=None))
    assert kept.video is not None
    assert (kept.video.picture.hdr, kept.video.picture.bit_depth) == ("HDR10 (PQ)", 10)
    assert kept.video.picture.mastering_display is not None
    manifest = files["dash/manifest.mpd"].read_text()
    assert 'codecs="hvc1.2.' in manifest
    assert '<SupplementalProperty schemeIdUri="urn:mpeg:mpegB:cicp:TransferCharacteristics" value="16"/>' in manifest
    assert _notes(job)["stream"] == ["HDR kept: HDR10 (PQ), 10-bit BT.2020"]


async def test_anamorphic_interlaced_dvd(settings, src: Path, tmp_path: Path) -> None:
    job, files = await _run(settings, corpus.pal_dvd(src), tmp_path)
    web = _video(files["web/web.mp4"])
    assert web["size"] == (1024, 576) and web["sar"] == 1
    picture = job["source_media"]["video"]["picture"]
    assert (picture["sample_aspect_ratio"], picture["field_order"], picture["display_width"]) == ("64:45", "tff", 1024)
    rung = _video(files["stream/480p/segment_00000.ts"])
    assert rung["size"] == (854, 480)  # 16:9, not 600x480
    assert _video(files["poster/thumbnail_001.jpg"])["size"] == (1024, 576)
    source_fields = _idet(src / "pal_dvd.mpg")
    assert source_fields["tff"] > source_fields["progressive"]  # the measurement does see the combing
    for path in (files["web/web.mp4"], files["stream/480p/segment_00000.ts"]):
        fields = _idet(path)
        assert fields["progressive"] > 3 * (fields["tff"] + fields["bff"]), (path, fields)
    assert {"deinterlaced", "anamorphic 16:9 made square pixels (1024x576)"} <= set(_notes(job)["web"])


async def test_1080i_broadcast_poster_and_deinterlacing(settings, src: Path, tmp_path: Path) -> None:
    spec = [*SPEC[:2], {"name": "poster", "type": "thumbnails", "count": 2, "width": 480, "format": "jpg"}]
    job, files = await _run(settings, corpus.broadcast_1080i(src), tmp_path, spec)
    poster = _video(files["poster/thumbnail_001.jpg"])  # this failed: "Could not open encoder" (mjpeg)
    assert poster["size"] == (480, 270) and poster["pix_fmt"] == "yuvj420p"
    assert _video(files["poster/thumbnail_002.jpg"])["size"] == (480, 270)
    for path in (files["web/web.mp4"], files["stream/1080p/segment_00000.ts"], files["stream/360p/segment_00000.ts"]):
        fields = _idet(path)
        assert fields["progressive"] > 3 * (fields["tff"] + fields["bff"]), (path, fields)
    assert _video(files["web/web.mp4"])["size"] == (1920, 1080)
    assert all("deinterlaced" in notes for notes in _notes(job).values())


async def test_telecined_film_is_rebuilt_not_deinterlaced(settings, src: Path, tmp_path: Path) -> None:
    job, files = await _run(settings, corpus.telecined(src), tmp_path, [{**SPEC[0], "video": {"crf": 10}}])
    with av.open(str(corpus.film_master(src))) as master:
        film = [frame.to_ndarray(format="gray").astype(float) for frame in master.decode(video=0)]
    with av.open(str(files["web/web.mp4"])) as web:
        out = [frame.to_ndarray(format="gray").astype(float) for frame in web.decode(video=0)]
    assert len(out) == 60  # 2 s at 30000/1001: the frame count and rate stay the source's

    def psnr_to_film(frame: np.ndarray) -> float:
        mse = min(float(((frame - picture) ** 2).mean()) for picture in film)
        return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)

    # every output frame is a whole film frame (bwdif's interpolated fields measure ~41 dB here)
    assert min(psnr_to_film(frame) for frame in out) > 50
    assert _notes(job)["web"] == ["telecined film: fields matched back into whole film frames (cadence kept)"]
    assert job["source_media"]["video"]["picture"]["telecined"] is True


async def test_prores_and_full_range_sources(settings, src: Path, tmp_path: Path) -> None:
    job, files = await _run(settings, corpus.prores_422_10bit(src), tmp_path)
    for path in (files["web/web.mp4"], files["stream/144p/segment_00000.ts"]):
        assert _video(path)["pix_fmt"] == "yuv420p", path
    assert _bright_quadrant(files["poster/thumbnail_001.jpg"]) == "top-left"
    assert "10-bit 4:2:2 reduced to 8-bit 4:2:0" in _notes(job)["web"]
    job, files = await _run(settings, corpus.full_range_bt601(src), tmp_path)
    for path in (files["web/web.mp4"], files["stream/144p/segment_00000.ts"]):
        assert _video(path)["tags"] == BT709_TAGS and _video(path)["pix_fmt"] == "yuv420p", path
    y = _code_values(files["web/web.mp4"])
    # limited range after the conversion: white near 235 and black near 16, not 255 / 0 relabelled
    assert 225 < y[:20, :40].mean() < 245 and 10 < y[-20:, -40:].mean() < 22
    assert _notes(job)["web"] == ["colour converted from full-range BT.601 to BT.709 limited range"]
    poster = _code_values(files["poster/thumbnail_001.jpg"])  # JPEG: full range again, white 255
    assert poster[:20, :40].mean() > 245 and poster[-20:, -40:].mean() < 8


async def test_an_rgb_screen_recording_is_converted_with_the_bt709_matrix(settings, src: Path, tmp_path: Path) -> None:
    job, files = await _run(settings, corpus.rgb_screen(src), tmp_path, [SPEC[0]])
    web = files["web/web.mp4"]
    assert _video(web)["tags"] == BT709_TAGS
    frame, _ = _first_frame(web)
    y, cb, cr = (
        np.frombuffer(bytes(plane), np.uint8).reshape(-1, plane.line_size)[:height, :width].mean()
        for plane, width, height in zip(frame.planes, (1280, 640, 640), (720, 360, 360), strict=True)
    )
    # pure red in BT.709 limited range is Y 63, Cb 102, Cr 240 (BT.601's coefficients give 81, 90, 240)
    assert abs(y - 63) < 3 and abs(cb - 102) < 3 and abs(cr - 240) < 3, (y, cb, cr)
    assert _notes(job)["web"] == ["RGB (rgb24) converted to BT.709 limited-range YUV 4:2:0"]


# --- the argv rules, without running ffmpeg ---------------------------------------------------------------


def _source(picture: Picture, width: int = 1920, height: int = 1080) -> Source:
    video = VideoStreamInfo("h264", width, height, 25.0, picture=picture)
    return Source(Path("/in.mp4"), MediaInfo("mov,mp4", 10.0, video, None, 1, None), "ffmpeg")


def _filters(output: dict, picture: Picture, width: int = 1920, height: int = 1080) -> str:
    (spec,) = parse_outputs([output])
    argv = plan_output(spec, _source(picture, width, height), Path("/out"), None).steps[0].argv
    return next(argv[i + 1] for i, arg in enumerate(argv) if arg in ("-vf", "-filter_complex"))


def test_interlaced_sources_are_deinterlaced_before_scaling() -> None:
    flagged = Picture(field_order="tff")
    chain = _filters({"type": "video", "name": "v", "video": {"height": 720}}, flagged)
    assert chain.startswith("bwdif=mode=send_frame:parity=tff:deint=interlaced,scale=1280:720")
    measured = Picture(field_order="bff", field_order_measured=True)
    assert "bwdif=mode=send_frame:parity=bff:deint=all" in _filters({"type": "hls", "name": "h"}, measured)


def test_tone_mapping_and_range_rules() -> None:
    pq = Picture(color_transfer="smpte2084", color_primaries="bt2020", color_matrix="bt2020nc", bit_depth=10)
    assert _filters({"type": "video", "name": "v"}, pq) == f"{tone_map(pq)},{SDR_TAGS}"
    assert tone_map(pq).startswith("zscale=tin=smpte2084:pin=bt2020:min=bt2020nc:rin=tv:t=linear:p=bt2020:npl=203,")
    kept = parse_outputs([{"type": "video", "name": "v", "video": {"codec": "av1", "hdr": "keep"}}])[0]
    argv = plan_output(kept, _source(pq), Path("/out"), None).steps[0].argv
    assert "-vf" not in argv and argv[argv.index("-pix_fmt") + 1] == "yuv420p10le"
    assert _filters({"type": "thumbnails", "name": "t"}, pq).endswith(f"{tone_map(pq)},{JPEG_RANGE}")
    tagged_tv = Picture(color_range="tv", color_matrix="bt709")
    assert _filters({"type": "thumbnails", "name": "t"}, tagged_tv) == JPEG_RANGE
    full_hd = Picture(color_range="pc")  # no matrix: HD is taken as BT.709
    assert _filters({"type": "video", "name": "v"}, full_hd).startswith("colorspace=all=bt709:iall=bt709:irange=pc")


def test_portrait_rungs_are_named_by_their_short_side() -> None:
    phone = Picture(rotation=90)  # stored 1920x1080, shown 1080x1920
    graph = _filters({"type": "hls", "name": "h"}, phone)
    assert "scale=1080:1920,setdar=1080/1920" in graph and "scale=720:1280," in graph
    assert "scale=1920:1080" not in graph


def test_a_plain_source_gets_no_picture_filters() -> None:
    plain = Picture(field_order="progressive", color_primaries="bt709", color_transfer="bt709", bit_depth=8)
    (spec,) = parse_outputs([{"type": "video", "name": "v"}])
    argv = plan_output(spec, _source(plain), Path("/out"), None).steps[0].argv
    assert "-vf" not in argv
    assert _filters({"type": "hls", "name": "h"}, plain).startswith("[0:V:0]split=4")


def test_an_hevc_ladder_uses_fmp4_segments_and_forced_idr_keyframes() -> None:
    plain = Picture(field_order="progressive")
    (spec,) = parse_outputs([{"type": "hls", "name": "h", "video": {"codec": "h265"}}])
    plan = plan_output(spec, _source(plain), Path("/out"), None)
    argv = plan.steps[0].argv
    assert argv[argv.index("-c:v") + 1 : argv.index("-c:v") + 4] == ["libx265", "-tag:v", "hvc1"]
    assert argv[argv.index("-hls_segment_type") + 1] == "fmp4" and argv[argv.index("-pix_fmt") + 1] == "yuv420p"
    assert "-forced-idr" in argv and plan.finish is None  # SDR: nothing to add to the master playlist
    (h264,) = parse_outputs([{"type": "hls", "name": "h"}])
    argv = plan_output(h264, _source(plain), Path("/out"), None).steps[0].argv
    assert argv[argv.index("-hls_segment_type") + 1] == "mpegts" and "libx265" not in argv


def test_quality_references_go_through_the_same_picture_rules(tmp_path: Path) -> None:
    frame = Frame(320, 180, 25.0)
    argv = comparison_argv("ffmpeg", tmp_path / "out.mp4", tmp_path / "in.mp4", frame, tmp_path / "log.json")
    plain_graph = argv[argv.index("-filter_complex") + 1]
    assert "[1:v:0]fps=25.0,scale=320:180" in plain_graph  # unchanged without picture rules
    pq = Picture(color_transfer="smpte2084", color_primaries="bt2020", color_matrix="bt2020nc")
    argv = comparison_argv(
        "ffmpeg",
        tmp_path / "out.mp4",
        tmp_path / "in.mp4",
        frame,
        tmp_path / "log.json",
        reference_filters=[tone_map(pq)],
    )
    assert f"[1:v:0]{tone_map(pq)},fps=25.0,scale=320:180" in argv[argv.index("-filter_complex") + 1]


async def test_a_target_vmaf_search_on_an_hdr_source(settings, src: Path, tmp_path: Path) -> None:
    spec = [{"name": "web", "type": "video", "video": {"preset": "ultrafast", "target_vmaf": 93, "max_probes": 2}}]
    job, files = await _run(settings, corpus.hdr(src, "pq"), tmp_path, spec)
    output = job["outputs"][0]
    assert output["crf_search"]["probes"] and output["quality"]["vmaf"]["mean"] > 85, output
    assert _luma(files["web/web.mp4"])[:20, :40].mean() > 200


async def test_a_target_vmaf_search_on_an_interlaced_source(settings, src: Path, tmp_path: Path) -> None:
    # the search's samples are raw frames without interlacing flags: its probes deinterlace every frame
    spec = [{"name": "web", "type": "video", "video": {"preset": "ultrafast", "target_vmaf": 90, "max_probes": 2}}]
    job, files = await _run(settings, corpus.pal_dvd(src), tmp_path, spec)
    output = job["outputs"][0]
    assert output["crf_search"]["probes"] and output["quality"]["vmaf"]["mean"] > 80, output
    fields = _idet(files["web/web.mp4"])
    assert fields["progressive"] > 3 * (fields["tff"] + fields["bff"]), fields


def test_the_crf_search_deinterlaces_its_flagless_samples_whole() -> None:
    (spec,) = parse_outputs([{"type": "video", "name": "v", "video": {"target_vmaf": 93, "height": 360}}])
    stream = _source(Picture(field_order="tff")).need_video("v")
    vf, reference = search_filters(spec.video, stream)
    assert vf == "bwdif=mode=send_frame:parity=tff:deint=all,scale=640:360,setsar=1"
    assert reference == ["bwdif=mode=send_frame:parity=tff:deint=all"]
    assert search_filters(spec.video, _source(Picture()).need_video("v")) == ("scale=640:360,setsar=1", [])


def test_hdr_keep_on_an_sdr_source_says_so() -> None:
    ten_bit_sdr = Picture(
        field_order="progressive", pixel_format="yuv420p10le", bit_depth=10, chroma_subsampling="4:2:0"
    )
    for output in (
        {"type": "video", "name": "v", "video": {"codec": "h265", "hdr": "keep"}},
        {"type": "hls", "name": "h", "video": {"codec": "h265", "hdr": "keep"}},
    ):
        (spec,) = parse_outputs([output])
        plan = plan_output(spec, _source(ten_bit_sdr), Path("/out"), None)
        argv = plan.steps[0].argv
        assert argv[argv.index("-pix_fmt") + 1] == "yuv420p10le" and plan.finish is None
        assert plan.notes == ["video.hdr keep: the source is SDR, so there was no HDR to keep (encoded 10-bit SDR)"]
    (tone_mapped,) = parse_outputs([{"type": "video", "name": "v"}])
    assert plan_output(tone_mapped, _source(ten_bit_sdr), Path("/out"), None).notes == [
        "10-bit 4:2:0 reduced to 8-bit 4:2:0"
    ]


def test_chunks_and_rendition_tasks_follow_the_same_rules_as_whole_outputs() -> None:
    """The chunked path's chunk options carry the whole encode's picture chain, and a ladder spread over
    rendition tasks gets its rungs and notes from the display size, as the whole ladder does."""
    hdr_pal = Picture(
        field_order="tff", sample_aspect=Fraction(64, 45), color_transfer="smpte2084", color_primaries="bt2020"
    )
    (web,) = parse_outputs([{"type": "video", "name": "v", "video": {"height": 480}}])
    assert isinstance(web, VideoOutput)
    source = _source(hdr_pal, 720, 576)
    whole = plan_output(web, source, Path("/out"), None)
    chunk = chunk_video_args(web, source)
    assert chunk[chunk.index("-vf") + 1] == _filters(
        {"type": "video", "name": "v", "video": {"height": 480}}, hdr_pal, 720, 576
    )
    assert "bwdif" in chunk[chunk.index("-vf") + 1] and "tonemap" in chunk[chunk.index("-vf") + 1]
    assert "deinterlaced" in whole.notes

    (ladder,) = parse_outputs([{"type": "hls", "name": "h", "parallel": True}])
    assert isinstance(ladder, HlsOutput)
    phone = _source(Picture(rotation=90, color_transfer="arib-std-b67", color_primaries="bt2020"))
    _, rungs, _ = ladder_for(ladder, phone.info.video)
    assert [r.frame for r in rungs] == [(1080, 1920), (720, 1280), (480, 854), (360, 640)]  # portrait
    notes = spread_ladder_notes(ladder, phone.info)
    assert notes == plan_output(ladder, phone, Path("/out"), None).notes
    assert {"rotated 90° clockwise", "tone-mapped from HLG to SDR BT.709"} <= set(notes)
