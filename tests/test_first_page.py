"""A newcomer's first requests: `/` answers a browser with the dashboard and programs with the seed's
JSON, the README's first jobs are accepted as printed, `mediaflow serve` says where the dashboard is,
each request is logged once, HEAD works on downloads (and every other GET endpoint)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import httpx

from tests import media
from tests.apptools import REPO, ApiServer, make_settings, running_app, settings_env, wait_for_final
from tests.servers.process import free_port

CHROMIUM_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_root_sends_browsers_to_the_dashboard_and_keeps_json_for_programs(tmp_path):
    async with running_app(make_settings(tmp_path)) as api:
        for accept in ("*/*", "application/json", None, "application/json, text/html;q=0.5", "text/*", "text/html;q=0"):
            answer = await api.get("/", headers={"Accept": accept} if accept else {})
            assert answer.status_code == 200, accept
            assert answer.content == b'{"status":"ok"}', accept  # exactly the seed's body
            assert answer.headers["content-type"] == "application/json"
            assert answer.headers["vary"] == "Accept"
        for accept in (CHROMIUM_ACCEPT, FIREFOX_ACCEPT, "text/html"):
            answer = await api.get("/", headers={"Accept": accept})
            assert answer.status_code == 307 and answer.headers["location"] == "ui/", accept
            assert answer.headers["vary"] == "Accept"
            dashboard = await api.get("/ui/", headers={"Accept": accept})  # where "ui/" resolves from /
            assert dashboard.status_code == 200 and "<title>MediaFlow</title>" in dashboard.text


def readme_request_bodies() -> list[tuple[str, dict]]:
    """(endpoint, JSON body) of every `curl -X POST … -d '{…}'` in the README's "Try it"."""
    first_job = (REPO / "README.md").read_text().split("## Try it", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"curl -s -X POST http://127\.0\.0\.1:8000(/\w+).*?-d '(\{.*?\})'", first_job, re.DOTALL)
    return [(endpoint, json.loads(body)) for endpoint, body in found]


async def test_the_readme_first_jobs_are_accepted_as_printed(tmp_path):
    bodies = readme_request_bodies()
    assert sorted({endpoint for endpoint, _ in bodies}) == ["/jobs", "/process"], bodies
    settings = make_settings(tmp_path)
    clip = media.make_clip(tmp_path / "media", "sample.mp4", width=160, height=120, seconds=1)
    async with running_app(settings) as api:
        uploaded = (await api.post("/upload", files={"file": ("sample.mp4", clip.read_bytes())})).json()
        for endpoint, body in bodies:
            # The README's clip sits in ./media, its upload id is made up: this server's equivalents.
            source = uploaded["source"] if body["source"].startswith("upload://") else "sample.mp4"
            answer = await api.post(endpoint, json={**body, "source": source})
            assert answer.status_code in (200, 201), (endpoint, body, answer.text)
            assert answer.json()["status"] == "queued"


async def test_head_on_a_download_gives_its_headers_without_a_body(tmp_path):
    settings = make_settings(tmp_path)
    media.make_clip(tmp_path / "media", "clip.mp4", width=160, height=120, seconds=1)
    async with running_app(settings, api_workers=1) as api:
        job_id = (await api.post("/process", json={"source": "clip.mp4", "method_name": "extract_audio"})).json()[
            "job_id"
        ]
        assert (await api.head(f"/download/{job_id}")).status_code in (200, 409)  # not 405, whatever the state
        await wait_for_final(api, job_id)
        full = await api.get(f"/download/{job_id}")
        head = await api.head(f"/download/{job_id}")
        assert head.status_code == 200 and head.content == b""
        for header in ("content-length", "content-type", "content-disposition", "accept-ranges"):
            assert head.headers[header] == full.headers[header], header
        assert int(head.headers["content-length"]) == len(full.content) > 0
        ranged = await api.head(f"/download/{job_id}", headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 206 and ranged.headers["content-length"] == "10" and ranged.content == b""
        assert (await api.head("/download/no-such-job")).status_code == 404
        for path in ("/", "/healthz", f"/status/{job_id}", "/ui/", "/docs"):
            answer = await api.head(path)
            assert answer.status_code == 200 and answer.content == b"", path
        assert (await api.get(f"/status/{job_id}")).json()["status"] == "completed"  # GET still has its body


def request_lines(log: str, path: str) -> list[str]:
    """Lines of a server log that mention a request for `path` (ours and uvicorn's access format)."""
    return [line for line in log.splitlines() if f'"route": "{path}"' in line or f"{path} HTTP/1.1" in line]


def test_mediaflow_serve_prints_the_dashboard_url_and_logs_each_request_once(tmp_path):
    settings = make_settings(tmp_path, LOG_LEVEL="INFO")
    port = free_port()
    # PYTHONPATH: this checkout's package, whatever the installed entry point points at
    env = settings_env(settings) | {"LOG_FORMAT": "json", "API_WORKERS": "0", "PYTHONPATH": str(REPO)}
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mediaflow", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "Dashboard:" not in log_path.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert f"Dashboard: http://127.0.0.1:{port}/ui/\n" in log_path.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    lines = request_lines(log_path.read_text(), "/healthz")
    assert len(lines) == 1 and json.loads(lines[0])["event"] == "http.request", lines


def test_uvicorn_main_app_logs_each_request_once(tmp_path):
    with ApiServer(make_settings(tmp_path, LOG_LEVEL="INFO"), tmp_path) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    lines = request_lines(server.log_path.read_text(), "/healthz")
    assert len(lines) == 1 and json.loads(lines[0])["event"] == "http.request", lines
