"""Webhooks, end to end against a real HTTP receiver on 127.0.0.1: the real API with an in-process
worker encoding real clips, a standalone `python worker.py`, and the dispatcher on a real SQLite store.
Plus the pure parts: signature verification, the address check, retry classification."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio

from mediaflow.jobs import lifecycle
from mediaflow.jobs.events import EventType, JobEvent, JobEvents
from mediaflow.jobs.model import WEBHOOK_OUTBOX_FIELDS, Job, JobStatus, Method, utcnow
from mediaflow.store import open_store
from mediaflow.webhooks.callback_urls import CallbackUrlError, address_problem, check_callback_url
from mediaflow.webhooks.dispatcher import WebhookDispatcher
from mediaflow.webhooks.retries import MAX_BACKOFF_S, Verdict, backoff_delay, outcome_of_status, parse_retry_after
from mediaflow.webhooks.signing import sign, verify_signature
from tests.apptools import REPO, make_settings, running_app, start_worker
from tests.helpers import webhooks
from tests.helpers.webhooks import dispatcher_for, eventually, final_job
from tests.media import make_clip, text_as_mp4
from tests.servers.process import free_port
from tests.webhook_receiver import SECRET, Receiver, Reply


async def status_of(client: httpx.AsyncClient, job_id: str) -> dict:
    return (await client.get(f"/status/{job_id}")).json()


async def eventually_status(client, job_id: str, check: Callable[[dict], bool], what: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = await status_of(client, job_id)
        if check(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}; last status: {body}")


# --- signing ---------------------------------------------------------------------------------------


def test_signature_verifies_and_rejects_tampering():
    body = b'{"id":"e1","type":"job.completed"}'
    now = int(time.time())
    header = sign(SECRET, str(now), body)
    assert header.startswith("v1=") and len(header) == 3 + 64
    assert verify_signature(SECRET, str(now), body, header)
    assert not verify_signature(SECRET, str(now), body + b" ", header), "tampered body"
    assert not verify_signature("another-secret", str(now), body, header), "wrong secret"
    assert not verify_signature(SECRET, str(now + 1), body, header), "timestamp is signed too"
    assert not verify_signature(SECRET, "not a number", body, header)
    assert not verify_signature(SECRET, str(now), body, "v1=" + "0" * 64)
    assert not verify_signature(SECRET, str(now), body, "")
    # Replay window: an old (correctly signed) request is refused.
    old = str(now - 301)
    assert not verify_signature(SECRET, old, body, sign(SECRET, old, body), tolerance_s=300)
    assert verify_signature(SECRET, old, body, sign(SECRET, old, body), tolerance_s=400)
    # Secret rotation: several signatures in one header, one match is enough.
    assert verify_signature(SECRET, str(now), body, f"v1={'ab' * 32}, {header}")


def readme_verify_signature() -> Callable[..., bool]:
    """The verification snippet from docs/webhooks.md, run as it is printed there."""
    section = (REPO / "docs" / "webhooks.md").read_text()
    snippet = next(block for block in section.split("```python\n")[1:] if "def verify_signature" in block)
    namespace: dict = {}
    exec(snippet.split("```", 1)[0], namespace)
    return namespace["verify_signature"]


def test_readme_snippet_agrees_with_verify_signature():
    readme_verify = readme_verify_signature()
    body, now = b'{"id":"e2","type":"job.failed"}', str(int(time.time()))
    header = sign(SECRET, now, body)
    assert readme_verify(SECRET, now, body, header) and verify_signature(SECRET, now, body, header)
    assert not readme_verify(SECRET, now, body + b"x", header)
    assert not readme_verify("wrong", now, body, header)
    old = str(int(time.time()) - 600)
    assert not readme_verify(SECRET, old, body, sign(SECRET, old, body))


# --- the address check -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not publicly routable"),
        ("255.255.255.255", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),  # IPv4-mapped
        ("64:ff9b::a00:1", "private"),  # NAT64 to 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 tunnel to 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address, kind):
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None and kind in problem, problem


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address):
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://127.0.0.1:9/hook", "callback_url points to 127.0.0.1, a loopback address"),
        ("http://10.20.30.40/hook", "10.20.30.40, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://localhost:8000/hook", "host 'localhost' resolves to a loopback address"),
        ("http://a..b/hook", "is not a valid host name"),
        ("http://999.1.1.1/hook", "not a valid URL"),
        ("http://[::1]:8000/hook", "::1, a loopback address"),
        ("http://2130706433/hook", "resolves to a loopback address"),  # 127.0.0.1 as one number
        ("http://user:pw@example.com/hook", "must not contain a user name or password"),
        ("ftp://example.com/hook", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("/relative/path", "must start with http:// or https://"),
        ("http:///hook", "no host name"),
    ],
)
async def test_unsafe_callback_urls_are_refused(url, message):
    with pytest.raises(CallbackUrlError) as refused:
        await check_callback_url(url, allow_private=False, timeout=5)
    assert message in str(refused.value), str(refused.value)


async def test_callback_url_check_passes_public_and_allowed_private_addresses():
    assert await check_callback_url("https://93.184.215.14/hook", allow_private=False, timeout=5) == [
        ipaddress.ip_address("93.184.215.14")
    ]
    assert await check_callback_url("http://127.0.0.1:9/hook", allow_private=True, timeout=5)
    with pytest.raises(CallbackUrlError, match="credentials|user name"):
        await check_callback_url("http://u:p@127.0.0.1/", allow_private=True, timeout=5)


def test_webhook_url_setting_is_checked_at_start_up(tmp_path):
    with pytest.raises(ValueError, match="WEBHOOK_URL must start with http:// or https://"):
        make_settings(tmp_path, WEBHOOK_URL="hooks.example.com/mediaflow")
    assert make_settings(tmp_path, WEBHOOK_URL="", WEBHOOK_SECRET="").WEBHOOK_URL is None  # `KEY=` in .env: unset
    internal = make_settings(tmp_path, WEBHOOK_URL="http://ops:pw@10.0.0.8/hooks")  # the operator's own: allowed
    assert internal.WEBHOOK_URL == "http://ops:pw@10.0.0.8/hooks" and internal.WEBHOOK_SECRET is None


# --- retry policy ----------------------------------------------------------------------------------


def test_status_codes_and_backoff():
    assert [outcome_of_status(code, "").verdict for code in (200, 202, 204)] == [Verdict.DELIVERED] * 3
    assert [outcome_of_status(code, "").verdict for code in (408, 429, 500, 502, 503)] == [Verdict.RETRY] * 5
    assert [outcome_of_status(code, "").verdict for code in (301, 302, 400, 401, 404, 410)] == [Verdict.GIVE_UP] * 6
    assert "redirects are not followed" in outcome_of_status(302, "Found").description
    assert [backoff_delay(n, 1.0) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert backoff_delay(40, 1.0) == MAX_BACKOFF_S


# --- through the API with an in-process worker -----------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(tmp_path_factory):
    base = tmp_path_factory.mktemp("webhooks-api")
    settings = make_settings(
        base,
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_PRIVATE=True,
        WEBHOOK_BACKOFF_BASE_S=0.05,
        WEBHOOK_TIMEOUT_S=5,
        PROGRESS_WRITE_INTERVAL_S=0.05,
        WEBHOOK_SHUTDOWN_GRACE_S=0.5,  # the replay test's callback never answers
        FFMPEG_THREADS=1,
    )  # one thread: even a fast machine encodes long enough to pass milestones
    media = base / "media"
    make_clip(media, "short.mp4", width=320, height=240, seconds=2)
    make_clip(media, "longer.mp4", width=1280, height=720, seconds=4)  # encodes long enough for milestones
    text_as_mp4(media, "text.mp4")
    async with running_app(settings, api_workers=1) as client:
        client.media = media
        yield client


async def submit(client: httpx.AsyncClient, source: str, **extra) -> str:
    response = await client.post("/process", json={"source": source, "method_name": "compress", **extra})
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


async def test_completed_job_is_delivered_after_two_server_errors(api):
    with Receiver(500, 500) as receiver:
        job_id = await submit(api, str(api.media / "short.mp4"), callback_url=receiver.url())
        attempts = await eventually(
            lambda: len(receiver.of_type("job.completed")) >= 3 and receiver.of_type("job.completed"),
            "three attempts of job.completed",
        )
        status = await eventually_status(api, job_id, lambda s: s["webhook_attempts"] == 3, "3 attempts recorded")
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 3, "nothing more after the 200"

    first, _, last = attempts
    assert {a.headers["MediaFlow-Event-Id"] for a in attempts} == {first.event["id"]}, "one event id across retries"
    assert last.headers["content-type"] == "application/json"
    assert last.path == "/hook"
    assert all(a.signature_ok() and a.standard_ok() for a in attempts)
    readme_verify = readme_verify_signature()
    assert readme_verify(SECRET, last.headers["MediaFlow-Timestamp"], last.body, last.headers["MediaFlow-Signature"])
    assert not last.signature_ok("wrong-secret")
    assert not verify_signature(
        SECRET,
        last.headers["MediaFlow-Timestamp"],
        last.body.replace(b"completed", b"failed"),
        last.headers["MediaFlow-Signature"],
    )
    event = last.event
    assert event["type"] == "job.completed" and event["created_at"].endswith("Z")
    assert event["data"]["job_id"] == job_id and event["data"]["status"] == "completed"
    assert event["data"]["output_path"] and event["data"]["progress"] == 100
    assert status["status"] == "completed"
    assert status["webhook_last_result"] == "job.completed attempt 3: 200 OK"
    assert status["callback_url"] == receiver.url()


async def test_failed_job_delivers_job_failed(api):
    with Receiver() as receiver:
        job_id = await submit(api, str(api.media / "text.mp4"), callback_url=receiver.url("/failed"))
        [delivery] = await eventually(lambda: receiver.of_type("job.failed"), "job.failed delivered")
    assert delivery.signature_ok()
    data = delivery.event["data"]
    assert data["job_id"] == job_id and data["status"] == "failed" and data["error"]
    status = await eventually_status(api, job_id, lambda s: s["webhook_attempts"] == 1, "1 attempt recorded")
    assert status["webhook_last_result"] == "job.failed attempt 1: 200 OK"


async def test_progress_milestones_arrive_before_the_final_event(api):
    with Receiver() as receiver:
        job_id = await submit(api, str(api.media / "longer.mp4"), callback_url=receiver.url(), callback_progress=True)
        await eventually(lambda: receiver.of_type("job.completed"), "job.completed delivered", timeout=30)
    types = [r.event["type"] for r in receiver.received]
    assert types[-1] == "job.completed" and types.count("job.completed") == 1
    progress = [r.event for r in receiver.received if r.event["type"] == "job.progress"]
    assert progress, f"no milestone delivered: {types}"
    percents = [p["data"]["progress"] for p in progress]
    assert percents == sorted(percents) and all(0 < p < 100 for p in percents), percents
    assert len({r.event["id"] for r in receiver.received}) == len(receiver.received), "event ids are unique"
    assert all(r.signature_ok() for r in receiver.received)
    assert all(r.event["data"]["job_id"] == job_id for r in receiver.received)


async def test_cancel_through_the_api_delivers_job_canceled(api):
    with Receiver() as receiver:
        job_id = await submit(api, str(api.media / "longer.mp4"), callback_url=receiver.url())
        assert (await api.post(f"/jobs/{job_id}/cancel")).status_code == 200
        [delivery] = await eventually(lambda: receiver.of_type("job.canceled"), "job.canceled delivered")
        await asyncio.sleep(0.5)
        assert [r.event["type"] for r in receiver.received] == ["job.canceled"], "no completion after a cancel"
    assert delivery.event["data"]["status"] == "canceled" and delivery.signature_ok()


async def test_idempotent_replay_compares_the_callback(api):
    source = str(api.media / "short.mp4")
    body = {"source": source, "method_name": "compress", "callback_url": "http://127.0.0.1:9/a"}
    headers = {"Idempotency-Key": "webhook-replay"}
    first = await api.post("/process", json=body, headers=headers)
    again = await api.post("/process", json=body, headers=headers)
    assert first.status_code == again.status_code == 200 and first.json()["job_id"] == again.json()["job_id"]
    other = await api.post("/process", json={**body, "callback_url": "http://127.0.0.1:9/b"}, headers=headers)
    assert other.status_code == 409
    progress = await api.post("/process", json={**body, "callback_progress": True}, headers=headers)
    assert progress.status_code == 409
    await api.post(f"/jobs/{first.json()['job_id']}/cancel")


# --- SSRF at POST /process -------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def strict_api(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("webhooks-strict"))  # WEBHOOK_ALLOW_PRIVATE=false
    (settings.LOCAL_SOURCE_ROOTS[0] / "clip.mp4").write_bytes(b"not decoded by these tests")
    async with running_app(settings) as client:
        yield client


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1, a loopback address"),
        ("http://10.0.0.5/hook", "10.0.0.5, a private address"),
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254, a link-local address"),
        ("http://localhost/hook", "loopback"),
        ("http://[::1]/hook", "::1, a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "127.0.0.1"),
        ("http://user:pw@example.com/hook", "must not contain a user name or password"),
        ("gopher://example.com/", "must start with http:// or https://"),
    ],
)
async def test_unsafe_callback_url_is_a_422(strict_api, url, message):
    response = await strict_api.post(
        "/process", json={"source": "clip.mp4", "method_name": "compress", "callback_url": url}
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert message in detail, detail
    if "address" in detail:  # says how an operator can allow it
        assert "public addresses" in detail and "WEBHOOK_ALLOW_PRIVATE=true" in detail, detail
    assert (await strict_api.get("/process")).json()["count"] == 0, "no job was created"


async def test_overlong_callback_url_is_a_422(strict_api):
    response = await strict_api.post(
        "/process",
        json={"source": "clip.mp4", "method_name": "compress", "callback_url": "https://example.com/" + "a" * 2048},
    )
    assert response.status_code == 422


# --- the dispatcher on a real store ----------------------------------------------------------------

store = webhooks.store  # the fixture: one SQLite store


async def eventually_recorded(store, job_id: str, attempts: int = 1) -> Job:
    """The job once `attempts` delivery attempts are written on it."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        job = await store.get(job_id)
        if job.webhook_attempts >= attempts and job.webhook_last_result:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id}: {attempts} attempts not recorded: {job}")


