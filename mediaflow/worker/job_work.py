"""The work of one claimed record, whatever it is — every job runs through its outputs:

- a task: its piece of a spread job (tasks_run.py);
- a job whose tasks all settled (taken back by the worker that settled the last one): put it
  together from them (task_join.py);
- any other job, POST /process's one-output jobs included: fetch and probe the source, then either make
  every output here (outputs_run.py) or split the job into tasks (task_split.py).
"""

from __future__ import annotations

import json

from mediaflow.jobs.model import Job, JobStatus
from mediaflow.jobs.output_requests import method_job_fields
from mediaflow.jobs.tasks import task_spec
from mediaflow.media.operations import resolve_output_format
from mediaflow.media.outputs import OutputSpec, parse_outputs
from mediaflow.worker.outcomes import HandedOver, WorkResult
from mediaflow.worker.outputs_run import fetch_and_probe, make_outputs
from mediaflow.worker.run_context import RunContext
from mediaflow.worker.task_join import join_tasks
from mediaflow.worker.task_split import may_spread, plan_spread, split_into_tasks
from mediaflow.worker.tasks_run import run_task


async def do_work(ctx: RunContext) -> WorkResult:
    job = ctx.job
    if job.is_task:
        return await run_task(ctx)
    outputs = job_outputs(job)
    tasks = await ctx.store.list_tasks(job.job_id) if may_spread(outputs) else []
    if tasks and len(tasks) != task_spec(tasks[0]).total:  # a split that died half-way: start over
        for task in tasks:
            await ctx.store.delete(task.job_id)
        tasks = []
    if tasks:
        if not any(t.status in (JobStatus.FAILED, JobStatus.CANCELED) for t in tasks) and any(
            t.status is not JobStatus.COMPLETED for t in tasks
        ):  # taken back early (re-queued by the reaper while its tasks still run): hand it back
            return HandedOver([t.job_id for t in tasks if t.status is JobStatus.QUEUED])
        return await join_tasks(ctx, outputs, tasks)
    source = await fetch_and_probe(ctx)
    spread = await plan_spread(ctx, outputs, source)
    if spread is None:
        return await make_outputs(ctx, outputs, source)
    return await split_into_tasks(ctx, outputs, spread, source)


def job_outputs(job: Job) -> list[OutputSpec]:
    """The job's validated outputs. A /process job stored before its record carried them (queued
    across an upgrade) gets its method's template, as it would be submitted today."""
    spec = job.outputs_spec
    if spec is None and job.method_name is not None:
        fmt = resolve_output_format(job.method_name, job.output_format)
        spec = method_job_fields(job.method_name, fmt.name)["outputs_spec"]
    return parse_outputs(json.loads(spec or "[]"))
