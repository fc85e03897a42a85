"""The `mediaflow` client commands end to end: the CLI run as a real subprocess against the real API
(uvicorn in a subprocess, one in-process worker, real ffmpeg on clips made here), plus unit tests of
the pieces that parse what a server sends (event streams, file names)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from mediaflow.client.api import Api
from mediaflow.client.follow import (
    EventStreamUnavailable,
    ServerSentEvent,
    follow_events,
    jobs_in_sse,
    parse_sse,
    poll_until_final,
)
from mediaflow.client.terminal import job_progress_text
from mediaflow.client.transfer import download_filename, filename_from_disposition
from tests import media
from tests.apptools import ApiServer, make_settings
from tests.helpers import cli
from tests.helpers.cli import assert_no_traceback, cli_env, mediaflow
from tests.servers.process import free_port

UNKNOWN_JOB = "00000000-0000-0000-0000-000000000000"
ALICE_KEY = "alice-secret-key"
BOB_KEY = "bob-secret-key-2"
UPLOAD_LIMIT = 1_000_000

server = cli.server  # the fixture: a real API with one in-process worker, for this module


# --- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("cli-clips")
    return {
        "clip": media.make_clip(directory, "clip.mp4", width=320, height=240, seconds=2),
        "text": media.text_as_mp4(directory, "notes.mp4"),
    }


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> ApiServer:
    """API keys on and no worker, so a job stays queued until the test cancels it: no race with a
    worker. Uploads are limited to 1 MB (the test clip is a few hundred KB)."""
    base = tmp_path_factory.mktemp("cli-keyed-server")
    settings = make_settings(base, API_KEYS=f"alice:{ALICE_KEY},bob:{BOB_KEY}", UPLOAD_MAX_BYTES=UPLOAD_LIMIT)
    with ApiServer(settings, base, api_workers=0) as api_server:
        yield api_server


@pytest.fixture
def workdir(tmp_path) -> Path:
    """The client's current directory: a fresh one, so outputs land where the test looks."""
    directory = tmp_path / "client"
    directory.mkdir()
    return directory


def assert_playable_video(path: Path, *, seconds: float) -> None:
    assert path.read_bytes()[4:8] == b"ftyp", f"{path} is not an MP4"
    with av.open(str(path)) as container:
        assert container.streams.video, f"{path} has no video stream"
        assert container.duration / 1_000_000 == pytest.approx(seconds, abs=0.5)


@pytest.fixture(scope="module")
def completed_job(server, clips, tmp_path_factory) -> dict:
    """`mediaflow submit clip.mp4 --method compress --wait -o out.mp4`, run once for the module."""
    cwd = tmp_path_factory.mktemp("cli-submit")
    shutil.copyfile(clips["clip"], cwd / "clip.mp4")
    result = mediaflow(server.url, cwd, "submit", "clip.mp4", "--method", "compress", "--wait", "-o", "out.mp4")
    lines = result.stdout.splitlines()
    return {"result": result, "cwd": cwd, "job_id": lines[0] if lines else None}


# --- submit --wait ---------------------------------------------------------------------------------


