"""Which `s3://bucket/key` sources a job may read (S3_SOURCE_BUCKETS), and the one answer for every
source that cannot be read.

The server's S3 credentials reach more than any one tenant should: other buckets, and OUTPUT_BUCKET,
which holds every key's uploads and outputs. So a source must lie in a listed bucket (or below a listed
`bucket/prefix`), and never in OUTPUT_BUCKET's `uploads/`, `<OUTPUT_PREFIX>/` or `.mediaflow/` — a key
reaches its own uploads through `upload://` (owner-checked), and outputs through GET /download.

"Not allowed", "no such key", "no such bucket" and "access denied" all get the same text, at submission
and in the job's error, so a tenant cannot use sources to learn which buckets or objects exist.
"""

from __future__ import annotations

from mediaflow.settings import Settings
from mediaflow.storage import StorageError
from mediaflow.storage.keys import bucket_entries_allow, is_servers_own, validate_key


def s3_source_allowed(bucket: str, key: str, settings: Settings) -> bool:
    try:
        validate_key(key)  # S3 servers that map keys to files fold "a//b", "/a" and "a\\b" into "a/b"
    except StorageError:
        return False
    if is_servers_own(settings, bucket, key):
        return False
    return bucket_entries_allow(settings.s3_source_buckets, bucket, key)


def where_s3_sources_may_come_from(settings: Settings) -> str:
    entries = settings.s3_source_buckets
    if not entries:
        return "this server reads no s3:// sources (S3_SOURCE_BUCKETS); upload the file with POST /upload"
    if "*" in entries:
        return "s3:// sources may come from any bucket this server can read, except its own uploads and outputs"
    listed = ", ".join(f"s3://{entry}/" if "/" in entry else f"s3://{entry}/…" for entry in entries)
    return f"s3:// sources may come from {listed}"


def unreadable_s3_source(uri: str, settings: Settings) -> str:
    """The one message for an s3:// source that does not exist, may not be read, or is refused by S3."""
    return f"cannot read {uri}: no such object, or not one this server may read; {where_s3_sources_may_come_from(settings)}"
