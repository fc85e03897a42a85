"""An HLS ladder made by several workers: one task per rendition, the master playlist written at the end.

Every rendition task runs the same builder as a whole ladder would, for a ladder of one: the source's
frames, the same forced keyframe every `segment_seconds`, so its segments start at the same instants as
its siblings' and a player can switch between them. ffmpeg writes each task's one-variant master
playlist with what it measured (BANDWIDTH, RESOLUTION, CODECS); the join merges them in ladder order.
"""

from __future__ import annotations

import json

from mediaflow.jobs.outputs import OutputFileInfo, OutputState, split_files
from mediaflow.jobs.tasks import TaskSpec
from mediaflow.media.outputs.files import mime_type
from mediaflow.media.outputs.ladder import MASTER_PLAYLIST, ladder_for, merge_master_playlists, spread_ladder_notes
from mediaflow.media.outputs.spec import HlsOutput, Rendition
from mediaflow.media.probe import MediaInfo
from mediaflow.settings import Settings
from mediaflow.storage.keys import output_key, task_key
from mediaflow.worker.run_context import RunContext

MASTER_FIELD = "master"  # a rendition task's result (JSON): its files and its one-variant master playlist


def rendition_tasks(
    settings: Settings, job_id: str, output: HlsOutput, info: MediaInfo, state: OutputState
) -> list[TaskSpec]:
    """One task per rendition of `output`'s ladder for this source (their `total` is set by the caller)."""
    assert info.video is not None
    _, rungs, _ = ladder_for(output, info.video)
    state.notes += spread_ladder_notes(output, info)
    specs = []
    for index, rung in enumerate(rungs):
        one = output.model_copy(
            update={"renditions": [Rendition(height=rung.height, bitrate=rung.bitrate)], "parallel": False}
        )
        specs.append(
            TaskSpec(
                kind="rendition",
                total=0,
                output=output.name,
                index=index,
                spec=one.model_dump_json(),
                result=task_key(settings, job_id, f"{output.name}.{rung.label}.json"),
            )
        )
    return specs


def master_path(output_name: str) -> str:
    return f"{output_name}/{MASTER_PLAYLIST}"


async def join_renditions(
    ctx: RunContext, output: HlsOutput, specs: list[TaskSpec], results: list[dict], state: OutputState
) -> list[dict]:
    """Write the ladder's master playlist from the renditions' results (in `specs` order), store it, settle
    `state`; returns every file of the output (segments included) for the job's file list."""
    ordered = [result for _, result in sorted(zip(specs, results, strict=True), key=lambda pair: pair[0].index)]
    master = ctx.workdir / "renditions" / output.name / MASTER_PLAYLIST
    master.parent.mkdir(parents=True, exist_ok=True)
    master.write_text(merge_master_playlists([result[MASTER_FIELD] for result in ordered]))
    path = master_path(output.name)
    key = output_key(ctx.settings, ctx.job.job_id, path)
    await ctx.with_retries(lambda: ctx.storage.put_file(key, master, mime_type(path)), f"store {path}")
    files = [OutputFileInfo(path=path, size=master.stat().st_size, mime_type=mime_type(path))]
    files += [OutputFileInfo.model_validate(f) for result in ordered for f in result["files"]]
    files.sort(key=lambda f: f.path)
    state.files, state.segments = split_files(files)
    state.status, state.progress, state.error = "completed", 100, None
    state.notes.append(f"{len(specs)} renditions encoded as separate tasks")
    return [f.model_dump() for f in files]


def rendition_result(files: list[dict], master_text: str) -> str:
    return json.dumps({"files": files, MASTER_FIELD: master_text})