def test_submit_uploads_a_local_file_waits_and_downloads_the_output(completed_job):
    result, cwd, job_id = completed_job["result"], completed_job["cwd"], completed_job["job_id"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [job_id, "out.mp4"]  # the id first, for scripts; then the saved path
    assert_playable_video(cwd / "out.mp4", seconds=2)
    assert "uploaded clip.mp4 as upload://" in result.stderr
    assert "100%" in result.stderr and f"job {job_id} completed" in result.stderr
    assert sorted(p.name for p in cwd.iterdir()) == ["clip.mp4", "out.mp4"]  # no temporary file left behind


def test_submit_wait_on_a_failing_job_exits_1_with_the_reason(server, clips, workdir):
    shutil.copyfile(clips["text"], workdir / "notes.mp4")
    result = mediaflow(server.url, workdir, "submit", "notes.mp4", "--method", "compress", "--wait")
    assert result.returncode == 1, result.stderr
    job_id = result.stdout.split()[0]
    assert f"job {job_id} failed: " in result.stderr
    reason = result.stderr.split(f"job {job_id} failed: ", 1)[1].strip()
    assert len(reason) > 10, result.stderr  # the server's reason, not an empty "failed"
    assert_no_traceback(result)
    assert sorted(p.name for p in workdir.iterdir()) == ["notes.mp4"]  # nothing downloaded

    download = mediaflow(server.url, workdir, "download", job_id)
    assert download.returncode == 1 and f"job {job_id} failed: " in download.stderr


def test_submit_a_server_side_source_and_save_under_the_servers_file_name(server, clips, workdir):
    shutil.copyfile(clips["clip"], server.media_root / "server_side.mp4")
    # No such file where the client runs, so the string goes to the server as the source.
    result = mediaflow(server.url, workdir, "submit", "server_side.mp4", "--method", "extract_audio", "--wait")
    assert result.returncode == 0, result.stderr
    job_id, saved = result.stdout.splitlines()
    assert saved == "server_side_extract_audio.mp3"
    assert (workdir / saved).stat().st_size > 10_000
    status = json.loads(mediaflow(server.url, workdir, "status", job_id, "--json").stdout)
    assert status["source"] == "server_side.mp4"


def test_submit_passes_a_destination_to_the_server_which_answers_for_it(server, clips, workdir):
    shutil.copyfile(clips["clip"], server.media_root / "to_deliver.mp4")
    for how in (["--method", "compress"], ["--template", "web"]):
        result = mediaflow(
            server.url, workdir, "submit", "to_deliver.mp4", *how, "--destination", "s3://their-bucket/videos/"
        )
        # This server keeps files locally: it refuses the destination, in words the user can act on.
        assert result.returncode != 0 and result.stdout == "", result
        assert "destination needs S3 storage" in result.stderr, result.stderr


def test_progress_is_redrawn_in_place_on_a_terminal(server, clips, workdir):
    """On a TTY the progress line is rewritten with carriage returns instead of printing new lines."""
    shutil.copyfile(clips["clip"], workdir / "clip.mp4")
    controller, terminal = os.openpty()
    captured = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal side closed
                return
            if not chunk:
                return
            captured.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mediaflow",
            "submit",
            "clip.mp4",
            "--method",
            "black_and_white",
            "--wait",
            "-o",
            "bw.mp4",
        ],
        cwd=workdir,
        env=cli_env(server.url),
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    stdout, _ = process.communicate(timeout=60)
    reader.join(timeout=5)
    os.close(controller)
    screen = captured.decode(errors="replace")
    assert process.returncode == 0, screen
    assert "\r" in screen and "100%" in screen
    assert stdout.splitlines()[1] == "bw.mp4"


# --- status, list, download, logs ------------------------------------------------------------------


def test_status_shows_the_job_readably_and_as_json(server, completed_job, workdir):
    job_id = completed_job["job_id"]
    readable = mediaflow(server.url, workdir, "status", job_id)
    assert readable.returncode == 0, readable.stderr
    assert f"job        {job_id}" in readable.stdout
    assert "status     completed" in readable.stdout and "compress -> mp4" in readable.stdout

    as_json = mediaflow(server.url, workdir, "status", job_id, "--json")
    body = json.loads(as_json.stdout)
    assert body["job_id"] == job_id and body["status"] == "completed" and body["progress"] == 100


def test_list_as_a_table_and_as_json(server, completed_job, workdir):
    job_id = completed_job["job_id"]
    table = mediaflow(server.url, workdir, "list", "--limit", "100")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["JOB", "ID", "STATUS"]
    assert any(row.startswith(job_id) and "completed" in row for row in rows)

    completed = mediaflow(server.url, workdir, "list", "--json", "--status", "completed", "--limit", "100")
    body = json.loads(completed.stdout)
    assert job_id in [job["job_id"] for job in body["jobs"]]
    assert {job["status"] for job in body["jobs"]} == {"completed"}
    failed_only = json.loads(mediaflow(server.url, workdir, "list", "--json", "--status", "failed").stdout)
    assert job_id not in [job["job_id"] for job in failed_only["jobs"]]


