"""Sources: turn the user's `source` string into something a worker may read, and fetch it.

Three kinds are accepted, and nothing else:
- `upload://<id>/<name>`: a file uploaded through POST /upload (kept in storage under uploads/);
- `s3://bucket/key`: an object in S3, when the S3 storage backend is configured;
- a local path that, after resolving symlinks and "..", lies below one of LOCAL_SOURCE_ROOTS.
The string is untrusted: it is validated here, at submission and again in the worker.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from mediaflow.settings import Settings
from mediaflow.storage import ObjectNotFoundError, Storage, StorageError, TransferProgress
from mediaflow.storage.keys import UPLOAD_PREFIX, parse_s3_uri, upload_key

UPLOAD_SCHEME = "upload://"
S3_SCHEME = "s3://"
_UPLOAD_RE = re.compile(r"^upload://([0-9a-f]{32})/([A-Za-z0-9][A-Za-z0-9._-]{0,127})$")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class SourceError(ValueError):
    """The source is not acceptable; the message tells the user what is."""


@dataclass(frozen=True)
class Source:
    kind: Literal["local", "upload", "s3"]
    uri: str  # as given (local: the resolved path)
    name: str  # a safe file name, used to name the output
    path: Path | None = None  # local
    key: str | None = None  # upload: storage key


def storage_filename(name: str, default: str = "input") -> str:
    """A file name made of [A-Za-z0-9._-] only, without leading dots, at most 128 characters.
    Stem and extension are cleaned apart, so a name in another script keeps its extension
    ("видео.mp4" -> "input.mp4", not "mp4")."""
    path = PurePosixPath(PurePosixPath(name).name)
    suffix = _UNSAFE_NAME_CHARS.sub("", path.suffix[1:])[:16]
    stem = _UNSAFE_NAME_CHARS.sub("_", path.stem if suffix else path.name).strip("._-")[:100] or default
    return f"{stem}.{suffix}" if suffix else stem


def upload_source(filename: str) -> tuple[str, str]:
    """(source string, storage key) for a new upload of `filename`."""
    upload_id = uuid.uuid4().hex
    name = storage_filename(filename, default="upload")
    return f"{UPLOAD_SCHEME}{upload_id}/{name}", upload_key(upload_id, name)


def source_of_upload_key(key: str) -> str:
    """The upload:// source of a storage key under UPLOAD_PREFIX (the inverse of upload_source)."""
    return UPLOAD_SCHEME + key.removeprefix(UPLOAD_PREFIX)


def _accepted(settings: Settings) -> str:
    roots = ", ".join(str(root) for root in settings.source_roots) or "(none configured)"
    return f"an upload://… value from POST /upload, an s3://bucket/key URI, or a path under LOCAL_SOURCE_ROOTS ({roots})"


def parse_source(raw: str, settings: Settings, storage: Storage) -> Source:
    """Validate `raw` without touching the file system beyond resolving a local path."""
    if not raw or "\x00" in raw or any(ord(ch) < 32 for ch in raw):
        raise SourceError(f"source must be {_accepted(settings)}; got an empty or control-character value")
    if raw.startswith(UPLOAD_SCHEME):
        match = _UPLOAD_RE.match(raw)
        if not match:
            raise SourceError(f"malformed upload source {raw!r}; use the exact `source` value POST /upload returned")
        upload_id, name = match.groups()
        return Source("upload", raw, name, key=upload_key(upload_id, name))
    if raw.startswith(S3_SCHEME):
        if not storage.supports_s3_sources:
            raise SourceError(
                f"cannot read {raw!r}: S3 is not configured on this server "
                "(set STORAGE_BACKEND=s3 and the AWS_* settings), so use POST /upload or a local path instead"
            )
        try:
            _, key = parse_s3_uri(raw)
        except StorageError as exc:
            raise SourceError(f"malformed S3 source: {exc}") from exc
        return Source("s3", raw, storage_filename(key))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", raw):
        raise SourceError(f"unsupported source {raw!r}; source must be {_accepted(settings)}")
    return _local_source(raw, settings)


def _local_source(raw: str, settings: Settings) -> Source:
    roots = settings.source_roots
    given = Path(raw).expanduser()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, *(root / given for root in roots)]
    for candidate in candidates:
        try:
            # strict=True resolves every symlink and ".." before the containment check.
            resolved = candidate.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError, RuntimeError, OSError):
            continue
        if not any(resolved.is_relative_to(root) for root in roots):
            continue
        if not resolved.is_file():
            raise SourceError(f"source {raw!r} is not a regular file")
        return Source("local", str(resolved), storage_filename(resolved.name), path=resolved)
    raise SourceError(f"source {raw!r} was not found under the allowed roots; source must be {_accepted(settings)}")


async def check_source_exists(source: Source, storage: Storage) -> None:
    """At submission: an upload must exist. (Local paths were checked by parse_source; S3 objects
    are checked by the worker, which reports a missing object as the job's error.)"""
    if source.kind == "upload" and not await storage.exists(source.key):
        raise SourceError(f"no uploaded file {source.uri!r}; upload it with POST /upload first")


async def fetch_source(source: Source, workdir: Path, storage: Storage, progress: TransferProgress | None = None) -> Path:
    """Make the source readable as a local file for ffmpeg. Local sources are read in place."""
    if source.kind == "local":
        return source.path
    # A fixed name: ffmpeg picks some demuxers (HLS) by extension, so the user's name is not reused.
    dest = workdir / "source"
    try:
        if source.kind == "upload":
            await storage.get_file(source.key, dest, progress)
        else:
            await storage.fetch_uri(source.uri, dest, progress)
    except ObjectNotFoundError as exc:
        raise SourceError(f"source {source.uri!r} does not exist: {exc}") from exc
    return dest
