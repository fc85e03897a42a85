"""Sources by http(s) URL (issue 25) against a real origin on 127.0.0.1 that misbehaves like real ones
(tests/origin_server.py): redirects, 503 once, a body cut short (resumed with Range, or restarted when
the file changed), oversized, stalled, HTML instead of video. Private addresses are allowed here
(SOURCE_URL_ALLOW_PRIVATE=true: the origin is on loopback); every other address class is checked with
a stubbed resolver, so no packet goes anywhere but loopback even if the code under test is wrong."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import subprocess
import time

import pytest

from mediaflow.media.errors import SourceError
from mediaflow.media.url_sources import NOT_MEDIA, download_url_source
from mediaflow.ssrf import IPAddress
from tests import media
from tests.apptools import make_settings, running_app, wait_for_final
from tests.origin_server import CHANGED, Origin


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    path = media.make_clip(tmp_path_factory.mktemp("url-sources"), "clip.mp4", width=160, height=120, seconds=1)
    return path.read_bytes()


@pytest.fixture
async def origin(clip):
    server = await Origin(clip).start()
    yield server
    await server.stop()


def settings_for(tmp_path, **overrides):
    values = {"SOURCE_URL_ALLOW_PRIVATE": True, "SOURCE_URL_TIMEOUT_S": 2, "STORAGE_RETRIES": 2} | overrides
    return make_settings(tmp_path, **values)


def loopback_only(names: dict[str, str]):
    """A resolver for the test: the names given map to their address, every other host is refused
    (a test resolving a real name would be a bug)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host in names:
            return [ipaddress.ip_address(names[host])]
        raise OSError(f"test resolver: unknown host {host!r}")

    return resolve


async def test_a_file_is_streamed_to_disk_with_progress(tmp_path, origin, clip):
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "source"
    await download_url_source(
        f"{origin.url}/clip.mp4?X-Amz-Signature=abc&X-Amz-Expires=60",
        dest,
        settings_for(tmp_path),
        lambda done, total: seen.append((done, total)),
    )
    assert dest.read_bytes() == clip
    assert seen[-1] == (len(clip), len(clip))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert origin.requests[0].headers["accept-encoding"] == "identity"


