"""S3 storage (AWS, or any S3-compatible server via S3_ENDPOINT_URL / AWS_ENDPOINT_URL).

Objects live in OUTPUT_BUCKET under their storage key; users see `s3://bucket/key`. Every transfer
streams: uploads go through multipart uploads holding one part in memory, downloads copy the
response body chunk by chunk, so memory stays flat on multi-GB videos. A write becomes visible only
when its single PUT or its multipart upload completes; a failed or oversized upload is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from mediaflow.aws import client_kwargs, probe_client_kwargs
from mediaflow.settings import Settings

from .base import (
    AccessDeniedError,
    ByteRange,
    ObjectNotFoundError,
    PermanentStorageError,
    RangeNotSatisfiableError,
    StorageError,
    StorageUnavailableError,
    StoredObject,
    TransferProgress,
    UploadTooLargeError,
    content_disposition,
)
from .keys import parse_s3_uri, validate_key

_PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MB for every part but the last
_CHUNK_SIZE = 1024 * 1024
# upload_file: at most 2 parts queued + 2 in flight, so a big local file never sits in memory.
_TRANSFER = TransferConfig(
    multipart_threshold=_PART_SIZE, multipart_chunksize=_PART_SIZE, max_concurrency=2, max_io_queue=2
)
_PROBE_TIMEOUT_S = 10.0

_NETWORK_ERRORS = (BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError)
_RETRYABLE_4XX = {408, 409, 429}  # request timeout, a conflicting operation in progress, throttled
_TRANSIENT_CODES = {
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
}


def _translate_error(exc: Exception, what: str) -> StorageError:
    if not isinstance(exc, ClientError):  # connection refused/reset, timeouts, a body cut short
        return StorageError(f"{what}: {exc}", transient=True)
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in ("NoSuchKey", "NoSuchBucket", "NotFound", "404") or status == 404:
        return ObjectNotFoundError(f"{what}: it does not exist ({code or status})")
    if code in ("AccessDenied", "Forbidden", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
        return AccessDeniedError(
            f"{what}: access denied ({code or status}); check the AWS credentials and the bucket policy"
        )
    detail = f"{code} {error.get('Message', '')}".strip()
    if code in _TRANSIENT_CODES or status >= 500 or status in _RETRYABLE_4XX:
        return StorageError(f"{what}: {detail}", transient=True)
    if 400 <= status < 500:  # e.g. 400 InvalidRequest: the same request gets the same answer
        return PermanentStorageError(f"{what}: {detail}")
    return StorageError(f"{what}: {detail}")


@contextlib.contextmanager
def _s3_errors(what: str):
    try:
        yield
    except (ClientError, *_NETWORK_ERRORS) as exc:
        raise _translate_error(exc, what) from exc


class _BodyChunks:
    """The chunks of a get_object body. Reaching the end, failing or `aclose()` (also before the
    first chunk) releases the HTTP connection."""

    def __init__(self, body: Any, chunk_size: int, what: str) -> None:
        self._body, self._chunk_size, self._what = body, chunk_size, what

    def __aiter__(self) -> _BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            with _s3_errors(self._what):
                chunk = await self._body.read(self._chunk_size)
        except BaseException:
            self._body.close()
            raise
        if not chunk:
            self._body.close()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._body.close()


def _content_range(value: str | None) -> tuple[int, int, int] | None:
    """(first, last, total) of a `bytes first-last/total` Content-Range; None if absent (whole object)."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", value or "")
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


