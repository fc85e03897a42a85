"""Sources: turn the user's `source` string into something a worker may read, and fetch it.

Four kinds are accepted, and nothing else:
- `upload://<id>/<name>`: a file uploaded through POST /upload with the same API key (kept in storage
  under uploads/, in a folder of that key's own: storage/keys.py);
- `s3://bucket/key`: an object in S3, when the S3 storage backend is configured, in a place
  S3_SOURCE_BUCKETS allows (s3_sources.py);
- a local path that, after resolving symlinks and "..", lies below one of LOCAL_SOURCE_ROOTS;
- an `http://` or `https://` URL (a public link, a presigned URL), downloaded by the worker with the
  SSRF checks and fault handling of url_sources.py.
The string is untrusted: it is validated here, at submission and again in the worker. Errors name what
the user sent and what is accepted in their terms (`media/`), never a path on the server.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from mediaflow.logs import get_logger
from mediaflow.media.errors import SourceError
from mediaflow.media.s3_sources import s3_source_allowed, unreadable_s3_source
from mediaflow.media.url_sources import check_url_source, check_url_source_shape, download_url_source, shown
from mediaflow.settings import Settings
from mediaflow.storage import ObjectNotFoundError, PermanentStorageError, Storage, StorageError, TransferProgress
from mediaflow.storage.keys import parse_s3_uri, upload_key

UPLOAD_SCHEME = "upload://"
S3_SCHEME = "s3://"
_URL_RE = re.compile(r"^https?://", re.IGNORECASE)
_UPLOAD_RE = re.compile(r"^upload://([0-9a-f]{32})/([A-Za-z0-9][A-Za-z0-9._-]{0,127})$")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")

log = get_logger("sources")


@dataclass(frozen=True)
class Source:
    kind: Literal["local", "upload", "s3", "url"]
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


def upload_source(filename: str, owner: str | None) -> tuple[str, str]:
    """(source string, storage key) for a new upload of `filename` by `owner` (None: no API keys)."""
    upload_id = uuid.uuid4().hex
    name = storage_filename(filename, default="upload")
    return f"{UPLOAD_SCHEME}{upload_id}/{name}", upload_key(upload_id, name, owner)


def upload_key_of(source: str, owner: str | None) -> str | None:
    """The storage key an upload:// source stands for when `owner` names it; None for other sources."""
    match = _UPLOAD_RE.match(source)
    return upload_key(match[1], match[2], owner) if match else None


def redacted(source: str) -> str:
    """The source for logs: an upload's id left out (`upload://…/clip.mp4`), a URL's query (a presigned
    URL's signature) too."""
    if _URL_RE.match(source):
        return shown(source)
    match = _UPLOAD_RE.match(source)
    return f"{UPLOAD_SCHEME}…/{match.group(2)}" if match else source


def root_names(settings: Settings) -> str:
    """LOCAL_SOURCE_ROOTS as a user may name them ("media/"), never their absolute server paths."""
    return ", ".join(f"{root.name or root}/" for root in settings.LOCAL_SOURCE_ROOTS) or "(none)"


def _s3_sources_on(settings: Settings) -> bool:
    return settings.STORAGE_BACKEND == "s3" and bool(settings.s3_source_buckets)


def _accepted(settings: Settings) -> str:
    s3 = ", an s3://bucket/key URI" if _s3_sources_on(settings) else ""
    return f"an upload://… value from POST /upload{s3}, an http(s):// URL, or a file under {root_names(settings)}"


