"""Odd and hostile input gets a 4xx that says what is wrong, never a 500 (issue 12, item 6).

Each case was a crash path: `Path.expanduser` on `~nosuchuser`, `str.isdigit()` accepting "²" where
`int()` does not, python-multipart refusing a boundary over 256 characters, and FastAPI's default
422 handler failing to serialise the NaN or lone surrogate it echoes back."""

from __future__ import annotations

import pytest

from mediaflow.jobs import lifecycle
from tests.apptools import make_settings, running_app


@pytest.fixture
async def api(tmp_path):
    settings = make_settings(tmp_path)
    (tmp_path / "media" / "clip.mp4").write_bytes(b"not decoded by these tests")
    async with running_app(settings) as client:
        yield client


async def test_a_source_naming_an_unknown_users_home_is_a_422(api):
    response = await api.post("/process", json={"source": "~nosuchuser/x.mp4", "method_name": "compress"})
    assert response.status_code == 422, response.text
    assert "~nosuchuser/x.mp4" in response.json()["detail"]


async def test_a_superscript_digit_in_a_download_token_is_a_403(api):
    job_id = (await api.post("/process", json={"source": "clip.mp4", "method_name": "compress"})).json()["job_id"]
    for token in ("².x", "1²." + "0" * 64, "٣.x"):  # "٣": an Arabic-Indic digit, also isdigit() and int()-able
        response = await api.get(f"/download/{job_id}", params={"token": token})
        assert response.status_code == 403, (token, response.text)


async def test_a_superscript_digit_in_last_event_id_is_ignored(api):
    store = api.app.state.store
    job_id = (await api.post("/process", json={"source": "clip.mp4", "method_name": "compress"})).json()["job_id"]
    job = await lifecycle.claim(store, job_id, "w", 30, 3)
    await lifecycle.fail(store, job, "w", "test failure", None)
    # Header values are latin-1: the single byte 0xB2 is "²".
    response = await api.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": b"\xb2"})
    assert response.status_code == 200
    assert '"status":"failed"' in response.text, "an unusable Last-Event-ID means: send everything"


async def test_a_multipart_boundary_over_256_characters_is_a_422(api):
    boundary = "b" * 300
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        f"data\r\n--{boundary}--\r\n"
    ).encode()
    response = await api.post(
        "/upload", content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 422, response.text
    assert "boundary" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"source": NaN, "method_name": "compress"}',
        b'{"source": "clip.mp4", "method_name": Infinity}',
        b'{"source": "\\ud800", "method_name": "compress"}',
        b'{"source": "clip.mp4", "method_name": "\\udfff"}',
    ],
)
async def test_nan_and_lone_surrogates_in_a_json_body_are_a_422(api, body):
    response = await api.post("/process", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"], "the usual validation detail, with the offending input made printable"


async def test_a_422_does_not_echo_a_huge_field(api):
    response = await api.post("/process", json={"source": "clip.mp4", "method_name": "x" * 100_000})
    assert response.status_code == 422
    assert len(response.content) < 4_000, "the offending value is cut, not sent back in full"
    assert any(error["loc"] == ["body", "method_name"] for error in response.json()["detail"])