async def test_the_connection_goes_to_the_checked_address_with_the_names_host_header(tmp_path, origin, clip):
    # origin.test exists only in the stub: a second lookup by the HTTP client would fail.
    resolver = loopback_only({"origin.test": "127.0.0.1"})
    dest = tmp_path / "source"
    await download_url_source(
        f"http://origin.test:{origin.port}/clip.mp4", dest, settings_for(tmp_path), resolver=resolver
    )
    assert dest.read_bytes() == clip
    assert origin.requests[0].headers["host"] == f"origin.test:{origin.port}"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for the name origin.test only: the server's context, and a client
    context that trusts it."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=origin.test"]
        + ["-addext", "subjectAltName=DNS:origin.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


async def test_https_to_the_checked_address_still_verifies_the_host_name(tmp_path, clip, certificate):
    """Connected by address, TLS still sends the URL's name (SNI) and checks the certificate against it:
    origin.test passes; the same server reached as 127.0.0.1 (not in the certificate) fails at once."""
    server_tls, client_tls = certificate
    origin = await Origin(clip, tls=server_tls).start()
    try:
        resolver = loopback_only({"origin.test": "127.0.0.1"})
        dest = tmp_path / "source"
        url = f"https://origin.test:{origin.port}/clip.mp4"
        await download_url_source(url, dest, settings_for(tmp_path), resolver=resolver, verify=client_tls)
        assert dest.read_bytes() == clip
        with pytest.raises(SourceError, match="did not prove it is that host"):
            await download_url_source(
                f"{origin.url}/clip.mp4", dest, settings_for(tmp_path), resolver=resolver, verify=client_tls
            )
        assert len(origin.requests) == 1  # no request went out over the refused handshake
    finally:
        await origin.stop()


async def test_up_to_five_redirects_are_followed(tmp_path, origin, clip):
    dest = tmp_path / "source"
    await download_url_source(f"{origin.url}/redirect/5", dest, settings_for(tmp_path))
    assert dest.read_bytes() == clip
    with pytest.raises(SourceError, match="redirected more than 5 times"):
        await download_url_source(f"{origin.url}/redirect/6", dest, settings_for(tmp_path))
    assert not dest.exists()


async def test_a_redirect_to_a_metadata_address_is_refused_even_with_private_networks_allowed(tmp_path, origin):
    with pytest.raises(SourceError, match="169.254.169.254, a cloud metadata address"):
        await download_url_source(f"{origin.url}/to-metadata", tmp_path / "source", settings_for(tmp_path))
    # The same through a name: its address is checked before any connection to it.
    resolver = loopback_only({"127.0.0.1": "127.0.0.1", "metadata.test": "169.254.169.254"})
    with pytest.raises(SourceError, match="'metadata.test' resolves to a cloud metadata address"):
        await download_url_source(
            f"{origin.url}/to-name", tmp_path / "source", settings_for(tmp_path), resolver=resolver
        )


async def test_a_503_is_retried(tmp_path, origin, clip):
    dest = tmp_path / "source"
    await download_url_source(f"{origin.url}/flaky.mp4", dest, settings_for(tmp_path))
    assert dest.read_bytes() == clip
    assert len(origin.asked("/flaky.mp4")) == 2


async def test_a_429_waits_as_long_as_retry_after_says(tmp_path, origin, clip):
    dest = tmp_path / "source"
    started = time.monotonic()
    await download_url_source(f"{origin.url}/throttled.mp4", dest, settings_for(tmp_path))
    assert dest.read_bytes() == clip
    assert len(origin.asked("/throttled.mp4")) == 2 and time.monotonic() - started >= 1.0


async def test_a_redirect_to_another_scheme_is_refused(tmp_path, origin):
    with pytest.raises(SourceError, match=r"must start with http:// or https:// \(got 'ftp'\)"):
        await download_url_source(f"{origin.url}/to-ftp", tmp_path / "source", settings_for(tmp_path))


async def test_a_dropped_body_resumes_with_range_and_if_range(tmp_path, origin, clip):
    dest = tmp_path / "source"
    await download_url_source(f"{origin.url}/drop.mp4", dest, settings_for(tmp_path))
    assert dest.read_bytes() == clip
    first, second = origin.asked("/drop.mp4")
    assert "range" not in first.headers
    assert second.headers["range"] == f"bytes={len(clip) // 2}-"
    assert second.headers["if-range"] == '"clip-v1"'


async def test_a_file_that_changed_meanwhile_is_fetched_afresh_not_spliced(tmp_path, origin):
    dest = tmp_path / "source"
    await download_url_source(f"{origin.url}/changed.mp4", dest, settings_for(tmp_path))
    assert dest.read_bytes() == CHANGED
    assert origin.asked("/changed.mp4")[1].headers["if-range"] == '"clip-v1"'


async def test_without_etag_or_last_modified_a_dropped_body_restarts_from_zero(tmp_path, origin, clip):
    dest = tmp_path / "source"
    await download_url_source(f"{origin.url}/no-validator.mp4", dest, settings_for(tmp_path))
    assert dest.read_bytes() == clip
    assert "range" not in origin.asked("/no-validator.mp4")[1].headers


@pytest.mark.parametrize("path", ["/big.mp4", "/big-unsized.mp4"])
async def test_a_file_over_the_limit_is_refused(tmp_path, origin, path):
    dest = tmp_path / "source"
    settings = settings_for(tmp_path, SOURCE_URL_MAX_BYTES=1024 * 1024)
    with pytest.raises(SourceError, match=r"over this server's limit of 1048576 bytes \(SOURCE_URL_MAX_BYTES\)"):
        await download_url_source(f"{origin.url}{path}", dest, settings)
    assert not dest.exists()
    assert len(origin.asked(path)) == 1  # not retried: it will not get smaller


async def test_a_stalled_transfer_times_out_and_is_retried_then_fails(tmp_path, origin):
    settings = settings_for(tmp_path, SOURCE_URL_TIMEOUT_S=0.5, STORAGE_RETRIES=1)
    started = time.monotonic()
    with pytest.raises(
        SourceError, match=r"did not send any bytes within 0.5 s \(SOURCE_URL_TIMEOUT_S\).*tried 2 times"
    ):
        await download_url_source(f"{origin.url}/stall.mp4", tmp_path / "source", settings)
    assert time.monotonic() - started < 5
    assert len(origin.asked("/stall.mp4")) == 2


@pytest.mark.parametrize("path", ["/login", "/login-as-video"])
async def test_a_web_page_is_not_a_video(tmp_path, origin, path):
    with pytest.raises(SourceError, match=NOT_MEDIA):
        await download_url_source(f"{origin.url}{path}", tmp_path / "source", settings_for(tmp_path))


async def test_a_4xx_fails_at_once_with_the_status(tmp_path, origin):
    with pytest.raises(SourceError, match="answered HTTP 404 Not Found"):
        await download_url_source(f"{origin.url}/gone.mp4?sig=secret", tmp_path / "source", settings_for(tmp_path))
    assert len(origin.asked("/gone.mp4")) == 1


# --- through the API and an in-process worker ------------------------------------------------------


async def test_a_url_source_runs_as_a_job_and_shows_the_downloading_phase(tmp_path, origin, clip):
    settings = settings_for(tmp_path)
    async with running_app(settings, api_workers=1) as api:
        submitted = await api.post(
            "/process", json={"source": f"{origin.url}/slow.mp4?token=abc", "method_name": "extract_audio"}
        )
        assert submitted.status_code == 200, submitted.text
        job_id = submitted.json()["job_id"]
        phases, fetched = set(), set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = (await api.get(f"/status/{job_id}")).json()
            phases.add((status["phase"], status["progress"] > 0))
            if status["phase"] == "downloading":
                fetched.add((status["downloaded_bytes"], status["source_size_bytes"]))
            if status["status"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.1)
        assert status["status"] == "completed", status
        assert ("downloading", True) in phases, phases
        assert any(done and 0 < done < len(clip) and size == len(clip) for done, size in fetched), fetched
        assert status["output_path"].endswith("slow_extract_audio.mp3")

        outputs = await api.post(
            "/jobs",
            json={"source": f"{origin.url}/clip.mp4", "outputs": [{"name": "small", "type": "video", "format": "mp4"}]},
        )
        assert outputs.status_code == 201, outputs.text
        done = await wait_for_final(api, outputs.json()["job_id"], view="/jobs/{}")
        assert done["status"] == "completed", done


@pytest.mark.parametrize(
    "path, error",
    [("/login", NOT_MEDIA), ("/gone.mp4", "answered HTTP 404"), ("/big.mp4", "SOURCE_URL_MAX_BYTES")],
)
async def test_a_source_that_cannot_be_had_fails_the_job_with_a_clear_error(tmp_path, origin, path, error):
    settings = settings_for(tmp_path, SOURCE_URL_MAX_BYTES=1024 * 1024)
    async with running_app(settings, api_workers=1) as api:
        job = (await api.post("/process", json={"source": f"{origin.url}{path}", "method_name": "compress"})).json()
        done = await wait_for_final(api, job["job_id"])
    assert done["status"] == "failed" and error in done["error"], done
    assert "Traceback" not in done["error"] and "attempt" not in done["error"]


LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/clip.mp4",
    "http://127.0.0.2:8080/clip.mp4",
    "http://127.1/clip.mp4",
    "http://2130706433/clip.mp4",
    "http://0x7f000001/clip.mp4",
    "http://0x7f.0.0.1/clip.mp4",
    "http://017700000001/clip.mp4",
    "http://[::1]/clip.mp4",
    "http://[::ffff:127.0.0.1]/clip.mp4",
    "http://[::ffff:7f00:1]/clip.mp4",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/clip.mp4",
    "http://localhost/clip.mp4",
    "http://LOCALHOST./clip.mp4",
    "http://media.localhost/clip.mp4",
    "http://0/clip.mp4",
    "http://0.0.0.0/clip.mp4",
    "http://[::]/clip.mp4",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
async def test_loopback_in_every_spelling_is_refused_at_submission(tmp_path, url):
    async with running_app(make_settings(tmp_path)) as api:
        response = await api.post("/process", json={"source": url, "method_name": "compress"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "SOURCE_URL_ALLOW_PRIVATE" in detail and ("loopback" in detail or "unspecified" in detail), detail


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/clip.mp4", "unsupported source"),
        ("http://user:pw@example.com/clip.mp4", "must not contain a user name or password"),
        ("http://0177.0.0.1/clip.mp4", "not a valid URL"),
        ("http://10.1.2.3/clip.mp4", "10.1.2.3, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254, a private address (unique-local)"),
    ],
)
async def test_other_refusals_at_submission(tmp_path, url, message):
    async with running_app(make_settings(tmp_path)) as api:
        response = await api.post("/process", json={"source": url, "method_name": "compress"})
    assert response.status_code == 422 and message in response.json()["detail"], response.text


def test_the_cli_shows_the_bytes_fetched_while_downloading():
    from mediaflow.client.terminal import job_progress_text

    job = {"status": "processing", "progress": 4, "phase": "downloading"}
    line = job_progress_text(job | {"downloaded_bytes": 5_500_000, "source_size_bytes": 11_000_000})
    assert "fetching the source  5.2 MB of 10.5 MB" in line
    assert job_progress_text(job | {"downloaded_bytes": 5_500_000, "source_size_bytes": None}).endswith("5.2 MB")
    assert "MB" not in job_progress_text(job | {"phase": "encoding", "downloaded_bytes": 5_500_000})
