"""An output's files as the API lists them: path relative to the job's folder, size, MIME type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIME_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "m3u8": "application/vnd.apple.mpegurl",
    "ts": "video/mp2t",
    "mpd": "application/dash+xml",
    "m4s": "video/iso.segment",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "vtt": "text/vtt",
    "csv": "text/csv",
}


@dataclass(frozen=True)
class OutputFile:
    path: str  # "stream/720p/index.m3u8": relative to the job's folder, '/'-separated
    size: int
    mime_type: str


def mime_type(path: str) -> str:
    return MIME_TYPES.get(path.rpartition(".")[2].lower(), "application/octet-stream")


def list_files(directory: Path, *, prefix: str) -> list[OutputFile]:
    """Every regular file under `directory` (sorted), named `prefix/<relative path>`."""
    files = []
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file() and not p.is_symlink()):
        relative = f"{prefix}/{path.relative_to(directory).as_posix()}"
        files.append(OutputFile(relative, path.stat().st_size, mime_type(relative)))
    return files
