"""The job detail's tasks in headless Chromium: a real `"parallel": true` job split over two real
`python worker.py` processes shows one row per task, with the worker that ran it and its bar on the
job's clock, and how many workers shared the job."""

from __future__ import annotations

import httpx
import pytest

from tests import media
from tests.apptools import ApiServer, make_settings, start_worker, stop_workers
from tests.browser import ApiServerLog, axe_violations, chromium_page, screenshot
from tests.helpers.tasks import PARALLEL


@pytest.mark.browser
async def test_the_job_detail_shows_its_tasks_and_their_workers(tmp_path):
    from playwright.async_api import expect

    # 4 s with a keyframe every second, 1 s chunks: 4 chunk tasks and the audio task
    settings = make_settings(tmp_path, CHUNK_SECONDS=1, LEASE_SECONDS=3)
    media.detailed_clip(tmp_path / "media", "clip.mp4", width=320, height=180, seconds=4, gop_seconds=1)
    with ApiServer(settings, tmp_path) as server, ApiServerLog(server):
        workers = [start_worker(settings, tmp_path) for _ in range(2)]
        try:
            created = httpx.post(f"{server.url}/jobs", json={"source": "clip.mp4", "outputs": [PARALLEL]})
            assert created.status_code == 201, created.text
            job_id = created.json()["job_id"]
            async with chromium_page(tmp_path / "downloads") as page:
                await page.goto(f"{server.url}/ui/#job={job_id}")
                box = page.get_by_test_id("job-tasks")
                await expect(box).to_be_visible(timeout=30_000)  # shown while the job runs, once split
                await expect(page.get_by_test_id("detail-status")).to_have_text("Completed", timeout=90_000)
                rows = box.get_by_test_id("task-row")
                await expect(rows).to_have_count(5)
                await expect(box.locator("tr[data-kind=chunk][data-status=completed]")).to_have_count(4)
                job = httpx.get(f"{server.url}/jobs/{job_id}").json()
                ran_on = {t["worker_id"] for t in job["tasks"]}
                await expect(page.get_by_test_id("tasks-summary")).to_have_attribute("data-workers", str(len(ran_on)))
                await expect(page.get_by_test_id("tasks-summary")).to_have_text(
                    f"5 tasks on {len(ran_on)} worker" + ("s" if len(ran_on) > 1 else "")
                )
                # each row names its worker (shortened; the full id in the title) and has a bar
                for task in job["tasks"]:
                    row = box.locator("tr", has=page.locator(f"td[title='{task['worker_id']}']")).first
                    await expect(row).to_be_visible()
                shown = {await cell.get_attribute("title") for cell in await box.get_by_test_id("task-worker").all()}
                assert shown == ran_on, (shown, ran_on)
                widths = await box.locator(".lane-bar").evaluate_all(
                    "bars => bars.map(b => b.getBoundingClientRect().width)"
                )
                assert len(widths) == 5 and all(w > 0 for w in widths), widths
                assert await axe_violations(page) == []
                # the kinds to come (one task per output, per HLS rendition) read as well, with their output
                labels = await page.evaluate("""() => import('./tasks.js').then(({ taskLabel }) => {
                    const tasks = [{kind: 'output', output: 'web', index: 0}, {kind: 'rendition', output: 'hls', index: 0},
                                   {kind: 'rendition', output: 'hls', index: 1}, {kind: 'audio', index: 0}];
                    return tasks.map((t) => taskLabel(t, tasks));
                })""")
                assert labels == ["output web", "rendition hls #0", "rendition hls #1", "audio"], labels
                await screenshot(page, "job-tasks")
        finally:
            stop_workers(workers)
    assert len(ran_on) == 2, f"both workers should have run tasks: {job['tasks']}"
