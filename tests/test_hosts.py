"""DNS rebinding and cross-site requests (issue 12, item 8), against the real API under uvicorn on
127.0.0.1: a request for another host name is refused, and so is a browser's cross-origin POST, while
the API's own origin (the dashboard), curl-like clients and listed names keep working."""

from __future__ import annotations

import httpx
import pytest

from tests.apptools import ApiServer, make_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("hosts")
    settings = make_settings(base)
    (base / "media" / "clip.mp4").write_bytes(b"not decoded here")
    with ApiServer(settings, base) as api:
        yield api


def files():
    return {"file": ("clip.mp4", b"0123456789", "video/mp4")}


def test_a_rebound_host_name_is_refused(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1.evil.example"):
            response = client.get("/process", headers={"Host": host})
            assert response.status_code == 400, (host, response.text)
            assert "ALLOWED_HOSTS" in response.json()["detail"]
        for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
            assert client.get("/process", headers={"Host": host}).status_code == 200, host


def test_a_cross_origin_upload_is_refused_and_the_own_origin_is_not(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        refused = client.post("/upload", files=files(), headers={"Origin": "http://evil.example"})
        assert refused.status_code == 403, refused.text
        assert "cross-origin" in refused.json()["detail"]
        for origin in ("null", f"http://localhost:{server.port}.evil.example", f"http://127.0.0.1:{server.port + 1}"):
            assert client.post("/upload", files=files(), headers={"Origin": origin}).status_code == 403, origin
        job = client.post(
            "/process",
            headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
            content='{"source": "clip.mp4", "method_name": "compress"}',
        )
        assert job.status_code == 403
        assert client.get("/process").json()["count"] == 0, "nothing was queued"

        same = client.post("/upload", files=files(), headers={"Origin": server.url})
        assert same.status_code == 201, same.text
        assert client.post("/upload", files=files()).status_code == 201, "no Origin: not a browser, not checked"
        assert client.get("/process", headers={"Origin": "http://evil.example"}).status_code == 200, "reads pass"


def test_listed_hosts_and_origins(tmp_path):
    settings = make_settings(
        tmp_path, ALLOWED_HOSTS="media.example.com,.corp.example", ALLOWED_ORIGINS="https://app.example.com"
    )
    with ApiServer(settings, tmp_path) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        for host, status in (
            ("media.example.com", 200),
            ("x.corp.example", 200),
            ("corp.example", 200),
            ("localhost", 400),
            ("evilcorp.example", 400),
        ):
            assert client.get("/healthz", headers={"Host": host}).status_code == status, host
        upload = client.post(
            "/upload", files=files(), headers={"Host": "media.example.com", "Origin": "https://app.example.com"}
        )
        assert upload.status_code == 201, upload.text
