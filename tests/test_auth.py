"""API keys: off by default; when configured, every endpoint but health needs a key, a key sees only
its own jobs (another key's job is a 404), and idempotency keys are per API key."""

from __future__ import annotations

import pytest

from mediaflow.settings import parse_api_keys
from tests.apptools import make_settings, running_app

ALICE = {"X-API-Key": "alice-key-123"}
BOB = {"Authorization": "Bearer bob-key-4567"}
OPEN = {"/", "/healthz", "/readyz", "/metrics"}
SIGNED = {"/jobs/{job_id}/signed/{token}/{path}"}  # the token in the path stands in for the key (403 if bad)
PARAMS = {"path": "out/file.mp4", "name": "mine"}


def protected_endpoints() -> list[tuple[str, str]]:
    """Every operation in the real app's OpenAPI schema except the open ones, so a new endpoint is
    covered without editing a list."""
    from mediaflow.api.app import create_app
    from mediaflow.settings import Settings

    paths = create_app(Settings(_env_file=None)).openapi()["paths"]
    return sorted(
        (method, path.replace("{job_id}", "{id}"))
        for path, operations in paths.items()
        if path not in OPEN | SIGNED
        for method in operations
    )


PROTECTED = protected_endpoints()


@pytest.fixture
async def api(tmp_path):
    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-123,bob:bob-key-4567")
    (tmp_path / "media" / "clip.mp4").write_bytes(b"x")
    async with running_app(settings) as client:
        response = await client.post("/process", json={"source": "clip.mp4", "method_name": "compress"}, headers=ALICE)
        assert response.status_code == 200, response.text
        client.alice_job = response.json()["job_id"]
        yield client


def test_every_job_endpoint_is_covered():
    assert {("get", "/jobs/{id}/events"), ("get", "/download/{id}"), ("post", "/upload")} <= set(PROTECTED)


async def test_health_endpoints_are_open(api):
    for path in ("/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert (await api.get(path)).status_code == 200, path


@pytest.mark.parametrize("method,path", PROTECTED)
@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": "wrong-key-000"}, {"Authorization": "Bearer "}, {"Authorization": "Basic YWxpY2U="}]
)
async def test_missing_or_wrong_key_is_401(api, method, path, headers):
    response = await api.request(method.upper(), path.format(id=api.alice_job, **PARAMS), headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("method,path", [p for p in PROTECTED if "{id}" in p[1]])
async def test_another_keys_job_is_404(api, method, path):
    response = await api.request(method.upper(), path.format(id=api.alice_job, **PARAMS), headers=BOB)
    assert response.status_code == 404, response.text


async def test_each_key_lists_only_its_own_jobs(api):
    await api.post("/process", json={"source": "clip.mp4", "method_name": "resize"}, headers=BOB)
    alice = (await api.get("/process", headers=ALICE)).json()
    bob = (await api.get("/process", headers=BOB)).json()
    assert [job["job_id"] for job in alice["jobs"]] == [api.alice_job]
    assert bob["count"] == 1 and bob["jobs"][0]["job_id"] != api.alice_job
    assert (await api.get(f"/status/{api.alice_job}", headers=ALICE)).status_code == 200


async def test_idempotency_keys_are_per_api_key(api):
    body = {"source": "clip.mp4", "method_name": "compress"}
    first = await api.post("/process", json=body, headers={**ALICE, "Idempotency-Key": "same"})
    other = await api.post("/process", json=body, headers={**BOB, "Idempotency-Key": "same"})
    again = await api.post("/process", json=body, headers={**ALICE, "Idempotency-Key": "same"})
    assert first.json()["job_id"] == again.json()["job_id"] != other.json()["job_id"]
    for headers, job_id in ((ALICE, first.json()["job_id"]), (BOB, other.json()["job_id"])):
        found = (await api.get("/process", params={"idempotency_key": "same"}, headers=headers)).json()
        assert [job["job_id"] for job in found["jobs"]] == [job_id], "each key finds only its own job"


def test_key_configuration_is_validated():
    assert [key.owner for key in parse_api_keys("a:12345678, b:abcdefgh")] == ["a", "b"]
    assert parse_api_keys("bare-key-1234")[0].owner.startswith("key-")
    assert parse_api_keys("") == []
    with pytest.raises(ValueError, match="at least 8"):
        parse_api_keys("a:short")


# --- signed download links ------------------------------------------------------------------------


async def test_a_signed_link_downloads_without_a_key_and_only_that_job(api, tmp_path):
    from mediaflow.jobs import lifecycle

    store = api.app.state.store
    job_id = api.alice_job
    output = tmp_path / "storage" / "out.mp4"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(b"0123456789")
    claimed = await lifecycle.claim(store, job_id, "w", 30, 3)
    await lifecycle.complete(store, claimed, "w", str(output), str(output))

    link = await api.get(f"/jobs/{job_id}/download-url", headers=ALICE)
    assert link.status_code == 200
    url = link.json()["url"]
    assert url.startswith(f"/download/{job_id}?token=")
    assert (await api.get(url)).content == b"0123456789"  # no key header
    ranged = await api.get(url, headers={"Range": "bytes=2-4"})
    assert ranged.status_code == 206 and ranged.content == b"234"

    # Bob cannot get a link to Alice's job; the token opens only the job it was made for.
    assert (await api.get(f"/jobs/{job_id}/download-url", headers=BOB)).status_code == 404
    bob_job = (await api.post("/process", json={"source": "clip.mp4", "method_name": "resize"}, headers=BOB)).json()[
        "job_id"
    ]
    token = url.split("token=")[1]
    assert (await api.get(f"/download/{bob_job}?token={token}")).status_code == 403
    expires, _, signature = token.partition(".")
    for forged in (f"{int(expires) + 60}.{signature}", f"{expires}.{'0' * 64}", "garbage", f"{expires}."):
        response = await api.get(f"/download/{job_id}?token={forged}")
        assert response.status_code == 403 and "expired" in response.json()["detail"]


def test_a_link_expires(tmp_path):
    from mediaflow.api import download_links
    from mediaflow.jobs.model import Job, Method

    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-123", DOWNLOAD_URL_EXPIRES_S=60)
    job = Job(method_name=Method.COMPRESS, source="s", output_format="mp4", owner="alice")
    token, expires = download_links.make_token(settings, job, now=1_000_000)
    assert expires == 1_000_060
    assert download_links.token_is_valid(settings, job, token, now=1_000_059)
    assert not download_links.token_is_valid(settings, job, token, now=1_000_061)
    rotated = make_settings(tmp_path, API_KEYS="alice:a-new-key-456")
    assert not download_links.token_is_valid(rotated, job, token, now=1_000_000), "changing the keys revokes links"