async def test_delivery_time_check_refuses_an_address_that_became_private(store, tmp_path):
    """POST /process checked the URL; at delivery the check runs again (here: private not allowed)."""
    with Receiver() as receiver:
        dispatcher, events = dispatcher_for(store, tmp_path, WEBHOOK_ALLOW_PRIVATE=False)
        job = await final_job(store, receiver.url())
        events.emit(JobEvent(EventType.COMPLETED, job))
        recorded = await eventually_recorded(store, job.job_id)
        await dispatcher.aclose()
    assert receiver.received == []
    assert recorded.webhook_attempts == 1
    assert "refused" in recorded.webhook_last_result and "loopback" in recorded.webhook_last_result
    assert recorded.webhook_last_result.endswith("not retried")


async def test_a_4xx_is_not_retried_and_a_redirect_not_followed(store, tmp_path):
    with (
        Receiver(404) as rejecting,
        Receiver() as elsewhere,
        Receiver(Reply(302, headers={"Location": elsewhere.url()})) as redirecting,
    ):
        dispatcher, events = dispatcher_for(store, tmp_path)
        rejected, redirected = await final_job(store, rejecting.url()), await final_job(store, redirecting.url())
        events.emit(JobEvent(EventType.COMPLETED, rejected))
        events.emit(JobEvent(EventType.COMPLETED, redirected))
        rejected, redirected = (
            await eventually_recorded(store, rejected.job_id),
            await eventually_recorded(store, redirected.job_id),
        )
        await asyncio.sleep(0.3)
        await dispatcher.aclose()
    assert len(rejecting.received) == 1 and len(redirecting.received) == 1 and elsewhere.received == []
    assert (
        rejected.webhook_last_result == "job.completed attempt 1: 404 Not Found (the receiver refused it), not retried"
    )
    assert "redirects are not followed" in redirected.webhook_last_result