class S3Storage:
    supports_s3_sources = True

    def __init__(self, settings: Settings, stack: AsyncExitStack, client: Any, probe: Any) -> None:
        self._settings = settings
        self._stack = stack
        self._client = client  # transfers, with the configured retries
        self._probe = probe  # health checks, no retries
        self.bucket = settings.OUTPUT_BUCKET
        self._endpoint = settings.s3_endpoint or f"AWS S3 ({settings.AWS_REGION})"

    @classmethod
    async def open(cls, settings: Settings) -> S3Storage:
        """Open the clients and create OUTPUT_BUCKET if absent. StorageUnavailableError within
        seconds if the endpoint cannot be reached or the bucket cannot be used."""
        stack = AsyncExitStack()
        try:
            session = aioboto3.Session()
            kwargs = client_kwargs(settings, "s3")
            client = await stack.enter_async_context(session.client("s3", **kwargs))
            probe = await stack.enter_async_context(session.client("s3", **probe_client_kwargs(settings, "s3")))
            storage = cls(settings, stack, client, probe)
            await storage._ensure_bucket()
        except BaseException:
            await stack.aclose()
            raise
        return storage

    def _unavailable(self, detail: object) -> StorageUnavailableError:
        return StorageUnavailableError(
            f"S3 bucket {self.bucket!r} at {self._endpoint} is not usable: {detail}; check S3_ENDPOINT_URL "
            "(or AWS_ENDPOINT_URL), AWS_ACCESS_KEY / AWS_SECRET_ACCESS_KEY and OUTPUT_BUCKET"
        )

    async def _head_bucket(self) -> bool:
        """True if the bucket exists, False if not; StorageUnavailableError for anything else."""
        try:
            await asyncio.wait_for(self._probe.head_bucket(Bucket=self.bucket), _PROBE_TIMEOUT_S)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise self._unavailable(_translate_error(exc, "HEAD bucket")) from exc
        except TimeoutError as exc:
            raise self._unavailable(f"no answer within {_PROBE_TIMEOUT_S:g} s") from exc
        except _NETWORK_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return True

    async def _ensure_bucket(self) -> None:
        if await self._head_bucket():
            return
        region = self._settings.AWS_REGION
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            await self._client.create_bucket(Bucket=self.bucket, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":  # a concurrent open won
                raise self._unavailable(_translate_error(exc, "cannot create the bucket")) from exc

    # --- keys and locations --------------------------------------------------------------------

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{validate_key(key)}"

    def key_for(self, location: str) -> str | None:
        prefix = f"s3://{self.bucket}/"
        if not location.startswith(prefix):
            return None
        try:
            return validate_key(location[len(prefix) :])
        except StorageError:
            return None

    # --- writing -------------------------------------------------------------------------------

    async def put_file(self, key: str, path: Path, content_type: str, progress: TransferProgress | None = None) -> str:
        where = self.location(key)
        total, done = Path(path).stat().st_size, 0

        def sent(chunk_bytes: int) -> None:  # the transfer manager reports increments
            nonlocal done
            done += chunk_bytes
            if progress is not None:
                progress(done, total)

        with _s3_errors(f"cannot upload {path} to {where}"):
            await self._client.upload_file(
                str(path), self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=_TRANSFER, Callback=sent
            )
        return where

    async def put_stream(self, key: str, chunks, content_type: str, max_bytes: int) -> int:
        where = self.location(key)
        target = {"Bucket": self.bucket, "Key": key}
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []

        async def upload_part(data: bytes) -> None:
            number = len(parts) + 1
            response = await self._client.upload_part(**target, UploadId=upload_id, PartNumber=number, Body=data)
            parts.append({"ETag": response["ETag"], "PartNumber": number})

        try:
            with _s3_errors(f"cannot upload to {where}"):
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise UploadTooLargeError(f"upload exceeds the limit of {max_bytes} bytes")
                    buffer += chunk
                    while len(buffer) >= _PART_SIZE:  # only one part is ever buffered
                        if upload_id is None:
                            created = await self._client.create_multipart_upload(**target, ContentType=content_type)
                            upload_id = created["UploadId"]
                        part = bytes(memoryview(buffer)[:_PART_SIZE])
                        del buffer[:_PART_SIZE]
                        await upload_part(part)
                if upload_id is None:  # small: one PUT
                    await self._client.put_object(**target, Body=bytes(buffer), ContentType=content_type)
                    return size
                if buffer:
                    await upload_part(bytes(buffer))
                await self._client.complete_multipart_upload(
                    **target, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            if upload_id is not None:
                # Drop the uploaded parts: nothing of a failed or oversized upload stays behind.
                with contextlib.suppress(ClientError, *_NETWORK_ERRORS):
                    await self._client.abort_multipart_upload(**target, UploadId=upload_id)
            raise
        return size

    async def put_new(self, key: str, data: bytes, content_type: str) -> bool:
        with _s3_errors(f"cannot write {self.location(key)}"):
            try:
                # A conditional write (AWS S3 since 2024, MinIO, SeaweedFS): 412 if the key exists.
                await self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*"
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False  # another writer won
                raise
        return True

    # --- reading -------------------------------------------------------------------------------

    async def _download(self, bucket: str, key: str, dest: Path, what: str, progress: TransferProgress | None) -> None:
        dest = Path(dest)
        with _s3_errors(what):
            response = await self._client.get_object(Bucket=bucket, Key=key)
        chunks = _BodyChunks(response["Body"], _CHUNK_SIZE, what)
        total, done = response.get("ContentLength"), 0
        try:
            with open(dest, "wb") as out:  # noqa: ASYNC230  (opening is cheap; reads and writes go through threads or are small)
                async for chunk in chunks:
                    await asyncio.to_thread(out.write, chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except BaseException:
            await chunks.aclose()
            dest.unlink(missing_ok=True)  # never leave a partial copy that looks complete
            raise

    async def get_file(self, key: str, dest: Path, progress: TransferProgress | None = None) -> None:
        location = self.location(key)
        await self._download(self.bucket, key, dest, f"cannot read {location}", progress)

    async def open_read(
        self, key: str, chunk_size: int = 1024 * 1024, byte_range: ByteRange | None = None
    ) -> StoredObject:
        what = f"cannot read {self.location(key)}"
        extra = {"Range": byte_range.header_value()} if byte_range else {}
        with _s3_errors(what):
            try:
                response = await self._client.get_object(Bucket=self.bucket, Key=key, **extra)
            except ClientError as exc:
                if byte_range is None or exc.response.get("Error", {}).get("Code") != "InvalidRange":
                    raise
                total = await self._size(key)
                message = f"range {byte_range.header_value()} is outside the object's {total} bytes"
                raise RangeNotSatisfiableError(message, total) from exc
        served = _content_range(response.get("ContentRange")) if byte_range else None
        return StoredObject(
            size=response["ContentLength"],
            content_type=response.get("ContentType") or "application/octet-stream",
            chunks=_BodyChunks(response["Body"], chunk_size, what),
            range=served[:2] if served else None,
            total_size=served[2] if served else response["ContentLength"],
        )

    async def _size(self, key: str) -> int:
        return (await self._client.head_object(Bucket=self.bucket, Key=key))["ContentLength"]

    async def fetch_uri(self, uri: str, dest: Path, progress: TransferProgress | None = None) -> None:
        bucket, key = parse_s3_uri(uri)
        await self._download(bucket, key, dest, f"cannot read {uri}", progress)

    async def presigned_url(self, key: str, filename: str) -> str | None:
        params = {
            "Bucket": self.bucket,
            "Key": validate_key(key),
            "ResponseContentDisposition": content_disposition("attachment", filename),
        }
        return await self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self._settings.S3_PRESIGN_EXPIRES_S
        )

    async def exists(self, key: str) -> bool:
        try:
            with _s3_errors(f"cannot check {self.location(key)}"):
                await self._client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFoundError:
            return False
        return True

    async def delete(self, key: str) -> None:
        with _s3_errors(f"cannot delete {self.location(key)}"):
            await self._client.delete_object(Bucket=self.bucket, Key=key)

    async def list_keys(self, prefix: str, modified_before: datetime, limit: int) -> list[str]:
        found: list[str] = []
        with _s3_errors(f"cannot list s3://{self.bucket}/{prefix}"):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            async for page in pages:
                for item in page.get("Contents", []):
                    if item["LastModified"] < modified_before:
                        found.append(item["Key"])
                        if len(found) >= limit:
                            return found
        return found

    def in_bucket(self, bucket: str) -> S3Storage:
        """This storage on `bucket` (a job's destination): the same clients, another bucket. The copy
        must not be closed; the clients belong to this one."""
        view = copy.copy(self)
        view.bucket = bucket
        return view

    # --- health and shutdown -------------------------------------------------------------------

    async def ping(self) -> None:
        if not await self._head_bucket():
            raise self._unavailable("the bucket does not exist")

    async def close(self) -> None:
        await self._stack.aclose()
