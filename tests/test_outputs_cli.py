"""`mediaflow submit FILE --template NAME` / `--spec job.json`, `mediaflow download JOB --all` or
`--file NAME`, and what status/list/download say about a job of many files: the CLI as a subprocess
against the real API (uvicorn, one in-process worker)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import av
import httpx
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
        (["submit", "talk.mp4", "--method", "compress", "--template", "web"], "--method and --template each say"),
        (["submit", "missing.mp4", "--method", "compress"], "missing.mp4: no such file on this machine, and the"),
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


def test_a_job_of_many_files_is_never_saved_as_one(server, clip: Path) -> None:
    spec = {
        "outputs": [
            {"name": "clip", "type": "animation", "duration": 1, "width": 64},
            {"name": "poster", "type": "thumbnails", "count": 2, "width": 64},
        ]
    }
    (clip.parent / "many.json").write_text(json.dumps(spec))
    submitted = mediaflow(server.url, clip.parent, "submit", "talk.mp4", "--spec", "many.json", "--wait", "-o", "all")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[0]

    # the API: 409 naming where the files are, never the first file under the job's name
    answer = httpx.get(f"{server.url}/download/{job_id}")
    assert answer.status_code == 409 and f"GET /jobs/{job_id}/files" in answer.json()["detail"], answer.text
    assert "clip/clip.gif" in answer.json()["detail"]

    # the CLI: a refusal with the way out, and nothing written (the issue: a GIF saved as x.mp4, exit 0)
    (clip.parent / "out").mkdir()
    refused = mediaflow(server.url, clip.parent, "download", job_id, "-o", "out/x.mp4")
    assert_no_traceback(refused)
    assert refused.returncode == 2 and "--all" in refused.stderr and "--file" in refused.stderr, refused.stderr
    assert not (clip.parent / "out/x.mp4").exists()

    # one file by its output's name; a file name of another type is refused, its own type is fine
    wrong = mediaflow(server.url, clip.parent, "download", job_id, "--file", "clip", "-o", "out/x.mp4")
    assert wrong.returncode == 2 and "use -o x.gif" in wrong.stderr, wrong.stderr
    right = mediaflow(server.url, clip.parent, "download", job_id, "--file", "clip", "-o", "out/x.gif")
    assert right.returncode == 0, right.stderr
    assert (clip.parent / "out/x.gif").read_bytes()[:6] == b"GIF89a"
    several = mediaflow(server.url, clip.parent, "download", job_id, "--file", "poster")
    assert several.returncode == 2 and "has 2 files" in several.stderr, several.stderr
    by_path = mediaflow(server.url, clip.parent, "download", job_id, "--file", "poster/thumbnail_002.jpg", "-o", "out")
    assert by_path.returncode == 0 and (clip.parent / "out/thumbnail_002.jpg").stat().st_size > 0, by_path.stderr

    # status and list say what the job makes, not "None -> None"
    status = mediaflow(server.url, clip.parent, "status", job_id)
    assert status.returncode == 0, status.stderr
    assert "None" not in status.stdout and "custom outputs" in status.stdout, status.stdout
    assert re.search(r"^  clip\s+animation\s+completed\s+clip/clip\.gif$", status.stdout, re.M), status.stdout
    listed = mediaflow(server.url, clip.parent, "list", "--limit", "3")
    row = next(line for line in listed.stdout.splitlines() if line.startswith(job_id))
    assert "custom outputs" in row and row.endswith("talk.mp4") and "None" not in row, listed.stdout


def test_a_file_the_server_can_read_is_not_uploaded(server) -> None:
    """The server is on this machine and reads its media folder: the file is used where it is."""
    media.make_clip(server.media_root, "here.mp4", width=160, height=90, seconds=1)
    result = mediaflow(server.url, server.media_root, "submit", "here.mp4", "--template", "web")
    assert result.returncode == 0, result.stderr
    assert "where it is (not uploaded)" in result.stderr and "uploaded here.mp4 as" not in result.stderr
    job = httpx.get(f"{server.url}/status/{result.stdout.strip()}").json()
    assert job["source"] == str((server.media_root / "here.mp4").resolve()) and job["template"] == "web"


def test_the_default_server_is_named_when_used(monkeypatch) -> None:
    """A submit to whatever answers on the default port says where it went (the port may be another's)."""
    import argparse

    from mediaflow.client.session import uses_default_server

    monkeypatch.delenv("MEDIAFLOW_URL", raising=False)
    assert uses_default_server(argparse.Namespace(server=None))
    assert not uses_default_server(argparse.Namespace(server="http://127.0.0.1:9"))
    monkeypatch.setenv("MEDIAFLOW_URL", "http://127.0.0.1:9")
    assert not uses_default_server(argparse.Namespace(server=None))
