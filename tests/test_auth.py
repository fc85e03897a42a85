"""API keys: off by default; when configured, every endpoint but health needs a key, a key sees only
its own jobs (another key's job is a 404), and idempotency keys are per API key."""

from __future__ import annotations

import pytest

from auth import parse_api_keys
from tests.apptools import make_settings, running_app

ALICE = {"X-API-Key": "alice-key-123"}
BOB = {"Authorization": "Bearer bob-key-4567"}
PROTECTED = [
    ("get", "/process"), ("post", "/process"), ("post", "/upload"), ("get", "/status/{id}"),
    ("get", "/download/{id}"), ("get", "/jobs/{id}/log"), ("post", "/jobs/{id}/cancel"), ("post", "/jobs/{id}/retry"),
]


@pytest.fixture
async def api(tmp_path):
    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-123,bob:bob-key-4567")
    (tmp_path / "media" / "clip.mp4").write_bytes(b"x")
    async with running_app(settings) as client:
        response = await client.post("/process", json={"source": "clip.mp4", "method_name": "compress"}, headers=ALICE)
        assert response.status_code == 200, response.text
        client.alice_job = response.json()["job_id"]
        yield client


async def test_health_endpoints_are_open(api):
    for path in ("/", "/healthz", "/readyz", "/docs", "/openapi.json"):
        assert (await api.get(path)).status_code == 200, path


@pytest.mark.parametrize("method,path", PROTECTED)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong-key-000"}, {"Authorization": "Bearer "}, {"Authorization": "Basic YWxpY2U="}])
async def test_missing_or_wrong_key_is_401(api, method, path, headers):
    response = await api.request(method.upper(), path.format(id=api.alice_job), headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("method,path", [p for p in PROTECTED if "{id}" in p[1]])
async def test_another_keys_job_is_404(api, method, path):
    response = await api.request(method.upper(), path.format(id=api.alice_job), headers=BOB)
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


def test_key_configuration_is_validated():
    assert [key.owner for key in parse_api_keys("a:12345678, b:abcdefgh")] == ["a", "b"]
    assert parse_api_keys("bare-key-1234")[0].owner.startswith("key-")
    assert parse_api_keys("") == []
    with pytest.raises(ValueError, match="at least 8"):
        parse_api_keys("a:short")