async def test_a_receivers_retry_after_is_honoured(store, tmp_path):
    with Receiver(Reply(503, headers={"Retry-After": "1"}), Reply(429, headers={"Retry-After": "1"})) as receiver:
        dispatcher, events = dispatcher_for(store, tmp_path)  # backoff base 0.05 s: Retry-After wins
        job = await final_job(store, receiver.url())
        events.emit(JobEvent(EventType.COMPLETED, job))
        recorded = await eventually_recorded(store, job.job_id, attempts=3)
        await dispatcher.aclose()
    times = [r.at for r in receiver.received]
    assert len(times) == 3 and all(later - earlier >= 1.0 for earlier, later in zip(times, times[1:], strict=False)), (
        times
    )
    assert recorded.webhook_last_result == "job.completed attempt 3: 200 OK"


def test_retry_after_values():
    now = 1_700_000_000.0
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == 20.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0  # in the past: at once
    assert [parse_retry_after(v) for v in (None, "", "soon", "-5", "1.5")] == [None] * 5


async def test_a_slow_receiver_times_out_and_is_retried(store, tmp_path):
    with Receiver(Reply(200, delay_s=1.5)) as receiver:
        dispatcher, events = dispatcher_for(store, tmp_path, WEBHOOK_TIMEOUT_S=0.5)
        job = await final_job(store, receiver.url(), JobStatus.FAILED)
        events.emit(JobEvent(EventType.FAILED, job))
        recorded = await eventually_recorded(store, job.job_id, attempts=2)
        await dispatcher.aclose()
    assert len(receiver.received) == 2
    assert recorded.webhook_last_result == "job.failed attempt 2: 200 OK"


