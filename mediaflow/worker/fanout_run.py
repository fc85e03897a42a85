"""A POST /jobs job's run: made here on one worker, or spread over the workers as tasks and joined.

First run (no tasks yet): fetch and probe the source, then ask jobs/fanout.py whether to spread it.
If not, every output is made here (outputs_run.py). If so, the job is split: one task per whole output,
one per HLS rendition, chunk and audio tasks per chunked video output (chunked_run.py); the task
records are created, then `HandedToTasks` tells job_run to mark the job awaiting them and publish them
(in that order, so a task that finishes at once finds the job to take back).
Later run (the worker that settled the last task took the job back): every output is put together
from its tasks — a whole output's state comes from its task, a ladder gets its master playlist, chunks
are joined — the job's file list is stored, the tasks' temporary files are removed, and the job
completes, or fails naming the outputs whose tasks failed (the others stay downloadable).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from mediaflow.jobs import lifecycle
from mediaflow.jobs.fanout import FanOut, plan_fanout
from mediaflow.jobs.model import Job, JobStatus, Phase, utcnow
from mediaflow.jobs.outputs import OutputState, decode_states, encode_states, initial_states
from mediaflow.jobs.retention import remove_tasks_folder
from mediaflow.jobs.tasks import TaskSpec, new_task, task_spec
from mediaflow.logs import get_logger
from mediaflow.media.chunking import ChunkingError
from mediaflow.media.outputs import parse_outputs
from mediaflow.media.outputs.spec import HlsOutput, VideoOutput
from mediaflow.media.probe import MediaInfo
from mediaflow.storage.keys import log_key, output_key, task_key
from mediaflow.store.workers import live_worker_slots
from mediaflow.worker.chunked_run import chunk_tasks, join_chunks
from mediaflow.worker.outputs_run import (
    JobRunner,
    Run,
    combined_log,
    fetch_and_probe,
    make_outputs,
    raise_if_failed,
    store_manifest,
    store_result,
)
from mediaflow.worker.renditions_run import join_renditions, rendition_tasks

log = get_logger("worker")


class HandedToTasks(Exception):
    """The job's work is out in task records; `queued` are the ids still to publish."""

    def __init__(self, queued: list[str]) -> None:
        super().__init__(f"{len(queued)} tasks to publish")
        self.queued = queued


async def run_job_outputs(runner: JobRunner, run: Run, workdir: Path) -> tuple[str, str]:
    job = run.job
    outputs = parse_outputs(json.loads(job.outputs_spec or "[]"))
    tasks = await runner.store.list_tasks(job.job_id)
    if tasks and len(tasks) != task_spec(tasks[0]).total:  # a split that died half-way: start over
        for task in tasks:
            await runner.store.delete(task.job_id)
        tasks = []
    if tasks:
        if not any(t.status in (JobStatus.FAILED, JobStatus.CANCELED) for t in tasks) and any(
            t.status is not JobStatus.COMPLETED for t in tasks
        ):
            raise HandedToTasks([t.job_id for t in tasks if t.status is JobStatus.QUEUED])  # taken back early
        return await _join(runner, run, workdir, outputs, tasks)
    input_path, info = await fetch_and_probe(runner, run, workdir)
    fanout = None
    if any(getattr(o, "parallel", False) is not False for o in outputs):
        slots = await _live_slots(runner)
        fanout = plan_fanout(outputs, info, live_slots=slots, min_source_s=runner.settings.CHUNK_MIN_SOURCE_S)
    if fanout is None:
        return await make_outputs(runner, run, workdir, outputs, input_path, info)
    raise HandedToTasks(await _split(runner, run, workdir, outputs, fanout, input_path, info))


async def _live_slots(runner: JobRunner) -> int:
    """Worker slots alive on every machine; 1 (do not spread on "auto") when the store cannot tell."""
    try:
        return await live_worker_slots(runner.store, utcnow())
    except Exception as exc:
        log.warning("workers.unknown", error=str(exc))
        return 1


async def _split(
    runner: JobRunner, run: Run, workdir: Path, outputs: list, fanout: FanOut, input_path: Path, info: MediaInfo
) -> list[str]:
    job, settings = run.job, runner.settings
    states = initial_states([{"name": o.name, "type": o.type} for o in outputs])
    run.progress.enter(Phase.ENCODING)
    specs: list[TaskSpec] = []
    for output, state in zip(outputs, states, strict=True):
        state.status = "processing"
        how = fanout.of(output.name)
        if how == "chunks" and isinstance(output, VideoOutput):
            try:
                specs += await chunk_tasks(runner, run, workdir, output, input_path, info, state)
                continue
            except ChunkingError as exc:  # e.g. no keyframe to cut on: one task makes it whole
                state.notes.append(f"not chunked: {exc}")
                log.warning("output.not_chunked", output=output.name, reason=str(exc))
        if how == "renditions" and isinstance(output, HlsOutput):
            specs += rendition_tasks(settings, job.job_id, output, info, state)
            continue
        specs.append(
            TaskSpec(
                kind="output",
                total=0,
                output=output.name,
                spec=output.model_dump_json(),
                result=task_key(settings, job.job_id, f"{output.name}.files.json"),
            )
        )
    tasks = [new_task(job, spec.model_copy(update={"total": len(specs)})) for spec in specs]
    for task in tasks:
        await runner.store.create(task)
    run.record(outputs=encode_states(states))
    log.info(
        "job.split", tasks=len(tasks), reason=fanout.reason, outputs={name: how for name, how in fanout.splits.items()}
    )
    return [task.job_id for task in tasks]


