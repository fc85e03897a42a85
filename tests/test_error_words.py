"""Validation errors in the user's words (api/error_words.py) on POST /jobs, /process and /templates,
through the real app: the path as the user wrote it (no doubled union tag), "did you mean" for a near
miss of a field, type or value, the accepted names listed; the dashboard and the CLI show `field`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaflow.api.error_words import SchemaWalk, field_text
from tests.apptools import make_settings, running_app


def video(**fields: object) -> dict:
    return {"source": "a.mp4", "outputs": [{"name": "a", "type": "video", **fields}]}


CASES = [
    (
        "/jobs",
        {"source": "a.mp4", "outputs": [{"name": "a", "type": "gif"}]},
        "outputs[0]",
        'no type "gif" (did you mean "animation"?); the types: video, audio, hls, dash, thumbnails, storyboard, '
        "animation, waveform",
    ),
    (
        "/jobs",
        video(video={"heigth": 720}),
        "outputs[0].video.heigth",
        'unknown field "heigth" (did you mean "height"?); the fields here: bitrate, bufsize, codec, crf,',
    ),
    ("/jobs", video(format="avi"), "outputs[0].format", '"avi" is not accepted; accepted: mp4, mov, mkv, webm'),
    (
        "/jobs",
        video(quality=["vmaf", "psnrr"]),
        "outputs[0].quality[1]",
        '"psnrr" is not accepted (did you mean "psnr"?); accepted: vmaf, psnr, ssim',
    ),
    (
        "/jobs",
        {"source": "a.mp4", "outputs": [{"name": "a"}]},
        "outputs[0]",
        '"type" is missing; it is one of: animation, audio, dash, hls, storyboard, thumbnails, video, waveform',
    ),
    ("/jobs", {"source": "a.mp4", "ouputs": []}, "ouputs", 'unknown field "ouputs" (did you mean "outputs"?)'),
    (
        "/process",
        {"source": "a.mp4", "method_name": "compres"},
        "method_name",
        '"compres" is not accepted (did you mean "compress"?); accepted: compress, extract_audio, resize,',
    ),
    (
        "/process",
        {"source": "a.mp4", "method": "compress"},
        "method",
        'unknown field "method" (did you mean "method_name"?)',
    ),
    (
        "/templates",
        {"name": "t", "outputs": [{"name": "a", "type": "thumbnails", "cont": 3}]},
        "outputs[0].cont",
        'unknown field "cont" (did you mean "count"?); the fields here: count, format, height, name, offsets, type, width',
    ),
]


@pytest.mark.parametrize(("path", "body", "field", "message"), CASES)
async def test_validation_errors_in_the_users_words(tmp_path: Path, path: str, body: dict, field: str, message: str):
    async with running_app(make_settings(tmp_path)) as client:
        answer = await client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    errors = {error["field"]: error for error in answer.json()["detail"]}
    assert field in errors, errors
    assert errors[field]["msg"].startswith(message), errors[field]["msg"]
    written = [part for part in errors[field]["loc"] if part != "body"]
    assert field_text(written) == field  # loc is the same path, as a list: no union tag doubled in it


def test_the_walk_skips_the_union_tag_and_knows_the_fields_there():
    from mediaflow.api.routes.jobs import CreateJobRequest

    walk = SchemaWalk(CreateJobRequest.model_json_schema())
    written, parent, _ = walk.follow(["outputs", 0, "video", "video", "heigth"])
    assert written == ["outputs", 0, "video", "heigth"]
    assert "height" in parent["properties"] and "crf" in parent["properties"]


async def test_key_mistakes_are_named(tmp_path: Path):
    """A whole API_KEYS entry sent as the key, and a job another key (or no key) made: the answer says why."""
    async with running_app(make_settings(tmp_path, API_KEYS="alice:secret-1")) as client:
        entry = await client.get("/process", headers={"X-API-Key": "alice:secret-1"})
        assert entry.status_code == 401
        assert "send only the key after the colon" in entry.json()["detail"]
        wrong = await client.get("/process", headers={"X-API-Key": "nope"})
        assert wrong.json()["detail"] == "the API key is not valid"  # no hint where none applies
        unknown = await client.get("/status/0123abcd", headers={"X-API-Key": "secret-1"})
        assert unknown.status_code == 404
        assert "before API_KEYS was set belong to no key" in unknown.json()["detail"]