async def test_host_name_is_kept_when_connecting_to_the_checked_address(store, tmp_path):
    """The request goes to the address that was checked, but Host stays the URL's host name; `localhost`
    may resolve to ::1 first, where nothing listens: the next checked address is tried."""
    with Receiver() as receiver:
        dispatcher, events = dispatcher_for(store, tmp_path)
        job = await final_job(store, f"http://localhost:{receiver.port}/by-name?token=abc")
        events.emit(JobEvent(EventType.COMPLETED, job))
        [delivery] = await eventually(lambda: receiver.received, "delivered to localhost")
        await dispatcher.aclose()
    assert delivery.headers["host"] == f"localhost:{receiver.port}"
    assert delivery.path == "/by-name?token=abc"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for the name `localhost` (only): the server's context, and a client
    context that trusts it."""
    if subprocess.run(["openssl", "version"], capture_output=True).returncode != 0:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


async def test_https_to_the_checked_address_still_verifies_the_host_name(store, tmp_path, certificate):
    """Connected by address, TLS still sends the URL's host name (SNI) and checks the certificate
    against it: `localhost` passes, the same server reached as 127.0.0.1 (not in the cert) does not."""
    server_tls, client_tls = certificate
    with Receiver(tls=server_tls) as receiver:
        settings = make_settings(tmp_path, WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_FOR_S=0)
        dispatcher = WebhookDispatcher(settings, store, verify=client_tls)
        by_name = await final_job(store, f"https://localhost:{receiver.port}/tls")
        by_address = await final_job(store, f"https://127.0.0.1:{receiver.port}/tls")
        dispatcher.on_event(JobEvent(EventType.COMPLETED, by_name))
        dispatcher.on_event(JobEvent(EventType.COMPLETED, by_address))
        by_name = await eventually_recorded(store, by_name.job_id)
        by_address = await eventually_recorded(store, by_address.job_id)
        await dispatcher.aclose()
    assert by_name.webhook_last_result == "job.completed attempt 1: 200 OK"
    assert "CERTIFICATE_VERIFY_FAILED" in by_address.webhook_last_result, by_address.webhook_last_result
    assert [r.path for r in receiver.received] == ["/tls"]


async def test_global_webhook_url_gets_every_final_event_too(store, tmp_path):
    with Receiver() as per_job, Receiver() as global_hook:
        dispatcher, events = dispatcher_for(store, tmp_path, WEBHOOK_URL=global_hook.url("/all"))
        with_callback, without = await final_job(store, per_job.url()), await final_job(store, None)
        events.emit(JobEvent(EventType.COMPLETED, with_callback))
        events.emit(JobEvent(EventType.COMPLETED, without))
        events.emit(JobEvent(EventType.STARTED, without))  # not a webhook event
        await eventually(lambda: len(global_hook.received) == 2 and per_job.received, "both targets delivered")
        recorded = await eventually_recorded(store, with_callback.job_id, attempts=2)
        await dispatcher.aclose()
    assert {r.event["data"]["job_id"] for r in global_hook.received} == {with_callback.job_id, without.job_id}
    assert per_job.received[0].headers["MediaFlow-Event-Id"] in {
        r.headers["MediaFlow-Event-Id"] for r in global_hook.received
    }
    assert recorded.webhook_attempts == 2, "both deliveries counted on the job"


async def test_shutdown_waits_a_bounded_time_and_notes_what_was_abandoned(store, tmp_path):
    with Receiver(503, 503, 503) as receiver:
        dispatcher, events = dispatcher_for(store, tmp_path, WEBHOOK_BACKOFF_BASE_S=30, WEBHOOK_SHUTDOWN_GRACE_S=0.3)
        job = await final_job(store, receiver.url())
        events.emit(JobEvent(EventType.COMPLETED, job))
        await eventually_recorded(store, job.job_id)
        started = time.monotonic()
        await dispatcher.aclose()
        took = time.monotonic() - started
    assert took < 3, f"aclose took {took:.1f} s"
    recorded = await store.get(job.job_id)
    assert recorded.webhook_attempts == 1 and len(receiver.received) == 1
    assert re.search(
        r"503 Service Unavailable, retrying in 3[0-3](\.\d+)? s", recorded.webhook_last_result
    )  # 30 s + jitter
    assert recorded.webhook_last_result.endswith("abandoned: the process delivering it shut down")


# --- a standalone worker process -------------------------------------------------------------------


async def test_standalone_worker_delivers_the_webhooks_of_its_jobs(tmp_path):
    settings = make_settings(tmp_path, WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_BACKOFF_BASE_S=0.05)
    make_clip(tmp_path / "media", "short.mp4", width=320, height=240, seconds=2)
    with Receiver() as receiver:
        async with running_app(settings, api_workers=0) as client:  # the API only queues the job
            job_id = await submit(client, "short.mp4", callback_url=receiver.url("/from-worker"))
            worker = start_worker(settings, tmp_path, "--burst")
            try:
                assert await asyncio.to_thread(worker.wait, 60) == 0
            finally:
                if worker.poll() is None:
                    worker.kill()
            status = await status_of(client, job_id)
    [delivery] = receiver.of_type("job.completed")  # delivered before the worker exited
    assert delivery.path == "/from-worker" and delivery.signature_ok()
    assert status["status"] == "completed" and status["webhook_attempts"] == 1


# --- the outbox: final events survive the process that saw them ------------------------------------


def outbox_of(job: Job) -> tuple:
    return tuple(getattr(job, name) for name in WEBHOOK_OUTBOX_FIELDS)


async def queued_job(store, callback_url: str | None = "http://127.0.0.1:9/hook", **fields) -> Job:
    job = Job(method_name=Method.COMPRESS, source="clip.mp4", output_format="mp4", callback_url=callback_url, **fields)
    await store.create(job)
    return job


async def test_final_transitions_write_the_outbox_in_the_same_update(store, tmp_path):
    """Every way a job becomes final writes its outbox entry in that very update (one version step),
    when the job has a webhook target; lifecycle learns that from the bus, never from settings."""
    dispatcher = WebhookDispatcher(make_settings(tmp_path, WEBHOOK_TIMEOUT_S=2), store)
    events = JobEvents()
    events.keep_outbox(dispatcher.outbox_entry)
    announced: list[JobEvent] = []
    events.subscribe(announced.append)

    job = await queued_job(store)
    claimed = await lifecycle.claim(store, job.job_id, "w", 30, 3, events=events)
    assert outbox_of(claimed) == (None, None, None), "only final events are kept"
    before = utcnow()
    done = await lifecycle.complete(store, claimed, "w", "out", "log", events=events)
    assert done.status is JobStatus.COMPLETED and done.version == claimed.version + 1
    assert done.webhook_event == "job.completed" and done.webhook_event_id
    # Due once the first attempt (at once, by this process) has had its window: 2 × WEBHOOK_TIMEOUT_S + 1.
    assert before + timedelta(seconds=5) <= done.webhook_due_at <= utcnow() + timedelta(seconds=5)
    assert announced[-1].job == done, "the event carries the entry: the dispatcher sends its event id"

    finals = {}
    failing = await lifecycle.claim(store, (await queued_job(store)).job_id, "w", 30, 3, events=events)
    finals["job.failed"] = await lifecycle.fail(store, failing, "w", "boom", events=events)
    finals["job.canceled"] = await lifecycle.cancel(store, await queued_job(store), events=events)
    finals["not queued"] = await lifecycle.fail_queued(store, await queued_job(store), "broker down", events=events)
    out_of_attempts = await queued_job(store, attempts=3)
    assert await lifecycle.claim(store, out_of_attempts.job_id, "w", 30, 3, events=events) is None
    finals["gave up at claim"] = await store.get(out_of_attempts.job_id)
    abandoned = await lifecycle.claim(store, (await queued_job(store)).job_id, "w", 30, 1, events=events)
    await lifecycle.requeue_expired(store, 1, now=utcnow() + timedelta(minutes=5), events=events)
    finals["gave up after expiry"] = await store.get(abandoned.job_id)
    for how, final in finals.items():
        assert final.webhook_event == f"job.{final.status.value}" and final.webhook_due_at, how
    event_ids = [final.webhook_event_id for final in (done, *finals.values())]
    assert len(set(event_ids)) == len(event_ids), "one id per event"

    retried = await lifecycle.retry(store, finals["job.canceled"].job_id, events=events)
    assert outbox_of(retried) == (None, None, None), "a retried job's old final event is obsolete"

    no_target = await lifecycle.cancel(store, await queued_job(store, callback_url=None), events=events)
    assert outbox_of(no_target) == (None, None, None), "no callback_url, no WEBHOOK_URL: nothing to deliver"
    assert outbox_of(await lifecycle.cancel(store, await queued_job(store))) == (None, None, None), "no bus"
    with_global = WebhookDispatcher(make_settings(tmp_path, WEBHOOK_URL="http://127.0.0.1:9/all"), store)
    events.keep_outbox(with_global.outbox_entry)
    global_only = await lifecycle.cancel(store, await queued_job(store, callback_url=None), events=events)
    assert global_only.webhook_event == "job.canceled", "WEBHOOK_URL gets every job's final events"
    await dispatcher.aclose()
    await with_global.aclose()


async def completed_with_outbox(store, events: JobEvents, callback_url: str) -> Job:
    job = await queued_job(store, callback_url)
    claimed = await lifecycle.claim(store, job.job_id, "w", 30, 3, events=events)
    return await lifecycle.complete(store, claimed, "w", "out.mp4", "out.log", events=events)


async def eventually_cleared(store, job_id: str) -> Job:
    async def cleared() -> Job | None:
        job = await store.get(job_id)
        return job if job.webhook_event_id is None else None

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if job := await cleared():
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbox of {job_id} not cleared: {await store.get(job_id)}")


async def test_a_final_event_outlives_its_process_and_is_delivered_by_another(store, tmp_path):
    """The receiver is down when the job completes; the process that saw the event stops without
    delivering it; another process's sweeper delivers it, with the same event id, once the receiver is up."""
    port = free_port()  # nothing listens yet: connection refused
    first, events = dispatcher_for(store, tmp_path, WEBHOOK_BACKOFF_BASE_S=1, WEBHOOK_SHUTDOWN_GRACE_S=0)
    done = await completed_with_outbox(store, events, f"http://127.0.0.1:{port}/hook")
    waiting = await eventually_recorded(store, done.job_id)
    assert "could not connect" in waiting.webhook_last_result and "retrying in 1" in waiting.webhook_last_result
    assert waiting.webhook_due_at > utcnow() + timedelta(seconds=4), "kept away from sweepers while it waits"
    await first.aclose()  # stops during the backoff, without delivering
    left = await store.get(done.job_id)
    assert left.webhook_event_id == done.webhook_event_id and "left in the outbox" in left.webhook_last_result
    assert left.webhook_due_at <= waiting.webhook_due_at - timedelta(seconds=4), "due at its next planned attempt"

    with Receiver(port=port) as receiver:
        second, _ = dispatcher_for(store, tmp_path, WEBHOOK_SWEEP_INTERVAL_S=0.1)
        [delivery] = await eventually(lambda: receiver.of_type("job.completed"), "delivered by the second process")
        final = await eventually_cleared(store, done.job_id)
        await asyncio.sleep(0.5)
        await second.aclose()
    assert len(receiver.received) == 1, "delivered once, then no more sweeps take it"
    assert delivery.headers["MediaFlow-Event-Id"] == delivery.event["id"] == done.webhook_event_id
    assert delivery.signature_ok() and delivery.event["data"]["status"] == "completed"
    assert final.webhook_last_result == "job.completed attempt 1 (resumed): 200 OK"
    assert final.webhook_attempts >= 2 and outbox_of(final) == (None, None, None)