async def _join(runner: JobRunner, run: Run, workdir: Path, outputs: list, tasks: list[Job]) -> tuple[str, str]:
    job = run.job
    for task in tasks:  # a task failed: the others stop at their next lease renewal
        if not task.status.is_final:
            await lifecycle.cancel(runner.store, task)
    states = {s.name: s for s in decode_states(job.outputs)}
    spec_of = {task.job_id: task_spec(task) for task in tasks}  # each task's JSON parsed once
    by_output: dict[str, list[Job]] = defaultdict(list)
    for task in tasks:
        by_output[spec_of[task.job_id].output].append(task)
    source: tuple[Path, MediaInfo] | None = None
    run.progress.enter(Phase.ENCODING)
    every_file, logs = [], []
    for output in outputs:
        state = states.get(output.name) or OutputState(name=output.name, type=output.type)
        states[output.name] = state
        mine = by_output.get(output.name, [])
        specs = [spec_of[t.job_id] for t in mine]
        unfinished = [t for t in mine if t.status is not JobStatus.COMPLETED]
        if not mine or unfinished:
            state.status, state.progress = "failed", 0
            state.error = (
                _task_error(unfinished[0], spec_of[unfinished[0].job_id]) if unfinished else "its tasks are missing"
            )
            continue
        if specs[0].kind == "output":
            [state] = decode_states(mine[0].outputs) or [state]
            states[output.name] = state
            every_file += (await _read_result(runner, specs[0], workdir))["files"]
        elif specs[0].kind == "rendition":
            rendition_states = [(decode_states(t.outputs) or [None])[0] for t in mine]
            failed = [s for s in rendition_states if s is None or s.status != "completed"]
            if failed:
                why = failed[0].error if failed[0] is not None else None
                state.status, state.error, state.progress = "failed", why or "a rendition task left no result", 0
                continue
            results = [await _read_result(runner, spec, workdir) for spec in specs]
            every_file += await join_renditions(runner, job.job_id, output, specs, results, state, workdir)
        else:
            source = source or await fetch_and_probe(runner, run, workdir)
            result, out_dir = await join_chunks(runner, run, workdir, output, specs, *source, state)
            logs.append(result)
            every_file += await store_result(runner, run, result, state, out_dir)
    ordered = [states[o.name] for o in outputs]
    run.log_file = await _joined_log(runner, run, workdir, tasks, spec_of, combined_log(logs, workdir / "join.log"))
    log_location = await runner.store_log(run)
    run.progress.enter(Phase.UPLOADING)
    await store_manifest(runner, run, workdir / "outputs", every_file)
    run.record(outputs=encode_states(ordered))
    await runner.flush(run)
    await remove_tasks_folder(runner.settings, runner.storage, job.job_id)  # pieces, results, task logs
    log.info("job.joined", tasks=len(tasks), workers=len({t.worker_id for t in tasks}))
    raise_if_failed(ordered)
    first_file = every_file[0]["path"]  # every output completed, so there are files
    return runner.storage.location(output_key(runner.settings, job.job_id, first_file)), log_location


async def _joined_log(
    runner: JobRunner, run: Run, workdir: Path, tasks: list[Job], spec_of: dict[str, TaskSpec], join_log: Path
) -> Path:
    """The job's one log: every task's ffmpeg log under a header naming the task and its worker, then the join's."""
    path, fetched = workdir / "ffmpeg.log", workdir / "task.log"
    ordered = sorted(tasks, key=lambda t: (spec_of[t.job_id].output, spec_of[t.job_id].kind, spec_of[t.job_id].index))
    with open(path, "wb") as combined:  # noqa: ASYNC230  (opening is cheap; reads and writes go through threads or are small)
        for task in ordered:
            spec = spec_of[task.job_id]
            combined.write(
                f"===== task {spec.output} {spec.kind} {spec.index} on {task.worker_id} "
                f"({task.status.value}) =====\n".encode()
            )
            try:
                await runner.storage.get_file(log_key(runner.settings, task.job_id, run.job.job_id), fetched)
                combined.write(fetched.read_bytes())
            except Exception as exc:
                combined.write(f"(no log: {type(exc).__name__})\n".encode())
        combined.write(join_log.read_bytes())
    return path


def _task_error(task: Job, spec: TaskSpec) -> str:
    what = f"{spec.kind} task" + (f" {spec.index}" if spec.kind in ("chunk", "rendition") else "")
    if task.status is JobStatus.FAILED:
        return f"{what} failed: {task.error or 'no reason given'}"
    return f"not finished: another task of the job failed first ({what} was {task.status.value})"


async def _read_result(runner: JobRunner, spec: TaskSpec, workdir: Path) -> dict:
    """A task's result file (its file list), small JSON written by the task itself."""
    local = workdir / "results" / f"{spec.output}.{spec.kind}{spec.index}.json"
    local.parent.mkdir(parents=True, exist_ok=True)
    await runner.with_retries(lambda: runner.storage.get_file(spec.result, local), f"fetch {spec.output}'s task result")
    return json.loads(local.read_text())