def test_workers_lists_the_servers_worker_process(server, workdir):
    deadline = time.monotonic() + 10  # the in-process worker's first beat may still be on its way
    while (body := json.loads(mediaflow(server.url, workdir, "workers", "--json").stdout))["count"] != 1:
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert (body["workers"][0]["pid"], body["slots"]) == (server.process.pid, 1)
    text = mediaflow(server.url, workdir, "workers")
    assert text.returncode == 0, text.stderr
    assert f"pid {server.process.pid}" in text.stdout and "1 worker process(es) alive" in text.stdout


def test_download_streams_to_the_servers_file_name_without_replacing_files(server, completed_job, workdir):
    job_id = completed_job["job_id"]
    first = mediaflow(server.url, workdir, "download", job_id)
    second = mediaflow(server.url, workdir, "download", job_id)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.strip() == "clip_compress.mp4"
    assert second.stdout.strip() == "clip_compress-1.mp4"  # the first one is kept
    assert_playable_video(workdir / "clip_compress-1.mp4", seconds=2)

    (workdir / "into").mkdir()
    into = mediaflow(server.url, workdir, "download", job_id, "-o", "into")
    assert into.stdout.strip() == "into/clip_compress.mp4"
    assert sorted(p.name for p in workdir.iterdir()) == ["clip_compress-1.mp4", "clip_compress.mp4", "into"]


def test_logs_prints_the_ffmpeg_log(server, completed_job, workdir):
    result = mediaflow(server.url, workdir, "logs", completed_job["job_id"])
    assert result.returncode == 0, result.stderr
    assert "Input #0" in result.stdout and "libx264" in result.stdout  # ffmpeg's own report of the run


def test_follow_events_and_polling_both_reach_the_final_state(server, completed_job):
    """`submit --wait` follows the server's event stream (its first event is the current state) and
    polls /status where there is no stream: a 404 on the events path, as from an older server."""
    job_id = completed_job["job_id"]
    with Api(server.url, None) as api:
        seen: list[dict] = []
        final = follow_events(api, job_id, seen.append)
        assert final is not None and final["status"] == "completed" and seen == [final]
        assert poll_until_final(api, job_id, seen.append) == final  # the same state, the other way

        with pytest.raises(EventStreamUnavailable):
            follow_events(api, UNKNOWN_JOB, seen.append)


# --- errors and exit codes -------------------------------------------------------------------------


def test_unknown_job_exits_2_with_the_servers_message(server, workdir):
    for command in ("status", "download", "cancel", "retry", "logs", "delete"):
        result = mediaflow(server.url, workdir, command, UNKNOWN_JOB)
        assert result.returncode == 2, (command, result.stderr)
        assert f"no job with id '{UNKNOWN_JOB}'" in result.stderr
        assert_no_traceback(result)


def test_bad_input_exits_2(server, workdir):
    missing = mediaflow(server.url, workdir, "submit", "nowhere/missing.mp4", "--method", "compress")
    assert missing.returncode == 2 and "missing.mp4" in missing.stderr, missing.stderr

    bad_method = mediaflow(server.url, workdir, "submit", "upload://x/y.mp4", "--method", "explode")
    assert bad_method.returncode == 2 and "--method: " in bad_method.stderr and "compress" in bad_method.stderr

    usage = mediaflow(server.url, workdir, "submit", "clip.mp4")  # --method is required
    assert usage.returncode == 2 and "--method" in usage.stderr

    output_without_wait = mediaflow(server.url, workdir, "submit", "x.mp4", "--method", "compress", "-o", "y.mp4")
    assert output_without_wait.returncode == 2 and "add --wait" in output_without_wait.stderr

    not_an_id = mediaflow(server.url, workdir, "status", "../process")
    assert not_an_id.returncode == 2 and "is not a job id" in not_an_id.stderr
    for result in (missing, bad_method, usage, not_an_id):
        assert_no_traceback(result)


def stored_uploads(server: ApiServer) -> list[Path]:
    return sorted((server.media_root.parent / "storage" / "uploads").rglob("*"))