async def test_two_sweepers_deliver_each_due_event_once(tmp_path):
    """Two processes (two store connections to one database) sweep the same due events at the same
    time: the conditional take gives each event to one of them."""
    settings = make_settings(tmp_path, WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_SWEEP_INTERVAL_S=0.05)
    stores = [await open_store(settings) for _ in range(2)]
    with Receiver() as receiver:
        jobs = [
            Job(
                method_name=Method.COMPRESS,
                source="clip.mp4",
                output_format="mp4",
                status=JobStatus.COMPLETED,
                callback_url=receiver.url(),
                completed_at=utcnow(),
                webhook_event="job.completed",
                webhook_event_id=f"event-{i}",
                webhook_due_at=utcnow() - timedelta(seconds=1),
            )
            for i in range(12)
        ]
        for job in jobs:
            await stores[0].create(job)
        sweepers = [WebhookDispatcher(settings, store) for store in stores]
        for dispatcher in sweepers:
            dispatcher.attach(JobEvents())
        await eventually(lambda: len(receiver.received) >= len(jobs), "every due event delivered")
        for job in jobs:
            await eventually_cleared(stores[0], job.job_id)
        await asyncio.sleep(0.3)  # more sweeps find nothing to take
        for dispatcher in sweepers:
            await dispatcher.aclose()
    for store in stores:
        await store.close()
    ids = [r.headers["MediaFlow-Event-Id"] for r in receiver.received]
    assert sorted(ids) == sorted(job.webhook_event_id for job in jobs), "each event exactly once"


