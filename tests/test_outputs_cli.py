"""`mediaflow submit FILE --template NAME` / `--spec job.json` and `mediaflow download JOB --all`: the
CLI as a subprocess against the real API (uvicorn, one in-process worker)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import pytest

from mediaflow.client.api import CliError
from mediaflow.client.outputs import safe_relative_path
from tests import media
from tests.helpers import cli
from tests.helpers.cli import assert_no_traceback, mediaflow

server = cli.server  # the fixture: a real API with one in-process worker, for this module


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    directory = tmp_path / "client"
    directory.mkdir()
    shutil.copyfile(media.make_clip(tmp_path, "src.mp4", width=320, height=180, seconds=2), directory / "talk.mp4")
    return directory / "talk.mp4"


def test_submit_a_spec_wait_and_get_every_file(server, clip: Path) -> None:
    spec = {
        "outputs": [
            {
                "name": "stream",
                "type": "hls",
                "segment_seconds": 1,
                "video": {"preset": "ultrafast"},
                "renditions": [{"height": 180, "bitrate": "300k"}, {"height": 90, "bitrate": "120k"}],
            },
            {"name": "poster", "type": "thumbnails", "count": 2, "width": 160},
        ]
    }
    (clip.parent / "job.json").write_text(json.dumps(spec))
    result = mediaflow(server.url, clip.parent, "submit", "talk.mp4", "--spec", "job.json", "--wait", "-o", "out")
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr
    job_id, saved = result.stdout.split()
    assert saved == "out"
    files = sorted(
        p.relative_to(clip.parent / "out").as_posix() for p in (clip.parent / "out").rglob("*") if p.is_file()
    )
    assert (
        "stream/master.m3u8" in files and "poster/thumbnail_002.jpg" in files and "stream/90p/segment_00001.ts" in files
    )
    with av.open(str(clip.parent / "out/stream/master.m3u8")) as player:  # the ladder plays from disk
        assert sorted(s.codec_context.height for s in player.streams.video) == [90, 180]

    again = mediaflow(server.url, clip.parent, "download", job_id, "--all", "-o", "again")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (clip.parent / "again/poster").iterdir()) == [
        "thumbnail_001.jpg",
        "thumbnail_002.jpg",
    ]


def test_submit_a_template(server, clip: Path) -> None:
    result = mediaflow(server.url, clip.parent, "submit", "talk.mp4", "--template", "extract_audio", "--wait")
    assert result.returncode == 0, result.stderr
    job_id, saved = result.stdout.split()
    assert saved == job_id and (clip.parent / job_id / "extract_audio/extract_audio.mp3").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "talk.mp4"], "say what to make: --method NAME"),
        (["submit", "talk.mp4", "--method", "compress", "--template", "web"], "say what to make"),
        (["submit", "talk.mp4", "--template", "web", "--format", "mkv"], "--format goes with --method"),
        (["submit", "talk.mp4", "--template", "nope"], "unknown template 'nope'; choose one of: compress"),
        (["submit", "talk.mp4", "--spec", "missing.json"], "cannot read missing.json"),
    ],
)
def test_usage_errors(server, clip: Path, args: list[str], message: str) -> None:
    result = mediaflow(server.url, clip.parent, *args)
    assert_no_traceback(result)
    assert result.returncode == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "a//b", "a/\x1b[2J", "", None, "a\\b"])
def test_server_file_paths_must_stay_inside_the_folder(path) -> None:
    with pytest.raises(CliError, match="not a plain relative path"):
        safe_relative_path(path)
    assert safe_relative_path("stream/720p/index.m3u8") == Path("stream/720p/index.m3u8")
