"""A multi-output job's state on its record, and its public JSON (`GET /jobs/{id}`, final webhooks).

A job made by `POST /jobs` carries its validated outputs (`outputs_spec`), one state per output
(`outputs`: status, progress, error, files) and the probed source (`source_media`), each as JSON text
on the record: every store keeps a string the same way, and the record stays small. An HLS or DASH
output lists its playlists/manifest in `files` and sums up its segments; the full list of every file
of the job is stored beside them as `files.json` (see `worker/outputs_run.py`).
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter

from mediaflow.jobs.model import Job, JobStatus, Phase, Timestamp
from mediaflow.jobs.source_picture import PictureMedia
from mediaflow.jobs.tasks import TaskView, task_views
from mediaflow.media.probe import MediaInfo
from mediaflow.storage.destinations import parse_destination

OutputStatus = Literal["queued", "processing", "completed", "failed", "canceled"]
SEGMENT_SUFFIXES = (".ts", ".m4s")
# HLS subtitle renditions' WebVTT segments (media/outputs/webvtt.py); a storyboard's .vtt is a file to list
_SUBTITLE_SEGMENT = re.compile(r"/segment_\d+\.vtt$")


def is_segment(path: str) -> bool:
    return path.endswith(SEGMENT_SUFFIXES) or _SUBTITLE_SEGMENT.search(path) is not None


FILES_MANIFEST = "files.json"  # beside the output folders; a dot in it keeps it apart from output names


class OutputFileInfo(BaseModel):
    path: str = Field(description='Relative to the job: "stream/master.m3u8".')
    size: int
    mime_type: str


class SegmentsInfo(BaseModel):
    count: int
    bytes: int


class CrfSearchInfo(BaseModel):
    """How `video.target_vmaf` was met: the CRF chosen on samples, and what the full output scored."""

    target_vmaf: float
    crf: int
    predicted_vmaf: float = Field(description="The chosen CRF's VMAF on the samples.")
    vmaf: float | None = Field(default=None, description="VMAF measured on the full output.")
    samples: int
    sample_seconds: float
    seconds: float = Field(description="Wall time of the search.")
    probes: list[dict] = Field(default_factory=list, description="Each probe's crf, vmaf and seconds.")


# metric ("vmaf", "psnr", "ssim") -> {"mean", "min", "p5"}; null where frames were identical (PSNR inf)
QualityReport = dict[str, dict[str, float | None]]


class OutputState(BaseModel):
    name: str
    type: str
    status: OutputStatus = "queued"
    progress: int = 0
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    files: list[OutputFileInfo] = Field(default_factory=list)
    segments: SegmentsInfo | None = Field(default=None, description="HLS/DASH media segments (not listed in files).")
    quality: QualityReport | None = Field(default=None, description="Video outputs with `quality`: pooled scores.")
    crf_search: CrfSearchInfo | None = Field(default=None, description="Video outputs with `video.target_vmaf`.")


_STATES = TypeAdapter(list[OutputState])


def initial_states(outputs_spec: list[dict]) -> list[OutputState]:
    return [OutputState(name=o["name"], type=o["type"]) for o in outputs_spec]


def encode_states(states: list[OutputState]) -> str:
    return _STATES.dump_json(states).decode()


def decode_states(text: str | None) -> list[OutputState]:
    return _STATES.validate_json(text) if text else []


def split_files(files: list[OutputFileInfo]) -> tuple[list[OutputFileInfo], SegmentsInfo | None]:
    """(the files to list on the record, the segments summed up)."""
    segments = [f for f in files if is_segment(f.path)]
    listed = [f for f in files if not is_segment(f.path)]
    return listed, (SegmentsInfo(count=len(segments), bytes=sum(f.size for f in segments)) if segments else None)


class VideoMedia(BaseModel):
    codec: str
    width: int = Field(description="As stored; picture.display_width/height is what a viewer sees.")
    height: int
    fps: float | None
    picture: PictureMedia | None = None


class AudioMedia(BaseModel):
    codec: str
    sample_rate: int | None
    channels: int | None
    bit_rate: int | None


class AudioTrackMedia(BaseModel):
    codec: str
    channels: int | None
    layout: str | None
    language: str = Field(description='ISO 639-2 code, "und" when the source names none.')
    default: bool
    forced: bool
    title: str | None


class SubtitleTrackMedia(BaseModel):
    codec: str
    language: str
    default: bool
    forced: bool
    title: str | None
    bitmap: bool = Field(description="Pictures (PGS, DVD, DVB), not text: reported, never put in outputs.")


class SourceMedia(BaseModel):
    format: str
    duration: float | None = Field(description="Seconds.")
    size: int | None = Field(default=None, description="Bytes.")
    bit_rate: int | None
    streams: int
    video: VideoMedia | None
    audio: AudioMedia | None
    audio_tracks: list[AudioTrackMedia] = Field(default_factory=list, description="Every audio stream, in order.")
    subtitle_tracks: list[SubtitleTrackMedia] = Field(default_factory=list, description="Every subtitle stream.")
    ignored_streams: list[str] = Field(
        default_factory=list, description='Streams no output uses: "cover art", "timecode", "data (...)".'
    )
    variable_frame_rate: bool = Field(
        default=False, description='Frames do not come at one rate (video.picture.frame_rate_mode "variable").'
    )

    @classmethod
    def from_info(cls, info: MediaInfo, size: int | None) -> SourceMedia:
        video, audio = info.video, info.audio
        return cls(
            format=info.format_name,
            duration=info.duration,
            size=size,
            bit_rate=info.bit_rate,
            streams=info.stream_count,
            video=None
            if video is None
            else VideoMedia(
                codec=video.codec,
                width=video.width,
                height=video.height,
                fps=video.fps,
                picture=PictureMedia.from_stream(video),
            ),
            audio=None
            if audio is None
            else AudioMedia(
                codec=audio.codec, sample_rate=audio.sample_rate, channels=audio.channels, bit_rate=audio.bit_rate
            ),
            audio_tracks=[
                AudioTrackMedia(
                    codec=t.codec,
                    channels=t.channels,
                    layout=t.layout,
                    language=t.language,
                    default=t.default,
                    forced=t.forced,
                    title=t.title,
                )
                for t in info.tracks.audio
            ],
            subtitle_tracks=[
                SubtitleTrackMedia(
                    codec=s.codec,
                    language=s.language,
                    default=s.default,
                    forced=s.forced,
                    title=s.title,
                    bitmap=s.bitmap,
                )
                for s in info.tracks.subtitles
            ],
            ignored_streams=list(info.tracks.ignored),
            variable_frame_rate=info.variable_frame_rate,
        )


class OutputFileResponse(OutputFileInfo):
    url: str = Field(description="GET it (relative to the API's base URL); send the API key as for other calls.")
    location: str | None = Field(
        default=None, description="Where the file was delivered (s3://…), for a job with a destination."
    )


class OutputResponse(BaseModel):
    name: str
    type: str
    status: OutputStatus
    progress: int
    error: str | None
    notes: list[str]
    files: list[OutputFileResponse]
    segments: SegmentsInfo | None
    quality: QualityReport | None = Field(default=None, description='{"vmaf": {"mean", "min", "p5"}, ...} when asked.')
    crf_search: CrfSearchInfo | None = None


class JobDetailResponse(BaseModel):
    """GET /jobs/{id}: a job made by POST /jobs (or a seed job, which has no outputs)."""

    job_id: str
    status: JobStatus
    progress: int
    phase: Phase
    error: str | None
    source: str
    template: str | None
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    attempts: int
    eta_seconds: float | None
    speed: float | None
    source_media: SourceMedia | None
    outputs: list[OutputResponse]
    outputs_spec: list[dict] | None = Field(description="The outputs as validated (a template expanded).")
    callback_url: str | None
    destination: str | None = Field(default=None, description="Where the job's files are delivered, if asked.")
    log_url: str | None = Field(description="The ffmpeg runs' log, once there is one.")
    tasks: list[TaskView] = Field(
        default=[], description='"parallel": true: the chunk and audio tasks, who ran them, when.'
    )

    @classmethod
    def from_job(cls, job: Job, tasks: list[Job] | None = None) -> JobDetailResponse:
        base = f"/jobs/{job.job_id}/files/"
        destination = parse_destination(job.destination) if job.destination else None

        def delivered(path: str) -> str | None:
            return destination.location(job.job_id, path) if destination else None

        states = decode_states(job.outputs)
        for state in states:  # a run that ended early (canceled, lease lost, source refused) left them unfinished
            if job.status.is_final and state.status in ("queued", "processing"):
                state.status = "canceled" if job.status is JobStatus.CANCELED else "failed"
                state.error = state.error or (
                    None if job.status is JobStatus.CANCELED else "not made: the job failed first"
                )
        outputs = [
            OutputResponse(
                **state.model_dump(exclude={"files"}),
                files=[
                    OutputFileResponse(**f.model_dump(), url=base + f.path, location=delivered(f.path))
                    for f in state.files
                ],
            )
            for state in states
        ]
        return cls(
            **job.model_dump(
                include={
                    "job_id",
                    "status",
                    "progress",
                    "phase",
                    "error",
                    "source",
                    "template",
                    "created_at",
                    "started_at",
                    "completed_at",
                    "attempts",
                    "eta_seconds",
                    "speed",
                    "callback_url",
                    "destination",
                }
            ),
            source_media=SourceMedia.model_validate_json(job.source_media) if job.source_media else None,
            outputs=outputs,
            outputs_spec=json.loads(job.outputs_spec) if job.outputs_spec else None,
            log_url=f"/jobs/{job.job_id}/log" if job.log_path else None,
            tasks=task_views(tasks or []),
        )