async def test_an_event_older_than_the_retry_period_is_given_up_by_the_sweeper(store, tmp_path):
    dispatcher = WebhookDispatcher(make_settings(tmp_path, WEBHOOK_RETRY_FOR_S=60), store)
    job = Job(
        method_name=Method.COMPRESS,
        source="clip.mp4",
        output_format="mp4",
        status=JobStatus.FAILED,
        callback_url="http://127.0.0.1:9/hook",
        completed_at=utcnow() - timedelta(minutes=2),
        webhook_event="job.failed",
        webhook_event_id="old",
        webhook_due_at=utcnow() - timedelta(minutes=1),
    )
    await store.create(job)
    assert await dispatcher.sweeper.sweep() == []
    expired = await store.get(job.job_id)
    await dispatcher.aclose()
    assert outbox_of(expired) == (None, None, None) and expired.webhook_attempts == 0
    assert expired.webhook_last_result.startswith("job.failed not delivered: WEBHOOK_RETRY_FOR_S=60 s passed")


async def test_a_worker_killed_during_the_backoff_does_not_lose_the_final_event(tmp_path):
    """A real `python worker.py` completes a job while the receiver is down, and is SIGKILLed while it
    waits to retry. The API process's sweeper delivers the event, same id, once the receiver is up."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_PRIVATE=True,
        WEBHOOK_TIMEOUT_S=1,
        WEBHOOK_BACKOFF_BASE_S=3,
        WEBHOOK_SWEEP_INTERVAL_S=0.2,
    )
    make_clip(tmp_path / "media", "short.mp4", width=320, height=240, seconds=1)
    async with running_app(settings, api_workers=0) as client:
        job_id = await submit(client, "short.mp4", callback_url=f"http://127.0.0.1:{port}/hook")
        worker = start_worker(settings, tmp_path)
        try:
            waiting = await eventually_status(
                client, job_id, lambda s: s["webhook_attempts"] == 1, "the worker's first attempt refused"
            )
            worker.kill()  # SIGKILL during the 3 s backoff: its retry lived in its memory only
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert waiting["status"] == "completed" and "could not connect" in waiting["webhook_last_result"]
        store = client.app.state.store
        event_id = (await store.get(job_id)).webhook_event_id
        assert event_id is not None, "still pending in the outbox after the crash"
        with Receiver(port=port) as receiver:
            [delivery] = await eventually(lambda: receiver.of_type("job.completed"), "delivered by the API process")
            final = await eventually_cleared(store, job_id)
    assert delivery.headers["MediaFlow-Event-Id"] == event_id and delivery.signature_ok()
    assert delivery.event["data"]["job_id"] == job_id
    assert final.webhook_last_result == "job.completed attempt 1 (resumed): 200 OK"
