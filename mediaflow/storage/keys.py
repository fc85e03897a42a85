"""The one storage key layout, for every backend and every caller:

    uploads/<upload id>/<name>                     a file sent to POST /upload without API keys
    uploads/<owner tag>/<upload id>/<name>         ... with an API key: only that key's jobs find it
    <OUTPUT_PREFIX>/<job id>/<file>                a job's output and ffmpeg log
    <OUTPUT_PREFIX>/<job id>/.tasks/<file>         chunked encoding's pieces (removed when the job ends)
    .mediaflow/<name>                              MediaFlow's own state (the generated webhook secret)

The source a user sees is always `upload://<upload id>/<name>`: the owner tag comes from the key that
asks, so another key's upload id leads to a key that does not exist.

and the checks on keys and on `s3://bucket/key` URIs (user input), kept here so that no caller builds a
key by hand or parses a bucket name its own way.
"""

from __future__ import annotations

import hashlib
import re

from mediaflow.settings import Settings

from .base import StorageError

UPLOAD_PREFIX = "uploads/"
SYSTEM_PREFIX = ".mediaflow/"

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")


def validate_key(key: str) -> str:
    """Keys are produced by MediaFlow, but check anyway that one can never leave the root."""
    # Split the raw string: PurePosixPath would normalise "a//b" and "a/./b" away, and on S3 those
    # are different keys from "a/b".
    if not key or "\\" in key or any(part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(f"invalid storage key {key!r}")
    return key


def owner_tag(owner: str) -> str:
    """A key-safe, stable folder name for an API key's owner (owner names may hold any character)."""
    return "k" + hashlib.sha256(owner.encode()).hexdigest()[:24]


def upload_key(upload_id: str, name: str, owner: str | None = None) -> str:
    folder = "" if owner is None else owner_tag(owner) + "/"
    return f"{UPLOAD_PREFIX}{folder}{upload_id}/{name}"


def output_dir_prefix(settings: Settings) -> str:
    """The key prefix of every job's folder: "OUTPUT_PREFIX/", or "" when it is empty."""
    prefix = settings.OUTPUT_PREFIX.strip("/")
    return f"{prefix}/" if prefix else ""


def is_servers_own(settings: Settings, bucket: str, key: str) -> bool:
    """A key in OUTPUT_BUCKET under MediaFlow's own prefixes: uploads, outputs, the webhook secret. No
    tenant may read from there as a source or deliver there as a destination."""
    own = (UPLOAD_PREFIX, SYSTEM_PREFIX, output_dir_prefix(settings))
    return bucket == settings.OUTPUT_BUCKET and any(key.startswith(prefix) for prefix in own)


def bucket_entries_allow(entries: list[str], bucket: str, key: str) -> bool:
    """Whether an allow-list of `bucket` / `bucket/prefix` / `*` entries (S3_SOURCE_BUCKETS,
    S3_DESTINATION_BUCKETS) admits `key` in `bucket`."""
    for entry in entries:
        if entry == "*":
            return True
        allowed_bucket, _, prefix = entry.partition("/")
        if bucket == allowed_bucket and (not prefix or key.startswith(prefix.rstrip("/") + "/")):
            return True
    return False


def output_key(settings: Settings, job_id: str, filename: str) -> str:
    return f"{output_dir_prefix(settings)}{job_id}/{filename}"


TASKS_FOLDER = ".tasks"


def task_key(settings: Settings, job_id: str, filename: str) -> str:
    """Where a chunked job's split pieces and encoded chunks wait for the worker that needs them."""
    return output_key(settings, job_id, f"{TASKS_FOLDER}/{filename}")


def log_key(settings: Settings, job_id: str, parent_id: str | None = None) -> str:
    """A job's ffmpeg log; a task's waits in its job's `.tasks/` folder until the job joins them into its own."""
    return (
        output_key(settings, job_id, "ffmpeg.log")
        if parent_id is None
        else task_key(settings, parent_id, f"{job_id}.log")
    )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key), strictly: a source is user input."""
    if not uri.startswith("s3://"):
        raise StorageError(f"not an S3 URI: {uri!r}; expected s3://bucket/key")
    bucket, _, key = uri[len("s3://") :].partition("/")
    _check_bucket_name(bucket, uri)
    if not key or key.endswith("/"):
        raise StorageError(f"{uri!r} has no object key; expected s3://bucket/key")
    if len(key.encode()) > 1024 or any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise StorageError(f"invalid object key in {uri!r}")
    return bucket, key


def parse_s3_prefix(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix/` → (bucket, "prefix/"), strictly (a destination is user input): the prefix
    is "" or ends in "/", and has no "", "." or ".." segment that a server could fold into another."""
    if not uri.startswith("s3://"):
        raise StorageError(f"not an S3 URI: {uri!r}; expected s3://bucket/prefix/")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    _check_bucket_name(bucket, uri)
    prefix = prefix.removesuffix("/")
    if prefix:
        validate_key(prefix)
        if len(prefix.encode()) > 512 or any(ord(char) < 32 or ord(char) == 127 for char in prefix):
            raise StorageError(f"invalid prefix in {uri!r}")
    return bucket, f"{prefix}/" if prefix else ""


def _check_bucket_name(bucket: str, uri: str) -> None:
    if (
        not _BUCKET_NAME.fullmatch(bucket)
        or ".." in bucket
        or ".-" in bucket
        or "-." in bucket
        or _IP_ADDRESS.fullmatch(bucket)
    ):
        raise StorageError(
            f"invalid bucket name {bucket!r} in {uri!r}: 3-63 lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit"
        )
