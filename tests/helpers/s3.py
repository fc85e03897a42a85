"""Objects on the S3 test server (tests/servers/s3.py): put a source there, list what a job left."""

from __future__ import annotations

from pathlib import Path

import aioboto3

from mediaflow.aws import client_kwargs
from mediaflow.settings import Settings


async def put_source(settings: Settings, bucket: str, key: str, path: Path) -> str:
    """Upload `path` as `s3://bucket/key` (the bucket is created) and return that URI, a job's source."""
    async with aioboto3.Session().client("s3", **client_kwargs(settings, "s3")) as s3:
        await s3.create_bucket(Bucket=bucket)
        await s3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


async def bucket_keys(settings: Settings, prefix: str) -> list[str]:
    """The keys under `prefix` in OUTPUT_BUCKET, sorted, read straight from S3 (not through our storage)."""
    async with aioboto3.Session().client("s3", **client_kwargs(settings, "s3")) as s3:
        response = await s3.list_objects_v2(Bucket=settings.OUTPUT_BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))
