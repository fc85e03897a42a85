"""Saved templates on every job store backend (SQLite, MongoDB via SecantusDB, DynamoDB Local): the
same TemplateStore contract, per owner; and the /templates API on the embedded default."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mediaflow.store.templates import StoredTemplate
from tests.apptools import make_settings, running_app
from tests.helpers import stores

store = stores.store  # the fixture: each test runs once per backend

T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
OUTPUTS = json.dumps([{"type": "thumbnails", "name": "poster", "count": 1}])


def template(name: str, owner: str | None, outputs: str = OUTPUTS, at: datetime = T0) -> StoredTemplate:
    return StoredTemplate(
        name=name, owner=owner, description=f"{name} of {owner}", outputs=outputs, created_at=at, updated_at=at
    )


async def test_templates_per_owner(store) -> None:
    templates = store.templates
    assert await templates.get(None, "a") is None and await templates.list(None) == []
    assert await templates.put(template("b", None), create_only=True)
    assert await templates.put(template("a", None), create_only=True)
    assert await templates.put(template("a", "alice"), create_only=True)
    assert not await templates.put(template("a", None, outputs="[]"), create_only=True)  # taken
    assert [t.name for t in await templates.list(None)] == ["a", "b"]
    assert [(t.name, t.owner) for t in await templates.list("alice")] == [("a", "alice")]
    assert await templates.list("bob") == []
    got = await templates.get(None, "a")
    assert got == template("a", None)

    later = T0 + timedelta(hours=1)
    assert await templates.put(template("a", "alice", outputs="[]", at=later), create_only=False)  # replace
    replaced = await templates.get("alice", "a")
    assert (replaced.outputs, replaced.created_at, replaced.updated_at) == ("[]", T0, later)
    assert (await templates.get(None, "a")).outputs == OUTPUTS  # another owner's is untouched

    assert await templates.delete("alice", "a") and not await templates.delete("alice", "a")
    assert await templates.get("alice", "a") is None and [t.name for t in await templates.list(None)] == ["a", "b"]


async def test_templates_api(tmp_path) -> None:
    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-1,bob:bob-key-22")
    alice, bob = {"X-API-Key": "alice-key-1"}, {"X-API-Key": "bob-key-22"}
    outputs = [{"type": "thumbnails", "name": "poster", "count": 2, "width": 320}]
    async with running_app(settings) as client:
        listed = (await client.get("/templates", headers=alice)).json()["templates"]
        assert [t["name"] for t in listed] == [
            "compress",
            "extract_audio",
            "resize",
            "convert_format",
            "black_and_white",
            "web",
            "hls",
        ]
        assert all(t["builtin"] for t in listed)

        created = await client.post("/templates", json={"name": "cards", "outputs": outputs}, headers=alice)
        assert created.status_code == 201 and created.json()["outputs"][0]["count"] == 2
        assert (
            await client.post("/templates", json={"name": "cards", "outputs": outputs}, headers=alice)
        ).status_code == 409
        assert (await client.get("/templates/cards", headers=alice)).json()["builtin"] is False
        assert (await client.get("/templates/cards", headers=bob)).status_code == 404  # per API key
        assert [t["name"] for t in (await client.get("/templates", headers=alice)).json()["templates"]][-1] == "cards"

        outputs[0]["count"] = 3
        replaced = await client.put(
            "/templates/cards", json={"description": "three", "outputs": outputs}, headers=alice
        )
        assert replaced.status_code == 200 and replaced.json()["outputs"][0]["count"] == 3

        bad = await client.post(
            "/templates",
            json={
                "name": "x",
                "outputs": [{"type": "video", "name": "v", "format": "webm", "video": {"codec": "h264"}}],
            },
            headers=alice,
        )
        assert bad.status_code == 422 and "a webm file cannot hold h264 video" in bad.text
        for method in ("put", "delete"):
            answer = await client.request(
                method.upper(), "/templates/web", headers=alice, json={"outputs": outputs} if method == "put" else None
            )
            assert answer.status_code == 409 and "built-in" in answer.text

        # a job from a saved template, for its owner only
        (tmp_path / "media").mkdir(exist_ok=True)
        from tests import media

        media.make_clip(tmp_path / "media", "t.mp4", width=320, height=180, seconds=1)
        job = await client.post("/jobs", json={"source": "t.mp4", "template": "cards"}, headers=alice)
        assert job.status_code == 201
        detail = (await client.get(f"/jobs/{job.json()['job_id']}", headers=alice)).json()
        assert detail["template"] == "cards" and detail["outputs_spec"][0]["count"] == 3
        refused = await client.post("/jobs", json={"source": "t.mp4", "template": "cards"}, headers=bob)
        assert refused.status_code == 422 and "unknown template 'cards'" in refused.text

        assert (await client.delete("/templates/cards", headers=alice)).status_code == 204
        assert (await client.delete("/templates/cards", headers=alice)).status_code == 404


async def test_template_dimensions_past_the_server_limit(tmp_path) -> None:
    async with running_app(make_settings(tmp_path, MAX_INPUT_DIMENSION=1000)) as client:
        answer = await client.post(
            "/templates", json={"name": "big", "outputs": [{"type": "waveform", "name": "w", "width": 2000}]}
        )
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["msg"] == "output 'w': width 2000 is above this server's limit of 1000"
