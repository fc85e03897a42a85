"""Measured quality through `POST /jobs` on the embedded default: VMAF/PSNR/SSIM reported per video
output with a per-frame CSV among its files, `video.target_vmaf` searching the CRF and reporting the
VMAF of the full output, and the 422s for combinations that cannot work."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests import media
from tests.apptools import make_settings, running_app, wait_for_final


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("outputs-quality")
    settings = make_settings(base)
    roots = Path(settings.LOCAL_SOURCE_ROOTS[0])
    media.detailed_clip(roots, "noisy.mp4", width=320, height=180, seconds=2, audio=True)
    return settings


async def test_a_degraded_encode_scores_lower_than_a_near_lossless_one(settings) -> None:
    metrics = ["vmaf", "psnr", "ssim"]
    spec = [
        {"name": "fine", "type": "video", "video": {"preset": "ultrafast", "crf": 10}, "quality": metrics},
        {
            "name": "rough",
            "type": "video",
            "video": {"preset": "ultrafast", "crf": 45, "height": 90},
            "audio": False,
            "quality": metrics,
            "clip": {"start": 0.5, "end": 1.5},
        },
        {"name": "poster", "type": "thumbnails", "count": 1},
    ]
    async with running_app(settings, api_workers=1) as client:
        answer = await client.post("/jobs", json={"source": "noisy.mp4", "outputs": spec})
        assert answer.status_code == 201, answer.text
        await wait_for_final(client, answer.json()["job_id"], timeout=120)
        job = (await client.get(f"/jobs/{answer.json()['job_id']}")).json()
        assert job["status"] == "completed", job
        outputs = {o["name"]: o for o in job["outputs"]}
        fine, rough = outputs["fine"]["quality"], outputs["rough"]["quality"]
        print(f"\nnear-lossless (crf 10): {fine}\ndegraded (crf 45, 90p): {rough}")
        assert set(fine) == set(rough) == set(metrics)
        assert fine["vmaf"]["mean"] > 90 and rough["vmaf"]["mean"] < fine["vmaf"]["mean"] - 20, (fine, rough)
        assert rough["psnr"]["mean"] < fine["psnr"]["mean"] and rough["ssim"]["mean"] < fine["ssim"]["mean"]
        for pooled in (fine["vmaf"], rough["vmaf"]):
            assert pooled["min"] <= pooled["p5"] <= 100 and pooled["min"] <= pooled["mean"] <= 100
        assert outputs["poster"]["quality"] is None and outputs["fine"]["crf_search"] is None

        # the per-frame scores are a file of the output: one row per frame compared (the clip: 1 s at 30 fps)
        files = {f["path"]: f for f in outputs["rough"]["files"]}
        assert list(files) == ["rough/rough.mp4", "rough/rough.quality.csv"]
        got = await client.get(files["rough/rough.quality.csv"]["url"])
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(got.text)))
        assert len(rows) == 30 and list(rows[0]) == ["frame", *metrics]
        mean = sum(float(r["vmaf"]) for r in rows) / len(rows)
        assert mean == pytest.approx(rough["vmaf"]["mean"], abs=0.01)


async def test_target_vmaf_chooses_the_crf_and_reports_the_full_outputs_vmaf(settings) -> None:
    spec = [
        {
            "name": "aimed",
            "type": "video",
            "audio": False,
            "video": {"preset": "ultrafast", "target_vmaf": 93, "max_probes": 4},
        }
    ]
    async with running_app(settings, api_workers=1) as client:
        answer = await client.post("/jobs", json={"source": "noisy.mp4", "outputs": spec})
        assert answer.status_code == 201, answer.text
        await wait_for_final(client, answer.json()["job_id"], timeout=120)
        job = (await client.get(f"/jobs/{answer.json()['job_id']}")).json()
        assert job["status"] == "completed", job
        output = job["outputs"][0]
        search = output["crf_search"]
        print(f"\ntarget 93 through the API: {search}")
        assert search["target_vmaf"] == 93 and 1 <= len(search["probes"]) <= 4
        assert search["crf"] in {p["crf"] for p in search["probes"]}
        assert search["vmaf"] == output["quality"]["vmaf"]["mean"]
        assert abs(search["vmaf"] - 93) <= 1.5, search
        assert any("CRF" in note for note in output["notes"])
        assert [f["path"] for f in output["files"]] == ["aimed/aimed.mp4", "aimed/aimed.quality.csv"]


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ({"type": "video", "video": {"target_vmaf": 93, "crf": 20}}, "target_vmaf chooses the CRF itself"),
        ({"type": "video", "video": {"target_vmaf": 93, "bitrate": "1M"}}, "target_vmaf chooses the CRF itself"),
        ({"type": "video", "video": {"max_probes": 3}}, "max_probes only applies with video.target_vmaf"),
        ({"type": "video", "video": {"target_vmaf": 120}}, "less than or equal to 99"),
        ({"type": "video", "quality": ["vmaf", "vmaf"]}, "each metric once"),
        ({"type": "video", "quality": ["butteraugli"]}, "'vmaf', 'psnr' or 'ssim'"),
        ({"type": "video", "quality": []}, "at least 1"),
        ({"type": "hls", "quality": ["vmaf"]}, "quality is measured on video outputs only"),
        ({"type": "audio", "quality": ["vmaf"]}, "quality is measured on video outputs only"),
    ],
)
async def test_impossible_combinations_are_422(settings, output: dict, says: str) -> None:
    async with running_app(settings) as client:
        answer = await client.post("/jobs", json={"source": "noisy.mp4", "outputs": [{"name": "x", **output}]})
        assert answer.status_code == 422, answer.text
        assert says in answer.text, answer.text
