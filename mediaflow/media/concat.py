"""Joining pieces of video back to back with ffmpeg's concat demuxer, by stream copy (no re-encoding).

Only for files we made ourselves (encoded chunks, cut samples): the concat demuxer opens every file
its list names, which is exactly why user input never reaches it (INPUT_FORMATS leaves it out). The
list holds bare file names in the list's own directory, checked against a strict pattern, with
`-safe 1` and `-protocol_whitelist file`: nothing in it can name another directory or a URL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from mediaflow.media.ffmpeg import check, run_ffmpeg
from mediaflow.media.inputs import INPUT_SAFETY_OPTIONS, file_url

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def concat_list(names: Sequence[str]) -> str:
    """An ffconcat script naming `names` (bare file names, in order)."""
    if not names:
        raise ValueError("nothing to join")
    for name in names:
        if not _PLAIN_NAME.fullmatch(name):
            raise ValueError(f"concat pieces must be plain file names; got {name!r}")
    return "ffconcat version 1.0\n" + "".join(f"file {name}\n" for name in names)


async def concat_copy(
    ffmpeg: str,
    names: Sequence[str],
    directory: Path,
    output: Path,
    *,
    log_path: Path,
    audio: Path | None = None,
    muxer: str = "matroska",
    output_options: Sequence[str] = (),
) -> None:
    """Join the video of `directory/names` into `output`; with `audio`, mux its audio (and subtitle) streams in.

    Everything is stream copy. The joined video's timestamps run on from piece to piece (the demuxer
    offsets each piece by the durations before it), so the pieces must each start at zero.
    """
    script = directory / "concat.ffconcat"
    script.write_text(concat_list(names))
    argv = [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-nostats",
        "-loglevel",
        "info",
        "-protocol_whitelist",
        "file",
        "-f",
        "concat",
        "-safe",
        "1",
        "-i",
        file_url(script),
    ]
    maps = ["-map", "0:V:0"]
    if audio is not None:
        argv += [*INPUT_SAFETY_OPTIONS, "-i", file_url(audio)]
        maps += ["-map", "1:a", "-map", "1:s?"]  # every track the audio run kept, subtitles if any
    argv += [*maps, "-c", "copy", *output_options, "-f", muxer, file_url(output)]
    check(await run_ffmpeg(argv, log_path=log_path))
