"""run_outputs as a whole: a failing output loses none of the others, nothing half-made is visible,
an earlier attempt's leftovers are replaced, and cancelling kills ffmpeg."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from mediaflow.media.outputs import parse_outputs, run_outputs
from mediaflow.media.outputs.executor import LOG_DIR, PARTIAL_DIR
from mediaflow.media.probe import probe
from mediaflow.settings import Settings
from tests import media

NO_FFPROBE = Settings(_env_file=None, FFPROBE_BINARY=None)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("executor-clips")
    return {
        "silent": media.make_clip(d, "silent.mp4", width=160, height=90, seconds=1, audio=False),
        "long": media.make_clip(d, "long.mp4", width=320, height=180, seconds=30, audio=False),
    }


async def test_a_failing_output_keeps_the_finished_ones(clips, tmp_path: Path) -> None:
    info = await probe(clips["silent"], NO_FFPROBE)
    spec = [
        {"type": "thumbnails", "name": "before", "count": 2},
        {"type": "waveform", "name": "wave"},  # no audio in the source
        {"type": "thumbnails", "name": "late", "offsets": [30]},  # past the end
        {"type": "video", "name": "after", "video": {"preset": "ultrafast", "height": 90}},
    ]
    results = await run_outputs(
        parse_outputs(spec), input_path=clips["silent"], info=info, workdir=tmp_path, ffmpeg=media.ffmpeg()
    )
    assert [(r.name, r.status) for r in results] == [
        ("before", "completed"),
        ("wave", "failed"),
        ("late", "failed"),
        ("after", "completed"),
    ]
    assert results[1].error == "the source has no audio stream, so it cannot make waveform 'wave'"
    assert results[2].error == "thumbnail offset 30 s is past the end of the source (1.00 s)"
    assert results[1].files == [] and not (tmp_path / "wave").exists() and not (tmp_path / "late").exists()
    assert sorted(p.name for p in (tmp_path / "before").iterdir()) == ["thumbnail_001.jpg", "thumbnail_002.jpg"]
    assert (tmp_path / "after/after.mp4").stat().st_size > 0
    assert not any((tmp_path / PARTIAL_DIR).iterdir())


async def test_an_ffmpeg_failure_is_the_outputs_error_and_its_log_is_kept(clips, tmp_path: Path) -> None:
    info = await probe(clips["silent"], NO_FFPROBE)
    spec = [{"type": "video", "name": "odd", "video": {"codec": "h265", "width": 16, "preset": "ultrafast"}}]
    (result,) = await run_outputs(
        parse_outputs(spec), input_path=clips["silent"], info=info, workdir=tmp_path, ffmpeg=media.ffmpeg()
    )
    # x265 refuses frames this small (16x10); the error carries ffmpeg's own words
    assert result.status == "failed" and result.error.startswith("ffmpeg failed with exit code"), result.error
    assert "Could not open encoder" in result.error
    assert result.logs == [tmp_path / LOG_DIR / "odd.encode.log"] and result.logs[0].stat().st_size > 0
    assert not (tmp_path / "odd").exists()


async def test_a_retried_job_replaces_its_earlier_attempt(clips, tmp_path: Path) -> None:
    info = await probe(clips["silent"], NO_FFPROBE)
    (tmp_path / "thumbs").mkdir()
    (tmp_path / "thumbs/stale.jpg").write_bytes(b"old")
    (tmp_path / PARTIAL_DIR / "thumbs").mkdir(parents=True)
    (tmp_path / PARTIAL_DIR / "thumbs/half.jpg").write_bytes(b"half")
    (result,) = await run_outputs(
        parse_outputs([{"type": "thumbnails", "name": "thumbs"}]),
        input_path=clips["silent"],
        info=info,
        workdir=tmp_path,
        ffmpeg=media.ffmpeg(),
    )
    assert [f.path for f in result.files] == ["thumbs/thumbnail_001.jpg"]
    assert sorted(p.name for p in (tmp_path / "thumbs").iterdir()) == ["thumbnail_001.jpg"]


async def test_cancelling_kills_ffmpeg_and_leaves_nothing_visible(clips, tmp_path: Path) -> None:
    info = await probe(clips["long"], NO_FFPROBE)
    spec = [{"type": "video", "name": "slow", "format": "webm", "video": {"codec": "vp9", "preset": "veryslow"}}]
    started = asyncio.Event()
    pids: set[int] = set()

    async def on_progress(progress) -> None:
        started.set()

    task = asyncio.create_task(
        run_outputs(
            parse_outputs(spec),
            input_path=clips["long"],
            info=info,
            workdir=tmp_path,
            ffmpeg=media.ffmpeg(),
            on_progress=on_progress,
        )
    )
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.3)
    pids = {int(p) for p in os.listdir("/proc") if p.isdigit() and _is_our_ffmpeg(int(p), tmp_path)}
    assert pids, "ffmpeg should be running"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(_is_our_ffmpeg(pid, tmp_path) for pid in pids)
    assert not (tmp_path / "slow").exists()


def _is_our_ffmpeg(pid: int, workdir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except OSError:
        return False
    return state != "Z" and any(str(workdir).encode() in part for part in cmdline)
