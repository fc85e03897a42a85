"""Tracks, time and odd input through the output builders with real ffmpeg, on the generated corpus
(tests/corpus_tracks.py): every audio and subtitle track kept with its language (MP4, MKV, WebM, HLS
alternate renditions, DASH adaptation sets), 5.1 and downmixes, bitmap subtitles skipped, variable frame
rate kept frame for frame (whole and chunked), edit-listed sources in sync, audio-only and cover-art
sources. Outputs are read back with PyAV."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import ValidationError

from mediaflow.media.chunking import encode_chunked
from mediaflow.media.outputs import OutputResult, parse_outputs, plan_output, run_outputs
from mediaflow.media.outputs.plan import Source
from mediaflow.media.outputs.spec import VideoOutput
from mediaflow.media.outputs.stream_tracks import display_names, finish_hls
from mediaflow.media.outputs.timing import KEEP_VARIABLE_RATE
from mediaflow.media.outputs.track_map import TrackChoice
from mediaflow.media.outputs.video import chunk_video_args
from mediaflow.media.outputs.webvtt import parse_cues, segment_cues
from mediaflow.media.picture import frame_rate_mode_of
from mediaflow.media.probe import MediaInfo, probe
from mediaflow.media.tracks import AudioTrack, SourceTracks, language_code
from mediaflow.settings import Settings
from tests import corpus as picture_corpus
from tests import corpus_tracks as corpus
from tests.media import _generate, ffmpeg, ffprobe

PYAV = Settings(_env_file=None, FFPROBE_BINARY=None)
FAST = {"preset": "ultrafast"}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus-tracks")


async def make(outputs: list[dict], source: Path, workdir: Path) -> tuple[dict[str, OutputResult], MediaInfo]:
    info = await probe(source, PYAV)
    results = await run_outputs(parse_outputs(outputs), input_path=source, info=info, workdir=workdir, ffmpeg=ffmpeg())
    return {r.name: r for r in results}, info


def streams(path: Path) -> list[tuple[str, str, str | None, bool]]:
    """(type, codec, language, default) of every stream."""
    with av.open(str(path)) as container:
        return [
            (
                s.type,
                s.codec_context.name,
                s.metadata.get("language"),
                bool(s.disposition & av.stream.Disposition.default),
            )
            for s in container.streams
        ]


def tone(path: Path, audio_index: int, *, options: dict | None = None) -> float:
    """The frequency (Hz) of one audio track, from its zero crossings over the first second."""
    with av.open(str(path), options=options or {}) as container:
        samples = []
        for frame in container.decode(container.streams.audio[audio_index]):
            samples.append(
                frame.to_ndarray().reshape(frame.layout.nb_channels, -1)[0]
                if frame.format.is_planar
                else frame.to_ndarray().reshape(-1, frame.layout.nb_channels)[:, 0]
            )
            if sum(len(s) for s in samples) > 48000:
                break
    signal = np.concatenate(samples)[4800:48000]  # past the encoder's first frames
    crossings = np.count_nonzero(np.diff(np.signbit(signal)))
    return crossings / 2 / (len(signal) / 48000)


def at(pts: int | None, time_base: object) -> float:
    """Seconds of a timestamp that must be there."""
    assert pts is not None and time_base is not None
    return float(pts * Fraction(str(time_base)))


def video_frames(path: Path, options: dict | None = None) -> int:
    with av.open(str(path), options=options or {}) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


# --- the probe ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prober", ["pyav", "ffprobe"])
async def test_the_probe_describes_every_track(corpus_dir: Path, prober: str) -> None:
    if prober == "ffprobe" and ffprobe() is None:
        pytest.skip("no ffprobe here (scripts/setup.sh --test installs one)")
    settings = PYAV if prober == "pyav" else Settings(_env_file=None, FFPROBE_BINARY=ffprobe())
    two_info = await probe(corpus.two_languages(corpus_dir), settings)
    two = two_info.tracks
    assert [(t.language, t.default, t.channels) for t in two.audio] == [("eng", True, 2), ("fra", False, 2)]
    assert not two.plain and not two_info.variable_frame_rate
    subtitled = (await probe(corpus.subtitled_mkv(corpus_dir), settings)).tracks
    assert [(s.codec, s.language, s.bitmap) for s in subtitled.subtitles] == [
        ("subrip", "eng", False),
        ("subrip", "fra", False),
        ("dvd_subtitle", "deu", True),
    ]
    surround = (await probe(corpus.surround_ac3(corpus_dir), settings)).tracks
    assert [(t.codec, t.channels, t.layout) for t in surround.audio] == [("ac3", 6, "5.1(side)")]
    camera = await probe(corpus.mov_with_timecode_and_cover(corpus_dir), settings)
    assert camera.video is not None and camera.video.codec == "h264"  # the cover is not taken for the video
    assert sorted(camera.tracks.ignored) == ["cover art", "timecode", "timecode"]
    assert (await probe(corpus.variable_frame_rate(corpus_dir), settings)).variable_frame_rate
    assert (await probe(corpus.plain_clip(corpus_dir), settings)).tracks.plain


async def test_a_plain_source_keeps_the_argv_it_always_had(corpus_dir: Path, tmp_path: Path) -> None:
    """Tracks change nothing for one video + one stereo track at a constant rate: the argv is the one built
    from a description without any track information."""
    info = await probe(corpus.plain_clip(corpus_dir), PYAV)
    assert info.tracks.plain and len(info.tracks.audio) == 1
    bare = dataclasses.replace(info, tracks=SourceTracks())
    specs = parse_outputs(
        [
            {"type": "video", "name": "web"},
            {"type": "video", "name": "mkv", "format": "mkv", "audio": {"channels": 1}},
            {"type": "hls", "name": "hls"},
            {"type": "dash", "name": "dash"},
            {"type": "audio", "name": "voice"},
        ]
    )
    for spec in specs:
        described = plan_output(spec, Source(Path("/in.mp4"), info, "ffmpeg"), tmp_path, None)
        plain = plan_output(spec, Source(Path("/in.mp4"), bare, "ffmpeg"), tmp_path, None)
        assert [s.argv for s in described.steps] == [s.argv for s in plain.steps], spec.name
        assert described.notes == plain.notes == []


# --- audio tracks ---------------------------------------------------------------------------------------------


async def test_every_audio_language_is_kept_in_mp4_and_mkv(corpus_dir: Path, tmp_path: Path) -> None:
    source = corpus.two_languages(corpus_dir)
    results, _ = await make(
        [
            {"type": "video", "name": "web", "video": FAST},
            {"type": "video", "name": "mkv", "format": "mkv", "video": FAST},
            {"type": "video", "name": "french", "video": FAST, "audio_tracks": ["fre"]},  # B code = T code fra
            {"type": "video", "name": "none", "video": FAST, "audio_tracks": ["deu"]},
            {"type": "video", "name": "loud", "video": FAST, "audio": {"loudness": -20}},
            {"type": "audio", "name": "voice", "format": "m4a"},
        ],
        source,
        tmp_path,
    )
    assert all(r.status == "completed" for r in results.values()), results
    web = tmp_path / "web" / "web.mp4"
    assert [s for s in streams(web) if s[0] == "audio"] == [
        ("audio", "aac", "eng", True),
        ("audio", "aac", "fra", False),
    ]
    assert tone(web, 0) == pytest.approx(corpus.TONES["eng"], rel=0.03)
    assert tone(web, 1) == pytest.approx(corpus.TONES["fra"], rel=0.03)
    assert results["web"].notes == ["2 audio tracks kept (eng, fra)"]
    mkv = tmp_path / "mkv" / "mkv.mkv"
    assert [s[2] for s in streams(mkv) if s[0] == "audio"] == ["eng", "fra"]
    french = tmp_path / "french" / "french.mp4"
    assert [s for s in streams(french) if s[0] == "audio"] == [("audio", "aac", "fra", True)]
    assert tone(french, 0) == pytest.approx(corpus.TONES["fra"], rel=0.03)
    assert [s[0] for s in streams(tmp_path / "none" / "none.mp4")] == ["video"]
    assert results["none"].notes == ["no audio track in deu: the source has eng, fra; the output has no audio"]
    assert results["loud"].notes == [
        "2 audio tracks kept (eng, fra)",
        "audio.loudness measured on the eng track; its gain applied to every track",
    ]
    assert results["voice"].notes == ["the eng audio track used (the default of 2: eng, fra)"]
    assert tone(tmp_path / "voice" / "voice.m4a", 0) == pytest.approx(corpus.TONES["eng"], rel=0.03)


async def test_surround_is_kept_where_the_codec_holds_it_and_downmixed_where_asked(
    corpus_dir: Path, tmp_path: Path
) -> None:
    results, _ = await make(
        [
            {"type": "video", "name": "aac", "video": FAST},
            {"type": "video", "name": "opus", "format": "webm", "video": {"codec": "vp9", **FAST, "height": 90}},
            {"type": "video", "name": "mp3", "video": FAST, "audio": {"codec": "mp3"}},
            {"type": "video", "name": "stereo", "video": FAST, "audio": {"channels": 2}},
            {"type": "hls", "name": "hls", "video": FAST, "renditions": [{"height": 90, "bitrate": "150k"}]},
        ],
        corpus.surround_ac3(corpus_dir),
        tmp_path,
    )
    assert all(r.status == "completed" for r in results.values()), results

    def channels(name: str, suffix: str) -> int:
        with av.open(str(tmp_path / name / f"{name}.{suffix}")) as container:
            return container.streams.audio[0].codec_context.channels

    assert (channels("aac", "mp4"), channels("opus", "webm"), channels("mp3", "mp4"), channels("stereo", "mp4")) == (
        6,
        6,
        2,
        2,
    )
    assert results["aac"].notes == ["the eng audio track kept in 5.1"]
    assert results["mp3"].notes == ["the eng audio track (5.1) downmixed to stereo: mp3 holds at most 2 channels"]
    assert results["stereo"].notes == ["the eng audio track (5.1) downmixed to 2 channels, as audio.channels asks"]
    # one track: the variants carry it, as for any one-track source
    assert results["hls"].notes == ["audio (eng) downmixed to stereo: HLS audio here is stereo AAC"]
    assert "#EXT-X-MEDIA" not in (tmp_path / "hls" / "master.m3u8").read_text()
    with av.open(str(tmp_path / "hls" / "90p" / "index.m3u8"), options={"protocol_whitelist": "file"}) as container:
        assert container.streams.audio[0].codec_context.channels == 2


# --- subtitles ------------------------------------------------------------------------------------------------

BITMAP_NOTE = (
    "the deu subtitle track (dvd_subtitle) skipped: it is made of pictures, which cannot be turned into text subtitles"
)


async def test_text_subtitles_are_kept_and_bitmaps_skipped_with_a_note(corpus_dir: Path, tmp_path: Path) -> None:
    results, _ = await make(
        [
            {"type": "video", "name": "web", "video": FAST},
            {"type": "video", "name": "mkv", "format": "mkv", "video": FAST},
            {
                "type": "video",
                "name": "webm",
                "format": "webm",
                "video": {"codec": "vp9", **FAST, "height": 90},
                "subtitle_tracks": ["fra"],
            },
        ],
        corpus.subtitled_mkv(corpus_dir),
        tmp_path,
    )
    assert all(r.status == "completed" for r in results.values()), results
    assert [s for s in streams(tmp_path / "web" / "web.mp4") if s[0] == "subtitle"] == [
        ("subtitle", "mov_text", "eng", True),
        ("subtitle", "mov_text", "fra", False),
    ]
    assert results["web"].notes == [BITMAP_NOTE, "2 subtitle tracks kept (eng, fra)"]
    assert [s[1:3] for s in streams(tmp_path / "mkv" / "mkv.mkv") if s[0] == "subtitle"] == [
        ("srt", "eng"),  # PyAV names the SubRip decoder "srt"
        ("srt", "fra"),
    ]
    assert [s[1:3] for s in streams(tmp_path / "webm" / "webm.webm") if s[0] == "subtitle"] == [("webvtt", "fra")]
    # an MP4's mov_text tracks into Matroska, which cannot hold mov_text: SubRip
    again, _ = await make(
        [{"type": "video", "name": "mkv", "format": "mkv", "video": FAST}],
        tmp_path / "web" / "web.mp4",
        tmp_path / "again",
    )
    assert again["mkv"].status == "completed", again["mkv"].error
    assert [s[1:3] for s in streams(tmp_path / "again" / "mkv" / "mkv.mkv") if s[0] == "subtitle"] == [
        ("srt", "eng"),
        ("srt", "fra"),
    ]
    with av.open(str(tmp_path / "web" / "web.mp4")) as container:
        cues = [bytes(p) for p in container.demux(container.streams.subtitles[1]) if p.size]
    assert any("Bonjour." in cue.decode("utf-8", "replace") for cue in cues)


# --- HLS and DASH ---------------------------------------------------------------------------------------------


def media_lines(master: str, kind: str) -> list[dict[str, str]]:
    found = []
    for line in master.splitlines():
        if line.startswith(f"#EXT-X-MEDIA:TYPE={kind},"):
            found.append(dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])))
    return [{k: v.strip('"') for k, v in entry.items()} for entry in found]


async def test_an_hdr_ladder_with_two_languages_gets_audio_renditions_and_video_range(
    corpus_dir: Path, tmp_path: Path
) -> None:
    """The picture and the tracks meet in one ladder: HLG kept in HEVC, two alternate audio renditions,
    and VIDEO-RANGE on the master the track renditions rewrote (the plan's finishers run in order)."""
    phone = picture_corpus.phone_hlg(corpus_dir, seconds=2)
    source = _generate(
        corpus_dir / "phone_two_languages.mp4",
        ["-i", str(phone), "-i", str(corpus.two_languages(corpus_dir)), "-map", "0:v", "-map", "1:a", "-c", "copy"],
    )
    results, _ = await make(
        [
            {
                "type": "hls",
                "name": "hls",
                "segment_seconds": 1,
                "video": {"codec": "h265", "preset": "ultrafast", "hdr": "keep"},
                "renditions": [{"height": 144, "bitrate": "200k"}],
            }
        ],
        source,
        tmp_path,
    )
    assert results["hls"].status == "completed", results
    assert "rotated 90° clockwise" in results["hls"].notes and "2 audio tracks kept (eng, fra)" in results["hls"].notes
    master = (tmp_path / "hls" / "master.m3u8").read_text()
    assert [a["LANGUAGE"] for a in media_lines(master, "AUDIO")] == ["eng", "fra"]
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert variants and all("VIDEO-RANGE=HLG" in v and "AUDIO=" in v for v in variants), master


async def test_hls_makes_alternate_audio_renditions_and_a_dash_set_per_language(
    corpus_dir: Path, tmp_path: Path
) -> None:
    ladder = [{"height": 90, "bitrate": "150k"}, {"height": 72, "bitrate": "100k"}]
    results, _ = await make(
        [
            {"type": "hls", "name": "hls", "segment_seconds": 1, "video": FAST, "renditions": ladder},
            {"type": "dash", "name": "dash", "segment_seconds": 1, "video": FAST, "renditions": ladder},
        ],
        corpus.two_languages(corpus_dir),
        tmp_path,
    )
    assert all(r.status == "completed" for r in results.values()), results
    master = (tmp_path / "hls" / "master.m3u8").read_text()
    audio = media_lines(master, "AUDIO")
    assert [(a["LANGUAGE"], a["NAME"], a["DEFAULT"], a["AUTOSELECT"]) for a in audio] == [
        ("eng", "English", "YES", "YES"),
        ("fra", "Français", "NO", "YES"),
    ]
    group = audio[0]["GROUP-ID"]
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert len(variants) == 2 and all(f'AUDIO="{group}"' in v for v in variants)
    # the variants carry video only; each language is its own playlist with its own tone
    assert video_frames(tmp_path / "hls" / "90p" / "index.m3u8", {"protocol_whitelist": "file"}) == 75
    for entry, language in zip(audio, ("eng", "fra"), strict=True):
        playlist = tmp_path / "hls" / entry["URI"]
        assert tone(playlist, 0, options={"protocol_whitelist": "file"}) == pytest.approx(
            corpus.TONES[language], rel=0.03
        )
    mpd = ET.parse(tmp_path / "dash" / "manifest.mpd").getroot()
    sets = [s.attrib for s in mpd.iter("{urn:mpeg:dash:schema:mpd:2011}AdaptationSet")]
    assert [(s["contentType"], s.get("lang")) for s in sets] == [("video", None), ("audio", "eng"), ("audio", "fra")]


async def test_hls_subtitles_are_segmented_webvtt_renditions_in_line_with_the_video(
    corpus_dir: Path, tmp_path: Path
) -> None:
    results, _ = await make(
        [
            {
                "type": "hls",
                "name": "hls",
                "segment_seconds": 1,
                "video": FAST,
                "renditions": [{"height": 90, "bitrate": "150k"}],
            }
        ],
        corpus.subtitled_mkv(corpus_dir),
        tmp_path,
    )
    result = results["hls"]
    assert result.status == "completed", result.error
    assert result.notes == [BITMAP_NOTE, "2 subtitle tracks kept (eng, fra)"]
    master = (tmp_path / "hls" / "master.m3u8").read_text()
    subtitles = media_lines(master, "SUBTITLES")
    assert [(s["LANGUAGE"], s["DEFAULT"], s["AUTOSELECT"]) for s in subtitles] == [
        ("eng", "YES", "YES"),
        ("fra", "NO", "YES"),
    ]
    variant = next(line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF"))
    assert f'SUBTITLES="{subtitles[0]["GROUP-ID"]}"' in variant
    video_playlist = (tmp_path / "hls" / "90p" / "index.m3u8").read_text()
    fra = tmp_path / "hls" / subtitles[1]["URI"]
    # the same segment lengths as the video, so a player lines them up
    assert re.findall(r"#EXTINF:([\d.]+)", fra.read_text()) == [
        f"{float(x):.6f}" for x in re.findall(r"#EXTINF:([\d.]+)", video_playlist)
    ]
    segments = sorted(fra.parent.glob("segment_*.vtt"))
    assert len(segments) == 3
    with av.open(str(tmp_path / "hls" / "90p" / "segment_00000.ts")) as container:
        video = container.streams.video[0]
        origin = round(at(video.start_time, video.time_base) * 90_000)
    assert all(f"X-TIMESTAMP-MAP=MPEGTS:{origin},LOCAL:00:00:00.000" in s.read_text() for s in segments)
    assert "Bonjour." in segments[0].read_text() and "Deuxième réplique" in segments[1].read_text()
    assert "Deuxième réplique" in segments[2].read_text()  # a cue spanning a boundary is in both segments


# --- time -----------------------------------------------------------------------------------------------------


async def test_variable_frame_rate_is_kept_frame_for_frame_or_made_constant_on_request(
    corpus_dir: Path, tmp_path: Path
) -> None:
    source = corpus.variable_frame_rate(corpus_dir)
    results, info = await make(
        [
            {"type": "video", "name": "kept", "video": FAST},
            {"type": "video", "name": "constant", "video": {**FAST, "fps": 30}},
            {
                "type": "hls",
                "name": "hls",
                "segment_seconds": 1,
                "video": FAST,
                "renditions": [{"height": 90, "bitrate": "150k"}],
            },
        ],
        source,
        tmp_path,
    )
    assert all(r.status == "completed" for r in results.values()), results
    assert video_frames(source) == corpus.vfr_frame_count() == 370
    assert video_frames(tmp_path / "kept" / "kept.mp4") == 370
    assert results["kept"].notes == ["variable frame rate kept: every frame at its own time"]
    assert video_frames(tmp_path / "hls" / "90p" / "index.m3u8", {"protocol_whitelist": "file"}) == 370
    assert video_frames(tmp_path / "constant" / "constant.mp4") == 300  # 10 s at 30 fps
    assert results["constant"].notes == ["variable frame rate made constant at 30 fps, as video.fps asks"]

    # what the issue saw: without the timing options, ffmpeg's 30 fps guess drops frames
    plan = plan_output(
        parse_outputs([{"type": "video", "name": "old", "video": FAST}])[0],
        Source(source, info, ffmpeg()),
        tmp_path,
        None,
    )
    argv = plan.steps[0].argv
    at = argv.index(KEEP_VARIABLE_RATE[0])
    del argv[at : at + len(KEEP_VARIABLE_RATE)]
    subprocess.run(argv, check=True, capture_output=True)
    assert video_frames(tmp_path / "old.mp4") < 300


async def test_the_chunked_path_joins_a_vfr_source_frame_exact(corpus_dir: Path, tmp_path: Path) -> None:
    source = corpus.variable_frame_rate(corpus_dir)
    info = await probe(source, PYAV)
    output = parse_outputs([{"type": "video", "name": "v", "video": FAST}])[0]
    assert isinstance(output, VideoOutput)
    options = chunk_video_args(output, Source(source, info, ffmpeg()))
    assert options[-4:] == KEEP_VARIABLE_RATE
    for chunk_seconds, chunks in ((5, 2), (8, 1)):
        check = await encode_chunked(
            ffmpeg(),
            source,
            tmp_path / f"joined{chunk_seconds}.mp4",
            tmp_path / f"work{chunk_seconds}",
            video_options=options,
            audio_options=["-c:a", "aac"],
            chunk_seconds=chunk_seconds,
        )
        assert check.ok, check.problems
        assert check.figures["chunks"] == chunks and check.figures["frames"] == 370
    # what failed before: a chunk that starts with 5 s at 30 fps is encoded on a 1/30 s grid and loses
    # half its 60 fps frames; the join check says so (and the job fell back to a whole encode that did too)
    before = await encode_chunked(
        ffmpeg(),
        source,
        tmp_path / "before.mp4",
        tmp_path / "before",
        video_options=options[:-4],
        audio_options=["-c:a", "aac"],
        chunk_seconds=8,
    )
    assert not before.ok and "frames instead of the source's 370" in before.problems[0]


def marks(path: Path, options: dict | None = None) -> tuple[list[float], list[float]]:
    """Times of the flashes (video) and beeps (audio) of `sync_marked`, as a player presents them."""
    flashes, beeps = [], []
    with av.open(str(path), options=options or {}) as container:
        bright = False
        for frame in container.decode(video=0):
            now = frame.to_ndarray(format="gray").mean() > 128
            if now and not bright:
                flashes.append(at(frame.pts, frame.time_base))
            bright = now
    with av.open(str(path), options=options or {}) as container:
        loud = False
        for chunk in container.decode(audio=0):
            samples = np.abs(chunk.to_ndarray()).reshape(-1, chunk.samples).max(axis=0)
            start = at(chunk.pts, chunk.time_base)
            for i in range(0, chunk.samples, 48):  # 1 ms windows
                now = samples[i : i + 48].max() > 0.03
                if now and not loud:
                    beeps.append(start + i / chunk.sample_rate)
                loud = now
    return flashes, beeps


async def test_an_edit_listed_cut_starts_at_zero_in_sync_with_its_visible_duration(
    corpus_dir: Path, tmp_path: Path
) -> None:
    source = corpus.edit_listed_cut(corpus_dir)
    results, _ = await make(
        [
            {"type": "video", "name": "web", "video": FAST},
            {"type": "video", "name": "mkv", "format": "mkv", "video": {"preset": "veryfast"}},
            {"type": "hls", "name": "hls", "segment_seconds": 1, "renditions": [{"height": 90, "bitrate": "150k"}]},
        ],
        source,
        tmp_path,
    )
    assert all(r.status == "completed" for r in results.values()), results
    # HLS: MPEG-TS times run from about 1.4 s; flash and beep are compared on that one clock
    flashes, beeps = marks(tmp_path / "hls" / "90p" / "index.m3u8", {"protocol_whitelist": "file"})
    assert len(flashes) == len(beeps) == 2
    assert all(abs(f - b) <= 0.040 for f, b in zip(flashes, beeps, strict=True)), (flashes, beeps)
    for path in (tmp_path / "web" / "web.mp4", tmp_path / "mkv" / "mkv.mkv"):
        with av.open(str(path)) as container:
            assert at(container.duration, 1 / av.time_base) == pytest.approx(2.7, abs=0.05)
            starts = [at(s.start_time, s.time_base) for s in container.streams if s.start_time is not None]
            assert all(abs(start) < 0.001 for start in starts), starts
        flashes, beeps = marks(path)
        assert [round(f, 1) for f in flashes] == [0.7, 1.7]  # the source from 1.3 s: marks at 2 and 3 s
        assert len(beeps) == len(flashes)
        assert all(abs(f - b) <= 0.040 for f, b in zip(flashes, beeps, strict=True)), (flashes, beeps)


# --- odd input ------------------------------------------------------------------------------------------------


async def test_an_audio_only_source_makes_its_audio_outputs_and_refuses_video_ones(
    corpus_dir: Path, tmp_path: Path
) -> None:
    results, _ = await make(
        [
            {"type": "video", "name": "web"},
            {"type": "hls", "name": "hls"},
            {"type": "audio", "name": "voice", "format": "m4a"},
        ],
        corpus.audio_only(corpus_dir),
        tmp_path,
    )
    assert results["voice"].status == "completed"
    for name in ("web", "hls"):
        assert results[name].status == "failed" and "the source has no video" in (results[name].error or "")


async def test_cover_art_and_timecode_are_ignored(corpus_dir: Path, tmp_path: Path) -> None:
    results, info = await make(
        [{"type": "video", "name": "web", "video": FAST}, {"type": "hls", "name": "hls", "video": FAST}],
        corpus.mov_with_timecode_and_cover(corpus_dir),
        tmp_path,
    )
    assert all(r.status == "completed" for r in results.values()), results
    assert [s[:2] for s in streams(tmp_path / "web" / "web.mp4")] == [("video", "h264"), ("audio", "aac")]
    with av.open(str(tmp_path / "web" / "web.mp4")) as container:
        assert container.streams.video[0].codec_context.width == 320  # the picture, not the 64x64 cover


# --- pure rules -----------------------------------------------------------------------------------------------


def audio_track(index: int, language: str, *, default: bool = False, title: str | None = None) -> AudioTrack:
    return AudioTrack(index, "aac", 2, "stereo", 48000, language, default=default, forced=False, title=title)


def test_rendition_names_are_unique_and_safe_in_a_quoted_string(tmp_path: Path) -> None:
    tracks = (
        audio_track(0, "und", default=True),
        audio_track(1, "und"),
        audio_track(2, "eng", title='Director\'s "cut" \\1\n'),
    )
    assert display_names(tracks) == ["und", "und 2", "Director's cut \\1"]
    master = tmp_path / "master.m3u8"
    master.write_text(
        "#EXTM3U\n"
        + "".join(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_audio",NAME="audio_{i}",DEFAULT={d},URI="a{i}/index.m3u8"\n'
            for i, d in enumerate(("YES", "NO", "NO"))
        )
        + '#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO="group_audio"\nv/index.m3u8\n'
    )
    finish_hls(TrackChoice(tracks, ()), tmp_path, "master.m3u8", "v")
    lines = master.read_text().splitlines()
    assert [line.split("NAME=")[1].split(",")[0] for line in lines[1:4]] == [
        '"und"',
        '"und 2"',
        '"Director\'s cut \\1"',
    ]
    assert all("AUTOSELECT=YES" in line for line in lines[1:4])


def test_webvtt_segments_follow_the_video_segments() -> None:
    text = "WEBVTT\n\n1\n00:00.500 --> 00:01.500 align:start\nFirst\nline two\n\nNOTE skipped\n\n01:00:02.000 --> 01:00:03.000\nLate\n"
    cues = parse_cues(text)
    assert [(c.start, c.end, c.settings, c.text) for c in cues] == [
        (0.5, 1.5, "align:start", ("First", "line two")),
        (3602.0, 3603.0, "", ("Late",)),
    ]
    segments = segment_cues(cues[:1], [1.0, 1.0, 0.5], 126000)
    assert [s.count("-->") for s in segments] == [1, 1, 0]  # a cue over a boundary is in both segments
    assert segments[0].startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n")
    assert "00:00:00.500 --> 00:00:01.500 align:start\nFirst\nline two\n" in segments[1]


def test_track_selections_are_validated() -> None:
    assert parse_outputs([{"type": "video", "name": "v", "audio_tracks": ["eng", "fra"]}])[0].audio_tracks == [  # type: ignore[union-attr]
        "eng",
        "fra",
    ]
    for bad, says in (
        ("en", '"all" or a non-empty list'),
        (["EN"], "three lowercase letters"),
        ([], '"all" or a non-empty list'),
        (["eng", "eng"], "list each language once"),
        (["e'; rm"], "three lowercase letters"),
    ):
        with pytest.raises(ValidationError, match=re.escape(says)):
            parse_outputs([{"type": "hls", "name": "h", "subtitle_tracks": bad}])


def test_the_frame_rate_counts_as_variable_only_when_guess_and_average_differ() -> None:
    # the picture's rule (picture.frame_rate_mode_of) is the one every builder reads
    assert frame_rate_mode_of(Fraction(60), Fraction(38)) == "variable"
    assert frame_rate_mode_of(Fraction(30000, 1001), Fraction(2997, 100)) == "constant"
    assert frame_rate_mode_of(None, Fraction(25)) is None
    assert frame_rate_mode_of(Fraction(50), Fraction(25)) == "constant"  # interlaced: the guess is the field rate
    assert language_code("ENG") == "eng" and language_code("en") == "und" and language_code("e\ng") == "und"
