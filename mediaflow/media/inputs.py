"""How every ffmpeg and ffprobe we run reads a file a user gave us, and which binaries we run.

Input safety: the input is always passed as `file:<absolute path>` (a name starting with "-" or
holding ":" cannot be read as an option or a URL); `-protocol_whitelist file` keeps every nested
open on local files; `-format_whitelist` limits demuxers to ordinary audio/video containers. The
last one is what matters: an HLS playlist (or ffconcat script) may name *local* files, which the file
protocol allows (verified: without it ffmpeg encodes another directory's secret.ts from a .m3u8).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

# Demuxers for ordinary audio/video files (names as in `ffmpeg -demuxers`; "mov" matches
# "mov,mp4,m4a,3gp,3g2,mj2", "matroska" matches "matroska,webm"). Everything that opens other files
# or URLs (hls, dash, concat, imf, sdp, image2, dvdvideo...) is left out. Extend with care.
INPUT_FORMATS: tuple[str, ...] = (
    # video containers and raw video streams
    "mov",
    "matroska",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "asf",
    "ogg",
    "mxf",
    "dv",
    "nut",
    "rm",
    "wtv",
    "ivf",
    "obu",
    "h264",
    "hevc",
    "m4v",
    "mpegvideo",
    "gif",
    "yuv4mpegpipe",
    # audio
    "wav",
    "w64",
    "mp3",
    "aac",
    "flac",
    "aiff",
    "caf",
    "amr",
    "ac3",
    "eac3",
    "dts",
    "truehd",
    "wv",
    "ape",
    "tta",
    "au",
    "mpc",
    "mpc8",
    "loas",
    "tak",
)
INPUT_SAFETY_OPTIONS: tuple[str, ...] = (
    "-protocol_whitelist",
    "file",
    "-format_whitelist",
    ",".join(INPUT_FORMATS),
)


def file_url(path: Path | str) -> str:
    """`file:` + absolute path: ffmpeg reads it neither as an option ("-x.mp4") nor as a URL ("a:b")."""
    return "file:" + os.path.abspath(path)


def ffmpeg_binary(settings: Any) -> str:
    """FFMPEG_BINARY if set, else `ffmpeg` on PATH, else the static build bundled with imageio-ffmpeg."""
    configured = getattr(settings, "FFMPEG_BINARY", None)
    if configured:
        return str(configured)
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffprobe_binary(settings: Any) -> str | None:
    """FFPROBE_BINARY if set, else `ffprobe` on PATH, else None (probing then uses PyAV)."""
    configured = getattr(settings, "FFPROBE_BINARY", None)
    return str(configured) if configured else shutil.which("ffprobe")
