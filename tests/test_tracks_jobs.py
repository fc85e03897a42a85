"""Real-world sources through POST /jobs on the embedded stack (SQLite, embedded queue, local storage, a
worker in the API process): the probed tracks in `source_media`, the notes on each output, HLS renditions
through the files endpoint, a VFR source chunked across tasks and joined frame-exact, an audio-only
source and an upload whose end never arrived."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import av
import pytest

from tests import corpus_tracks as corpus
from tests.apptools import make_settings, running_app, wait_for_final

FAST = {"preset": "ultrafast"}
SMALL_LADDER = [{"height": 90, "bitrate": "150k"}, {"height": 72, "bitrate": "100k"}]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("tracks-jobs")
    settings = make_settings(base, CHUNK_SECONDS=5)
    sources = Path(settings.LOCAL_SOURCE_ROOTS[0])
    (base / "corpus").mkdir()
    made = [
        corpus.two_languages(base / "corpus"),
        corpus.subtitled_mkv(base / "corpus"),
        corpus.audio_only(base / "corpus"),
        corpus.variable_frame_rate(base / "corpus"),
    ]
    for path in made:
        shutil.copy(path, sources / path.name)
    whole = corpus.plain_clip(base / "corpus")  # written moov last: cut short, its index is gone
    (sources / "cut_short.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    return settings


async def run_job(client, source: str, outputs: list) -> dict:
    answer = await client.post("/jobs", json={"source": source, "outputs": outputs})
    assert answer.status_code == 201, answer.text
    return await wait_for_final(client, answer.json()["job_id"], 120, view="/jobs/{}")


async def test_two_languages_through_mp4_mkv_hls_and_dash(settings, tmp_path: Path) -> None:
    outputs = [
        {"type": "video", "name": "web", "video": FAST},
        {"type": "video", "name": "mkv", "format": "mkv", "video": FAST},
        {"type": "hls", "name": "hls", "segment_seconds": 1, "video": FAST, "renditions": SMALL_LADDER},
        {"type": "dash", "name": "dash", "segment_seconds": 1, "video": FAST, "renditions": SMALL_LADDER},
    ]
    async with running_app(settings, api_workers=1) as client:
        job = await run_job(client, "two_languages.mp4", outputs)
        assert job["status"] == "completed", job
        tracks = job["source_media"]["audio_tracks"]
        assert [(t["language"], t["default"], t["channels"]) for t in tracks] == [("eng", True, 2), ("fra", False, 2)]
        assert job["source_media"]["subtitle_tracks"] == [] and not job["source_media"]["variable_frame_rate"]
        assert all("2 audio tracks kept (eng, fra)" in o["notes"] for o in job["outputs"]), job["outputs"]
        hls = next(o for o in job["outputs"] if o["name"] == "hls")
        assert [f["path"] for f in hls["files"]] == [
            "hls/72p/index.m3u8",
            "hls/90p/index.m3u8",
            "hls/audio_1_eng/index.m3u8",
            "hls/audio_2_fra/index.m3u8",
            "hls/master.m3u8",
        ]
        master = (await client.get(f"/jobs/{job['job_id']}/files/hls/master.m3u8")).text
        audio = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:TYPE=AUDIO")]
        assert [re.search(r'LANGUAGE="(\w+)"', line)[1] for line in audio] == ["eng", "fra"]  # type: ignore[index]
        assert ["DEFAULT=YES" in line for line in audio] == [True, False]
        web = tmp_path / "web.mp4"
        web.write_bytes((await client.get(f"/jobs/{job['job_id']}/files/web/web.mp4")).content)
        with av.open(str(web)) as container:
            assert [s.metadata.get("language") for s in container.streams.audio] == ["eng", "fra"]


async def test_subtitles_and_a_bitmap_track_through_a_job(settings) -> None:
    outputs = [
        {"type": "video", "name": "web", "video": FAST},
        {"type": "hls", "name": "hls", "segment_seconds": 1, "video": FAST, "renditions": SMALL_LADDER[:1]},
    ]
    async with running_app(settings, api_workers=1) as client:
        job = await run_job(client, "subtitled.mkv", outputs)
        assert job["status"] == "completed", job
        subtitles = job["source_media"]["subtitle_tracks"]
        assert [(s["codec"], s["language"], s["bitmap"]) for s in subtitles] == [
            ("subrip", "eng", False),
            ("subrip", "fra", False),
            ("dvd_subtitle", "deu", True),
        ]
        hls = next(o for o in job["outputs"] if o["name"] == "hls")
        assert hls["notes"][0].startswith("the deu subtitle track (dvd_subtitle) skipped")
        listed = [f["path"] for f in hls["files"]]
        assert "hls/subtitles_1_eng/index.m3u8" in listed and "hls/subtitles_2_fra.vtt" in listed
        assert not [p for p in listed if p.endswith(".ts") or "/segment_" in p]  # segments are counted
        # 3 s in 1 s segments: video 3, subtitles 3 + 3 (cut on the video's), audio 4 (the source's audio
        # runs 21 ms past its video, and the audio rendition keeps all of it)
        assert hls["segments"]["count"] == 3 + 3 + 3 + 4
        master = (await client.get(f"/jobs/{job['job_id']}/files/hls/master.m3u8")).text
        assert master.count("#EXT-X-MEDIA:TYPE=SUBTITLES") == 2 and 'SUBTITLES="subtitles"' in master


async def test_a_vfr_source_chunked_over_tasks_joins_frame_exact(settings, tmp_path: Path) -> None:
    outputs = [{"type": "video", "name": "main", "parallel": True, "video": FAST}]
    async with running_app(settings, api_workers=1) as client:
        job = await run_job(client, "vfr.mp4", outputs)
        assert job["status"] == "completed", job
        assert job["source_media"]["variable_frame_rate"] is True
        assert job["source_media"]["video"]["picture"]["frame_rate_mode"] == "variable"  # one rule, shown twice
        assert sum(1 for t in job["tasks"] if t["kind"] == "chunk") == 2
        notes = job["outputs"][0]["notes"]
        assert "variable frame rate kept: every frame at its own time" in notes, notes  # a chunked output's notes
        assert not [n for n in notes if "one piece" in n or "instead" in n], notes  # no fall-back encode
        main = tmp_path / "main.mp4"
        main.write_bytes((await client.get(f"/jobs/{job['job_id']}/files/main/main.mp4")).content)
        with av.open(str(main)) as container:
            assert sum(1 for packet in container.demux(video=0) if packet.size) == corpus.vfr_frame_count()


async def test_an_audio_only_source_and_an_upload_cut_short(settings) -> None:
    outputs = [{"type": "video", "name": "web"}, {"type": "audio", "name": "voice", "format": "m4a"}]
    async with running_app(settings, api_workers=1) as client:
        job = await run_job(client, "audio_only_tracks.m4a", outputs)
        assert job["status"] == "failed"
        web, voice = job["outputs"]
        assert web["status"] == "failed" and "the source has no video" in web["error"]
        assert voice["status"] == "completed"
        cut = await run_job(client, "cut_short.mp4", outputs)
        assert cut["status"] == "failed" and "the file is incomplete" in cut["error"], cut
        assert "Traceback" not in cut["error"]


async def test_a_multi_track_source_chunked_keeps_its_tracks(settings, tmp_path: Path) -> None:
    """The chunked path's one audio run carries every kept track and the subtitles; the join copies them in."""
    outputs = [{"type": "video", "name": "main", "parallel": True, "video": FAST}]
    async with running_app(settings, api_workers=1) as client:
        job = await run_job(client, "subtitled.mkv", outputs)
        assert job["status"] == "completed", job
        assert [t["kind"] for t in job["tasks"]].count("audio") == 1
        notes = job["outputs"][0]["notes"]
        assert "2 subtitle tracks kept (eng, fra)" in notes and not [n for n in notes if "one piece" in n], notes
        main = tmp_path / "main.mp4"
        main.write_bytes((await client.get(f"/jobs/{job['job_id']}/files/main/main.mp4")).content)
        with av.open(str(main)) as container:
            assert [(s.type, s.metadata.get("language")) for s in container.streams if s.type != "video"] == [
                ("audio", "eng"),
                ("subtitle", "eng"),
                ("subtitle", "fra"),
            ]
        languages = await run_job(client, "two_languages.mp4", outputs)
        assert languages["status"] == "completed", languages
        main.write_bytes((await client.get(f"/jobs/{languages['job_id']}/files/main/main.mp4")).content)
        with av.open(str(main)) as container:
            assert [s.metadata.get("language") for s in container.streams.audio] == ["eng", "fra"]
            assert [bool(s.disposition & av.stream.Disposition.default) for s in container.streams.audio] == [
                True,
                False,
            ]