def parse_source(raw: str, settings: Settings, storage: Storage, owner: str | None = None) -> Source:
    """Validate `raw` (sent by `owner`) without touching the file system beyond resolving a local path."""
    if not raw or "\x00" in raw or any(ord(ch) < 32 for ch in raw):
        raise SourceError(f"source must be {_accepted(settings)}; got an empty or control-character value")
    if raw.startswith(UPLOAD_SCHEME):
        key = upload_key_of(raw, owner)
        if key is None:
            raise SourceError(f"malformed upload source {raw!r}; use the exact `source` value POST /upload returned")
        return Source("upload", raw, key.rsplit("/", 1)[1], key=key)
    if raw.startswith(S3_SCHEME):
        if not storage.supports_s3_sources:
            raise SourceError(
                f"cannot read {raw!r}: S3 is not configured on this server, so use POST /upload or a file "
                f"under {root_names(settings)}"
            )
        try:
            bucket, key = parse_s3_uri(raw)
        except StorageError as exc:
            raise SourceError(f"malformed S3 source: {exc}") from exc
        if not s3_source_allowed(bucket, key, settings):
            raise SourceError(unreadable_s3_source(raw, settings))
        return Source("s3", raw, storage_filename(key))
    if _URL_RE.match(raw):
        parsed = check_url_source_shape(raw, settings)  # the host's addresses: check_source_exists
        return Source("url", raw, storage_filename(parsed.path.rsplit("/", 1)[-1]))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", raw):
        raise SourceError(f"unsupported source {raw!r}; source must be {_accepted(settings)}")
    return _local_source(raw, settings)


def _local_source(raw: str, settings: Settings) -> Source:
    roots = settings.source_roots
    given = Path(raw)  # never expanduser(): "~" in a user's string does not mean a home on this server
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
            raise SourceError(f"{raw}: not a regular file")
        return Source("local", str(resolved), storage_filename(resolved.name), path=resolved)
    s3 = ", or give an s3://bucket/key URI" if _s3_sources_on(settings) else ""
    raise SourceError(
        f"{raw}: the server has no such file under {root_names(settings)} (upload the file with POST /upload{s3})"
    )


def no_such_upload(source: str) -> str:
    # The same words for an upload that never existed, was removed, or belongs to another API key.
    return f"no uploaded file {source!r} for this API key; upload it with POST /upload first"


def _upload_key(source: Source) -> str:
    assert source.key is not None, "parse_source gives every upload source its storage key"
    return source.key


async def check_source_exists(source: Source, storage: Storage, settings: Settings | None = None) -> None:
    """At submission: an upload must exist, a URL's host must resolve to addresses a source may come
    from (with `settings`). Local paths were checked by parse_source; S3 objects and what a URL serves
    are checked by the worker, which reports a missing object as the job's error."""
    if source.kind == "upload" and not await storage.exists(_upload_key(source)):
        raise SourceError(no_such_upload(source.uri))
    if source.kind == "url" and settings is not None:
        await check_url_source(source.uri, settings)


async def fetch_source(
    source: Source, workdir: Path, storage: Storage, settings: Settings, progress: TransferProgress | None = None
) -> Path:
    """Make the source readable as a local file for ffmpeg. Local sources are read in place."""
    if source.kind == "local":
        assert source.path is not None, "parse_source gives every local source its path"
        return source.path
    # A fixed name: ffmpeg picks some demuxers (HLS) by extension, so the user's name is not reused.
    dest = workdir / "source"
    if source.kind == "url":
        await download_url_source(source.uri, dest, settings, progress)
        return dest
    try:
        if source.kind == "upload":
            await storage.get_file(_upload_key(source), dest, progress)
        else:
            await storage.fetch_uri(source.uri, dest, progress)
    except (ObjectNotFoundError, PermanentStorageError) as exc:
        if source.kind == "upload" and isinstance(exc, ObjectNotFoundError):
            raise SourceError(no_such_upload(source.uri)) from exc
        if source.kind != "s3":
            raise  # our own storage refusing us (credentials, policy): for the operator, not the user
        # No such key, no such bucket, access denied, a refused request: one answer, no oracle. The
        # detail stays in the server log.
        log.info("source.unreadable", source=source.uri, detail=str(exc))
        raise SourceError(unreadable_s3_source(source.uri, settings)) from exc
    return dest
