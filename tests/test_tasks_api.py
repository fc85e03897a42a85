"""The API never treats a task record as a job: a task's id is an unknown job id on every job endpoint,
and no listing or count shows a task. (No worker runs: the records stay as the test writes them.)"""

from __future__ import annotations

import pytest

from mediaflow.jobs.model import Job, JobStatus
from mediaflow.jobs.tasks import TaskSpec, new_task
from tests.apptools import make_settings, running_app


@pytest.fixture
async def api(tmp_path):
    (tmp_path / "media" / "clip.mp4").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "media" / "clip.mp4").write_bytes(b"not decoded by these tests")
    async with running_app(make_settings(tmp_path)) as client:
        yield client


async def a_job_with_a_task(api) -> tuple[str, Job]:
    created = await api.post("/process", json={"source": "clip.mp4", "method_name": "compress"})
    assert created.status_code == 200, created.text
    store = api.app.state.store
    parent = await store.get(created.json()["job_id"])
    task = new_task(parent, TaskSpec(kind="output", total=1, output="web", result="processed/x/.tasks/web.json"))
    await store.create(task)
    await store.update(task.job_id, {"status": JobStatus.COMPLETED, "output_path": "processed/x/web/a.mp4"})
    return parent.job_id, task


READS = ("/status/{}", "/jobs/{}", "/jobs/{}/files", "/download/{}", "/jobs/{}/log", "/jobs/{}/download-url")


async def test_a_task_id_is_an_unknown_job_on_every_job_endpoint(api):
    _, task = await a_job_with_a_task(api)
    for path in READS:
        response = await api.get(path.format(task.job_id))
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"] == f"no job with id {task.job_id!r}", path
    for method, path in (("POST", "/jobs/{}/cancel"), ("POST", "/jobs/{}/retry"), ("DELETE", "/jobs/{}")):
        response = await api.request(method, path.format(task.job_id))
        assert response.status_code == 404, (method, path, response.text)
    assert (await api.get(f"/jobs/{task.job_id}/events")).status_code == 404
    # and nothing above changed the task
    assert (await api.app.state.store.get_record(task.job_id)).status is JobStatus.COMPLETED


async def test_listings_and_counts_show_the_job_and_not_its_task(api):
    job_id, task = await a_job_with_a_task(api)
    assert (await api.get(f"/status/{job_id}")).status_code == 200
    for path in ("/process", "/jobs"):
        listed = (await api.get(path)).json()
        found = [entry["job_id"] for entry in listed["jobs"]]
        assert found == [job_id], (path, listed)
    metrics = (await api.get("/metrics")).text
    assert 'mediaflow_jobs{status="queued"} 1.0' in metrics
    assert 'mediaflow_jobs{status="completed"} 0.0' in metrics  # the completed task is not a job