def test_submit_checks_method_and_format_before_uploading(server, clips, workdir):
    """GET /methods first: a wrong method or format is refused before a byte is sent, so nothing is
    uploaded for nothing (the server would refuse it only after the whole file arrived)."""
    shutil.copyfile(clips["clip"], workdir / "big.mp4")
    before = stored_uploads(server)
    wrong_method = mediaflow(server.url, workdir, "submit", "big.mp4", "--method", "sharpen")
    assert wrong_method.returncode == 2, wrong_method.stderr
    assert (
        "--method sharpen is not a method of this server; choose one of: compress, extract_audio" in wrong_method.stderr
    )
    wrong_format = mediaflow(server.url, workdir, "submit", "big.mp4", "--method", "extract_audio", "--format", "mp4")
    assert wrong_format.returncode == 2 and "--format mp4: extract_audio makes mp3" in wrong_format.stderr
    for result in (wrong_method, wrong_format):
        assert "uploaded" not in result.stderr and result.stdout == ""
        assert_no_traceback(result)
    assert stored_uploads(server) == before


def test_wait_follows_a_job_to_its_end_and_logs_says_why_there_is_no_log(server, clips, workdir):
    shutil.copyfile(clips["text"], workdir / "notes.mp4")
    failing = mediaflow(server.url, workdir, "submit", "notes.mp4", "--method", "compress").stdout.strip()
    waited = mediaflow(server.url, workdir, "wait", failing)
    assert waited.returncode == 1 and f"job {failing} failed: " in waited.stderr, waited.stderr
    logs = mediaflow(server.url, workdir, "logs", failing)
    assert logs.returncode == 1, logs.stderr
    assert f"job {failing} failed before ffmpeg ran, so there is no ffmpeg log; the reason: " in logs.stderr
    assert "no ffmpeg log yet" not in logs.stderr

    shutil.copyfile(clips["clip"], server.media_root / "to_wait_for.mp4")
    job_id = mediaflow(server.url, workdir, "submit", "to_wait_for.mp4", "--method", "extract_audio").stdout.strip()
    waited = mediaflow(server.url, workdir, "wait", job_id, "--download")
    assert waited.returncode == 0, waited.stderr
    assert f"job {job_id} completed" in waited.stderr and waited.stdout.strip() == "to_wait_for_extract_audio.mp3"
    assert (workdir / "to_wait_for_extract_audio.mp3").stat().st_size > 10_000
    assert_no_traceback(waited)


def test_progress_names_phases_as_the_dashboard_does():
    text = job_progress_text({"status": "processing", "progress": 4, "phase": "downloading"})
    assert "fetching the source" in text and "downloading" not in text
    assert "saving the result" in job_progress_text({"status": "processing", "progress": 97, "phase": "uploading"})
    assert "resampling" in job_progress_text({"status": "processing", "progress": 50, "phase": "resampling"})


def test_cancel_of_a_finished_job_exits_2(server, completed_job, workdir):
    result = mediaflow(server.url, workdir, "cancel", completed_job["job_id"])
    assert result.returncode == 2 and "completed" in result.stderr, result.stderr


def test_server_not_running_exits_3_with_a_readable_message(workdir):
    url = f"http://127.0.0.1:{free_port()}"
    result = mediaflow(url, workdir, "list")
    assert result.returncode == 3
    assert f"cannot connect to the MediaFlow server at {url}" in result.stderr
    assert "mediaflow serve" in result.stderr and "MEDIAFLOW_URL" in result.stderr
    assert_no_traceback(result)
    assert len(result.stderr.strip().splitlines()) == 1


# --- API keys, cancel and retry (a server without workers) -----------------------------------------


def test_missing_or_wrong_api_key_exits_2_with_a_hint(keyed_server, workdir):
    missing = mediaflow(keyed_server.url, workdir, "list")
    assert missing.returncode == 2
    assert "--api-key" in missing.stderr and "MEDIAFLOW_API_KEY" in missing.stderr
    wrong = mediaflow(keyed_server.url, workdir, "list", "--api-key", "not-alice-key")
    assert wrong.returncode == 2 and "not valid" in wrong.stderr
    assert_no_traceback(missing)


