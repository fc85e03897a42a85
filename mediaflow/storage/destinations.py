"""A job's `destination` ("s3://bucket/prefix/"): where its files are delivered instead of
`OUTPUT_PREFIX/<job_id>/` in the server's own storage, and which destinations are allowed.

The layout under the prefix is today's: `<prefix><job_id>/<file>`. Which buckets a job may write to is
S3_DESTINATION_BUCKETS (`bucket` or `bucket/prefix` entries, `*`, `none`), like S3_SOURCE_BUCKETS for
reading: the server's credentials reach more than any one tenant should. OUTPUT_BUCKET's own folders
(uploads, every job's outputs, MediaFlow's state) are never a destination, whatever is listed.

`job_storage(storage, settings, job)` is the one seam: the storage a job's run and its downloads go
through. Only S3 is built; another scheme (gs://, azure://) would be another `Storage.in_bucket`-like
opening here, with no change to its callers.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediaflow.settings import Settings

from .base import Storage, StorageError
from .delivery import DeliveringStorage
from .keys import bucket_entries_allow, is_servers_own, output_dir_prefix, parse_s3_prefix

_FORM = "a destination is s3://bucket/prefix/, in a place S3_DESTINATION_BUCKETS allows"


class DestinationError(ValueError):
    """The destination is refused; the message says what is accepted."""


@dataclass(frozen=True)
class Destination:
    bucket: str
    prefix: str  # "" or ending in "/"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def folder(self, job_id: str) -> str:
        """The key prefix of a job's files in the destination bucket."""
        return f"{self.prefix}{job_id}/"

    def location(self, job_id: str, path: str) -> str:
        return f"s3://{self.bucket}/{self.folder(job_id)}{path}"


def parse_destination(raw: str) -> Destination:
    """The destination a job record carries (checked at submission; parsed again wherever it is used)."""
    if not raw.startswith("s3://"):
        raise DestinationError(
            f"destination must be an s3://bucket/prefix/ URI (got {raw[:64]!r}); S3_DESTINATION_BUCKETS lists "
            "the buckets this server may deliver to"
        )
    if not raw.isprintable():  # control characters, and lone surrogates (which no UTF-8 encoder takes)
        raise DestinationError(f"destination has a control character or a lone surrogate ({_FORM})")
    if any(part in (".", "..") for part in raw[len("s3://") :].split("/")):
        raise DestinationError(f"destination {raw!r} has a '.' or '..' segment; name the prefix plainly ({_FORM})")
    try:
        bucket, prefix = parse_s3_prefix(raw)
    except StorageError as exc:
        raise DestinationError(f"destination: {exc} ({_FORM})") from exc
    return Destination(bucket, prefix)


def check_destination(raw: str, settings: Settings, storage: Storage) -> Destination:
    """At submission: the destination is well formed, allowed, and this server can deliver there."""
    destination = parse_destination(raw)
    if storage.in_bucket(destination.bucket) is None:
        raise DestinationError(
            "destination needs S3 storage (STORAGE_BACKEND=s3) on the server; on this one, leave it out "
            "and fetch the results with GET /download or GET /jobs/{id}/files"
        )
    if not destination_allowed(destination, settings):
        raise DestinationError(
            f"cannot deliver to {destination.uri}: not a place this server may write to; {_where_allowed(settings)}"
        )
    return destination


def destination_allowed(destination: Destination, settings: Settings) -> bool:
    if is_servers_own(settings, destination.bucket, destination.prefix):
        return False  # other tenants' uploads and outputs, and the webhook secret
    return bucket_entries_allow(settings.s3_destination_buckets, destination.bucket, destination.prefix)


def _where_allowed(settings: Settings) -> str:
    entries = settings.s3_destination_buckets
    if not entries:
        return "this server delivers to no bucket (S3_DESTINATION_BUCKETS); leave destination out"
    if "*" in entries:
        return "any bucket this server can write to is allowed (S3_DESTINATION_BUCKETS=*), except its own folders"
    listed = ", ".join(f"s3://{entry}/" if "/" in entry else f"s3://{entry}/…" for entry in entries)
    return f"destinations may be {listed} (S3_DESTINATION_BUCKETS)"


def job_storage(storage: Storage, settings: Settings, job_id: str, destination: str | None) -> Storage:
    """The storage a job's files go through: `storage` itself, or with a destination, a view in which
    the job's folder (`OUTPUT_PREFIX/<job_id>/`, chunk pieces excepted) is the destination's.
    `job_id` is the job that owns the folder (a task's parent)."""
    if not destination:
        return storage
    parsed = parse_destination(destination)
    delivered = storage.in_bucket(parsed.bucket)
    if delivered is None:  # the server's storage changed since submission
        raise DestinationError(f"cannot deliver to {parsed.uri}: this server's storage is no longer S3")
    home_folder = f"{output_dir_prefix(settings)}{job_id}/"
    return DeliveringStorage(storage, delivered, home_folder, parsed.folder(job_id), parsed.uri)
