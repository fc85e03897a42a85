"""When a job is spread over workers and how (jobs/fanout.py), and the HLS master playlist put together
from renditions made apart (media/outputs/ladder.py): pure functions, no ffmpeg."""

from __future__ import annotations

import pytest

from mediaflow.jobs.fanout import plan_fanout
from mediaflow.media.outputs import parse_outputs
from mediaflow.media.outputs.ladder import merge_master_playlists
from mediaflow.media.probe import AudioStreamInfo, MediaInfo, VideoStreamInfo

VIDEO = VideoStreamInfo("h264", 1280, 720, 30.0)
AUDIO = AudioStreamInfo("aac", 48000, 2, 128000)


def info(seconds: float, video: VideoStreamInfo | None = VIDEO) -> MediaInfo:
    return MediaInfo("mov,mp4,m4a,3gp,3g2,mj2", seconds, video, AUDIO, 2, 5_000_000)


def outputs(*items: dict) -> list:
    return parse_outputs(list(items))


MAIN = {"name": "main", "type": "video"}
LADDER = {"name": "stream", "type": "hls"}
POSTER = {"name": "poster", "type": "thumbnails", "count": 1}


def test_auto_spreads_a_long_source_only_when_more_than_one_worker_slot_is_alive():
    job = outputs(MAIN, LADDER, POSTER)
    assert plan_fanout(job, info(600), live_slots=1, min_source_s=120) is None
    assert plan_fanout(job, info(60), live_slots=8, min_source_s=120) is None
    plan = plan_fanout(job, info(600), live_slots=2, min_source_s=120)
    assert plan is not None and plan.splits == {"main": "chunks", "stream": "renditions", "poster": "whole"}
    assert "600 s of source and 2 worker slots" in plan.reason


def test_auto_counts_the_clip_not_the_whole_source():
    job = outputs({**MAIN, "clip": {"start": 10, "end": 40}})
    assert plan_fanout(job, info(600), live_slots=4, min_source_s=120) is None
    assert plan_fanout(job, info(600), live_slots=4, min_source_s=30) is not None


def test_true_spreads_whatever_the_length_and_the_workers_and_false_never():
    plan = plan_fanout(outputs({**MAIN, "parallel": True}, POSTER), info(3), live_slots=1, min_source_s=120)
    assert plan is not None and plan.splits == {"main": "chunks", "poster": "whole"}
    assert plan_fanout(outputs({**MAIN, "parallel": False}), info(600), live_slots=8, min_source_s=0) is None


@pytest.mark.parametrize(("height", "expected"), [(720, "renditions"), (144, None)])
def test_a_ladder_of_one_rendition_is_not_worth_spreading(height, expected):
    video = VideoStreamInfo("h264", height * 16 // 9, height, 30.0)
    plan = plan_fanout(outputs({**LADDER, "parallel": True}), info(10, video), live_slots=2, min_source_s=0)
    assert (plan.splits["stream"] if plan else None) == expected


def test_audio_only_sources_are_never_spread():
    assert plan_fanout(outputs({**MAIN, "parallel": True}), info(600, None), live_slots=4, min_source_s=0) is None


def master(width: int, height: int, bandwidth: int) -> str:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={width}x{height},CODECS="avc1.64001f,mp4a.40.2"\n'
        f"{height}p/index.m3u8\n\n"
    )


def test_masters_of_single_renditions_merge_into_one_ladder_in_order():
    merged = merge_master_playlists([master(1280, 720, 3_000_000), master(640, 360, 900_000)])
    assert merged.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        '#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"',
        "720p/index.m3u8",
        '#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001f,mp4a.40.2"',
        "360p/index.m3u8",
    ]


@pytest.mark.parametrize("broken", ["#EXT-X-STREAM-INF:BANDWIDTH=1\n", "720p/index.m3u8\n"])
def test_a_master_that_is_not_a_playlist_is_refused(broken):
    with pytest.raises(ValueError):
        merge_master_playlists([broken if broken.startswith("7") else "#EXTM3U\n" + broken])


def test_a_spread_jobs_progress_is_its_tasks_mean_and_each_output_its_own_tasks():
    from mediaflow.jobs.fanout import outputs_progress
    from mediaflow.jobs.model import Job, JobStatus
    from mediaflow.jobs.outputs import decode_states, encode_states, initial_states
    from mediaflow.jobs.tasks import TaskSpec, new_task, tasks_progress

    parent = Job(source="a.mp4")

    def task(output: str, status: JobStatus, progress: int = 0) -> Job:
        made = new_task(parent, TaskSpec(kind="output", total=3, output=output, result="r"))
        return made.model_copy(update={"status": status, "progress": progress})

    tasks = [task("a", JobStatus.COMPLETED), task("a", JobStatus.PROCESSING, 50), task("b", JobStatus.QUEUED)]
    assert tasks_progress(tasks) == 50
    assert tasks_progress([task("a", JobStatus.COMPLETED)]) == 99, "100 only once the job is put together"
    states = initial_states([{"name": "a", "type": "video"}, {"name": "b", "type": "thumbnails"}])
    updated = decode_states(outputs_progress(encode_states(states), tasks))
    assert [(s.status, s.progress) for s in updated] == [("processing", 75), ("processing", 0)]