def test_cancel_and_retry_a_queued_job(keyed_server, clips, workdir):
    submitted = mediaflow(
        keyed_server.url, workdir, "submit", str(clips["clip"]), "--method", "resize", api_key=ALICE_KEY
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()

    assert "status     queued" in mediaflow(keyed_server.url, workdir, "status", job_id, api_key=ALICE_KEY).stdout
    canceled = mediaflow(keyed_server.url, workdir, "cancel", job_id, api_key=ALICE_KEY)
    assert (canceled.returncode, canceled.stdout.strip()) == (0, f"job {job_id} canceled")
    retried = mediaflow(keyed_server.url, workdir, "retry", "--api-key", ALICE_KEY, job_id)
    assert (retried.returncode, retried.stdout.strip()) == (0, f"job {job_id} queued again")
    running = mediaflow(keyed_server.url, workdir, "delete", job_id, api_key=ALICE_KEY)
    assert running.returncode == 2 and "cancel it first" in running.stderr
    cleanup = mediaflow(keyed_server.url, workdir, "cancel", job_id, api_key=ALICE_KEY)
    assert cleanup.returncode == 0
    removed = mediaflow(keyed_server.url, workdir, "delete", job_id, api_key=ALICE_KEY)
    assert (removed.returncode, removed.stdout.strip()) == (0, f"job {job_id} removed, with its output and log")
    assert mediaflow(keyed_server.url, workdir, "status", job_id, api_key=ALICE_KEY).returncode == 2


def test_a_queued_job_points_to_wait_for_its_download_and_log(keyed_server, clips, workdir):
    job_id = mediaflow(
        keyed_server.url, workdir, "submit", str(clips["clip"]), "--method", "compress", api_key=ALICE_KEY
    ).stdout.strip()
    download = mediaflow(keyed_server.url, workdir, "download", job_id, api_key=ALICE_KEY)
    assert download.returncode == 2 and f"`mediaflow wait {job_id} && mediaflow download {job_id}`" in download.stderr
    logs = mediaflow(keyed_server.url, workdir, "logs", job_id, api_key=ALICE_KEY)
    assert logs.returncode == 2 and f"is queued and has no ffmpeg log yet: `mediaflow wait {job_id}`" in logs.stderr
    assert mediaflow(keyed_server.url, workdir, "cancel", job_id, api_key=ALICE_KEY).returncode == 0


def test_submit_wait_exits_1_when_the_job_is_canceled(keyed_server, clips, workdir):
    waiting = subprocess.Popen(
        [sys.executable, "-m", "mediaflow", "submit", str(clips["clip"]), "--method", "compress", "--wait"],
        cwd=workdir,
        env=cli_env(keyed_server.url, ALICE_KEY),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job_id = waiting.stdout.readline().strip()  # printed before waiting starts
        assert job_id, waiting.stderr.read()
        time.sleep(0.3)  # let it start following the job
        assert mediaflow(keyed_server.url, workdir, "cancel", job_id, api_key=ALICE_KEY).returncode == 0
        _, stderr = waiting.communicate(timeout=15)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 1, stderr
    assert f"job {job_id} was canceled" in stderr


def test_idempotency_key_returns_the_same_job_without_uploading_again(keyed_server, clips, workdir):
    first = mediaflow(
        keyed_server.url,
        workdir,
        "submit",
        str(clips["clip"]),
        "--method",
        "compress",
        "--idempotency-key",
        "order-17",
        api_key=ALICE_KEY,
    )
    assert first.returncode == 0, first.stderr
    upload_source = first.stderr.split(" as ", 1)[1].split()[0]
    assert upload_source.startswith("upload://")

    again = mediaflow(
        keyed_server.url,
        workdir,
        "submit",
        upload_source,
        "--method",
        "compress",
        "--idempotency-key",
        "order-17",
        api_key=ALICE_KEY,
    )
    assert (again.returncode, again.stdout) == (0, first.stdout)  # the same job id

    # The file again: found by its key, not uploaded a second time (a retried script must not fail).
    repeated = mediaflow(
        keyed_server.url,
        workdir,
        "submit",
        str(clips["clip"]),
        "--method",
        "compress",
        "--idempotency-key",
        "order-17",
        api_key=ALICE_KEY,
    )
    assert (repeated.returncode, repeated.stdout) == (0, first.stdout), repeated.stderr
    assert "already made job" in repeated.stderr and "uploaded" not in repeated.stderr
    other = mediaflow(
        keyed_server.url,
        workdir,
        "submit",
        str(clips["clip"]),
        "--method",
        "resize",
        "--idempotency-key",
        "order-17",
        api_key=ALICE_KEY,
    )
    assert other.returncode == 2 and "was used for another request" in other.stderr, other.stderr
    # Keys are per API key: Bob's identical key is a different one.
    bobs = mediaflow(
        keyed_server.url,
        workdir,
        "submit",
        str(clips["clip"]),
        "--method",
        "compress",
        "--idempotency-key",
        "order-17",
        api_key=BOB_KEY,
    )
    assert bobs.returncode == 0 and bobs.stdout != first.stdout and "uploaded" in bobs.stderr


def test_upload_over_the_servers_limit_exits_2_with_the_limit(keyed_server, workdir):
    (workdir / "big.mp4").write_bytes(b"\0" * (UPLOAD_LIMIT * 2))
    result = mediaflow(keyed_server.url, workdir, "submit", "big.mp4", "--method", "compress", api_key=ALICE_KEY)
    assert result.returncode == 2, result.stderr
    assert f"upload is larger than the limit of {UPLOAD_LIMIT} bytes" in result.stderr
    assert result.stdout == ""  # no job


# --- parsing what the server sends -----------------------------------------------------------------


def test_parse_sse_follows_the_event_stream_rules():
    stream = (
        ": keep-alive comment\n"
        'id: 3\nevent: job\ndata: {"status": "queued"}\n\n'
        'id:4\nevent:job\ndata:{"status":\n'  # no space after the colon; data over two lines
        'data: "processing"}\n\n'
        "event: job\n\n"  # no data: not dispatched
        ": ping\n\n"
        "data: plain\r\n\r\n"  # CRLF, default event type, id carried over
        'id: 9\nevent: job\ndata: {"status": "cut"}\n'  # unterminated at the end: dropped
    )
    assert list(parse_sse(stream.splitlines(keepends=True))) == [
        ServerSentEvent(event="job", data='{"status": "queued"}', id="3"),
        ServerSentEvent(event="job", data='{"status":\n"processing"}', id="4"),
        ServerSentEvent(event="message", data="plain", id="4"),
    ]


def test_job_events_keeps_only_job_events_and_rejects_bad_data():
    lines = 'event: other\ndata: x\n\nevent: job\ndata: {"status": "completed"}\n\n'.splitlines()
    assert list(jobs_in_sse(lines)) == [{"status": "completed"}]
    with pytest.raises(ValueError):
        list(jobs_in_sse("event: job\ndata: [1, 2]\n\n".splitlines()))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("clip_compress.mp4", "clip_compress.mp4"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("/abs/path/out.mp3", "out.mp3"),
        ("..", "fallback.out"),
        ("../", "fallback.out"),
        (".bashrc", "bashrc"),
        ("a\x1b[2Jb\x00.mp4", "a[2Jb.mp4"),
        ("  ", "fallback.out"),
        (None, "fallback.out"),
        ("vidéo été.mp4", "vidéo été.mp4"),
        ("x" * 300 + ".mp4", "x" * 196 + ".mp4"),
    ],
)
def test_download_filename_keeps_only_a_plain_name(raw, expected):
    assert download_filename(raw, fallback="fallback.out") == expected


def test_filename_from_disposition_reads_both_forms():
    # The header exactly as the server writes it, with a non-ASCII name.
    assert (
        filename_from_disposition("attachment; filename=\"vid?o.mp4\"; filename*=UTF-8''vid%C3%A9o.mp4") == "vidéo.mp4"
    )
    assert filename_from_disposition('attachment; filename="out.mp4"') == "out.mp4"
    hostile = filename_from_disposition("attachment; filename*=UTF-8''..%2F..%2F.ssh%2Fauthorized_keys")
    assert download_filename(hostile, fallback="x") == "authorized_keys"
    assert filename_from_disposition(None) is None
    assert filename_from_disposition("attachment") is None
