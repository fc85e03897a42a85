"""One contract for every Storage backend (local directory, S3 on a real SeaweedFS server), plus
what only one of them does: s3:// sources, presigned URLs, and flat memory on big objects."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mediaflow.settings import Settings
from mediaflow.storage import (
    ByteRange,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
    StorageError,
    StorageUnavailableError,
    UploadTooLargeError,
    open_storage,
)
from mediaflow.storage.s3 import S3Storage
from tests.servers.process import free_port

MB = 1024 * 1024
s3_only = pytest.mark.parametrize("backend", [pytest.param("s3", marks=pytest.mark.backend)], indirect=True)
local_only = pytest.mark.parametrize("backend", ["local"], indirect=True)
needs_s3 = pytest.mark.backend  # S3-only tests that open their own storage


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.backend)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings(backend, request, tmp_path) -> Settings:
    if backend == "s3":
        return Settings(_env_file=None, **request.getfixturevalue("s3_settings"))
    return Settings(_env_file=None, STORAGE_BACKEND="local", LOCAL_STORAGE_DIR=tmp_path / "storage")


@pytest.fixture
async def storage(settings):
    storage = await open_storage(settings)
    yield storage
    await storage.close()


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking content (so a swapped or dropped part changes the md5)."""
    block = hashlib.sha256(f"{seed}".encode()).digest() * 1024  # 32 KB
    return (block * (size // len(block) + 1))[:size]


async def generate(total: int, chunk: int = MB):
    """An upload arriving in chunks, like a request body; never the whole object in memory."""
    for index, start in enumerate(range(0, total, chunk)):
        yield pattern(min(chunk, total - start), seed=index)


def md5_of_stream(total: int, chunk: int = MB) -> str:
    digest = hashlib.md5()
    for index, start in enumerate(range(0, total, chunk)):
        digest.update(pattern(min(chunk, total - start), seed=index))
    return digest.hexdigest()


def md5_of_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(MB):
            digest.update(block)
    return digest.hexdigest()


# --- the contract ------------------------------------------------------------------------------


async def test_put_file_get_file_round_trip(storage, tmp_path):
    source = tmp_path / "in.mp4"
    source.write_bytes(pattern(9 * MB + 123))  # above the 8 MB multipart threshold on S3
    location = await storage.put_file("processed/job1/out.mp4", source, "video/mp4")
    assert location == storage.location("processed/job1/out.mp4")
    copy = tmp_path / "copy.mp4"
    await storage.get_file("processed/job1/out.mp4", copy)
    assert md5_of_file(copy) == md5_of_file(source)


def assert_reports_progress(reports: list[tuple[int, int | None]], size: int) -> None:
    assert len(reports) >= 2, f"several progress reports for a {size}-byte transfer: {reports}"
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == size and {t for _, t in reports} == {size}


async def test_transfers_report_progress(storage, tmp_path):
    size = 9 * MB + 123
    source = tmp_path / "in.mp4"
    source.write_bytes(pattern(size))
    uploaded: list = []
    await storage.put_file("processed/job1/out.mp4", source, "video/mp4", lambda d, t: uploaded.append((d, t)))
    assert_reports_progress(uploaded, size)
    downloaded: list = []
    await storage.get_file("processed/job1/out.mp4", tmp_path / "copy.mp4", lambda d, t: downloaded.append((d, t)))
    assert_reports_progress(downloaded, size)


async def test_location_and_key_for_are_inverse(storage):
    key = "processed/job-42/clip.mp4"
    assert storage.key_for(storage.location(key)) == key
    assert storage.key_for("s3://someone-elses-bucket/processed/job-42/clip.mp4") is None
    assert storage.key_for("/definitely/not/our/storage/clip.mp4") is None


@pytest.mark.parametrize("size", [0, 1, 12 * MB], ids=["empty", "1-byte", "12MB-multipart"])
async def test_put_stream_round_trip(storage, tmp_path, size):
    key = f"uploads/{uuid.uuid4().hex}/clip.bin"
    assert await storage.put_stream(key, generate(size), "application/octet-stream", max_bytes=size + 1) == size
    copy = tmp_path / "copy.bin"
    await storage.get_file(key, copy)
    assert copy.stat().st_size == size
    assert md5_of_file(copy) == md5_of_stream(size)


async def test_put_stream_over_the_limit_leaves_nothing_behind(storage, backend):
    key = "uploads/too-big/clip.mp4"
    with pytest.raises(UploadTooLargeError, match=str(10 * MB)):
        # 12 MB against 10 MB: on S3 the first 8 MB part was already uploaded when the limit hits.
        await storage.put_stream(key, generate(12 * MB), "video/mp4", max_bytes=10 * MB)
    assert not await storage.exists(key)
    if backend == "s3":
        uploads = await storage._client.list_multipart_uploads(Bucket=storage.bucket)
        assert not uploads.get("Uploads"), "the multipart upload was not aborted"


async def test_open_read_streams_content_with_size_and_type(storage):
    content = pattern(3 * MB + 5)
    await storage.put_stream("processed/j/out.mp4", generate(len(content), chunk=len(content)), "video/mp4", 10 * MB)
    stored = await storage.open_read("processed/j/out.mp4", chunk_size=256 * 1024)
    assert stored.size == len(content)
    assert stored.content_type == "video/mp4"
    chunks = [chunk async for chunk in stored.chunks]
    assert len(chunks) > 1 and all(len(chunk) <= 256 * 1024 for chunk in chunks)
    assert b"".join(chunks) == content


@pytest.mark.parametrize(
    "header,expected",
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=100-", (100, MB + 6)),
        ("bytes=-7", (MB, MB + 6)),
        ("bytes=1000-99999999", (1000, MB + 6)),
        ("bytes=5-5", (5, 5)),
    ],
)
async def test_open_read_of_a_byte_range(storage, header, expected):
    content = pattern(MB + 7)
    await storage.put_stream("processed/j/out.mp4", generate(len(content), chunk=len(content)), "video/mp4", 10 * MB)
    stored = await storage.open_read("processed/j/out.mp4", chunk_size=64 * 1024, byte_range=ByteRange.parse(header))
    first, last = expected
    assert stored.range == expected and stored.total_size == len(content) and stored.size == last - first + 1
    assert b"".join([chunk async for chunk in stored.chunks]) == content[first : last + 1]


async def test_open_read_of_a_range_past_the_end(storage):
    await storage.put_stream("processed/j/out.mp4", generate(1000), "video/mp4", 10 * MB)
    with pytest.raises(RangeNotSatisfiableError) as caught:
        await storage.open_read("processed/j/out.mp4", byte_range=ByteRange.parse("bytes=1000-"))
    assert caught.value.total_size == 1000


@pytest.mark.parametrize(
    "header", [None, "", "bytes=", "bytes=-", "bytes=9-3", "bytes=0-1,5-9", "items=0-1", "bytes=a-b"]
)
def test_range_headers_that_mean_the_whole_object(header):
    assert ByteRange.parse(header) is None


async def test_open_read_can_be_closed_early(storage):
    await storage.put_stream("processed/j/out.mp4", generate(2 * MB), "video/mp4", 10 * MB)
    stored = await storage.open_read("processed/j/out.mp4", chunk_size=64 * 1024)
    first = await anext(stored.chunks)
    assert 0 < len(first) <= 64 * 1024  # chunk_size is an upper bound: the network may hand over less
    await stored.chunks.aclose()  # a client that went away mid-download
    stored = await storage.open_read("processed/j/out.mp4")
    await stored.chunks.aclose()  # closed before the first chunk
    assert await storage.exists("processed/j/out.mp4")


async def test_exists_and_delete(storage):
    key = "logs/job7/ffmpeg.log"
    assert not await storage.exists(key)
    await storage.put_stream(key, generate(10), "text/plain", 100)
    assert await storage.exists(key)
    await storage.delete(key)
    assert not await storage.exists(key)
    await storage.delete(key)  # deleting what is gone is fine


async def test_list_keys_finds_old_objects_under_a_prefix(storage, tmp_path):
    source = tmp_path / "obj.bin"
    source.write_bytes(b"kept for a while")
    prefix = f"uploads-{uuid.uuid4().hex}/"  # the S3 bucket is shared by the session's tests
    keys = {f"{prefix}{i}/clip.mp4" for i in range(3)}
    for key in keys | {f"processed-{uuid.uuid4().hex}/other.mp4"}:
        await storage.put_file(key, source, "video/mp4")
    now = datetime.now(UTC)
    assert set(await storage.list_keys(prefix, now + timedelta(hours=1), limit=10)) == keys
    assert await storage.list_keys(prefix, now - timedelta(hours=1), limit=10) == [], "all newer than that"
    assert len(await storage.list_keys(prefix, now + timedelta(hours=1), limit=2)) == 2
    assert await storage.list_keys(f"nothing-{uuid.uuid4().hex}/", now + timedelta(hours=1), limit=10) == []
    for key in keys:
        await storage.delete(key)
    assert await storage.list_keys(prefix, now + timedelta(hours=1), limit=10) == []


async def test_missing_key_raises_object_not_found(storage, tmp_path):
    dest = tmp_path / "never.mp4"
    with pytest.raises(ObjectNotFoundError):
        await storage.get_file("processed/nothing/here.mp4", dest)
    assert not dest.exists()
    with pytest.raises(ObjectNotFoundError):
        await storage.open_read("processed/nothing/here.mp4")


@pytest.mark.parametrize("key", ["../x", "/abs", "", "a/../../b", "..", "a\\b"])
async def test_invalid_keys_are_rejected(storage, tmp_path, key):
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.location(key)
    with pytest.raises(StorageError, match="invalid storage key"):
        await storage.put_stream(key, generate(10), "text/plain", 100)
    with pytest.raises(StorageError, match="invalid storage key"):
        await storage.get_file(key, tmp_path / "out")
    with pytest.raises(StorageError, match="invalid storage key"):
        await storage.open_read(key)


async def test_ping(storage):
    await storage.ping()


async def test_get_file_of_a_big_object_keeps_memory_flat(storage, tmp_path):
    size = 200 * MB
    assert await storage.put_stream("big/video.mp4", generate(size), "video/mp4", max_bytes=size) == size
    await storage.get_file("big/video.mp4", tmp_path / "warmup")  # connection pools, threads, buffers
    (tmp_path / "warmup").unlink()

    before = vm_kb("VmRSS")
    peak_reset = reset_peak_rss()
    started = time.monotonic()
    await storage.get_file("big/video.mp4", tmp_path / "copy.mp4")
    elapsed = time.monotonic() - started
    growth_mb = (vm_kb("VmHWM" if peak_reset else "VmRSS") - before) / 1024
    assert (tmp_path / "copy.mp4").stat().st_size == size
    assert growth_mb < 50, f"RSS grew by {growth_mb:.0f} MB while copying 200 MB ({elapsed:.1f} s)"
    assert md5_of_file(tmp_path / "copy.mp4") == md5_of_stream(size)


def vm_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak_rss() -> bool:
    """Reset VmHWM (Linux): then it is the peak during the copy, not just the end state."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- S3 only -----------------------------------------------------------------------------------


@pytest.fixture
async def other_bucket(s3_settings):
    """A second bucket with a source video in it, like a user's own bucket."""
    other = await S3Storage.open(
        Settings(_env_file=None, **{**s3_settings, "OUTPUT_BUCKET": f"src-{uuid.uuid4().hex[:12]}"})
    )
    await other.put_stream("videos/in.mp4", generate(3 * MB), "video/mp4", 10 * MB)
    yield other
    await other.close()


@s3_only
async def test_fetch_uri_reads_another_bucket(storage, other_bucket, tmp_path):
    dest = tmp_path / "source.mp4"
    await storage.fetch_uri(f"s3://{other_bucket.bucket}/videos/in.mp4", dest)
    assert md5_of_file(dest) == md5_of_stream(3 * MB)


@s3_only
async def test_fetch_uri_reports_progress(storage, other_bucket, tmp_path):
    reports: list = []
    await storage.fetch_uri(
        f"s3://{other_bucket.bucket}/videos/in.mp4", tmp_path / "s", lambda d, t: reports.append((d, t))
    )
    assert_reports_progress(reports, 3 * MB)


@s3_only
async def test_fetch_uri_of_a_missing_key(storage, other_bucket, tmp_path):
    uri = f"s3://{other_bucket.bucket}/videos/missing.mp4"
    with pytest.raises(ObjectNotFoundError, match=uri):
        await storage.fetch_uri(uri, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(ObjectNotFoundError, match="no-such-bucket-"):
        await storage.fetch_uri(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/a.mp4", tmp_path / "x.mp4")


@s3_only
@pytest.mark.parametrize(
    "uri",
    [
        "http://bucket/key.mp4",
        "S3://bucket/key.mp4",
        "s3://",
        "s3://bucket",
        "s3://bucket/",
        "s3:///key.mp4",
        "s3://Bucket/key.mp4",
        "s3://ab/key.mp4",
        "s3://bad..name/key.mp4",
        "s3://-bucket/key.mp4",
        "s3://192.168.1.10/key.mp4",
        "s3://bucket/key\n.mp4",
        "s3://bucket_name/key.mp4",
    ],
)
async def test_fetch_uri_rejects_malformed_uris(storage, tmp_path, uri):
    with pytest.raises(StorageError) as caught:
        await storage.fetch_uri(uri, tmp_path / "x.mp4")
    assert not isinstance(caught.value, ObjectNotFoundError) and not caught.value.transient
    assert (
        "s3://bucket/key" in str(caught.value)
        or "bucket name" in str(caught.value)
        or "object key" in str(caught.value)
    )


@s3_only
async def test_presigned_url_downloads_as_attachment(storage):
    content = pattern(MB + 7)
    await storage.put_stream("processed/j9/out.mp4", generate(len(content), chunk=len(content)), "video/mp4", 2 * MB)
    url = await storage.presigned_url("processed/j9/out.mp4", "holiday clip.mp4")
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        assert response.content == content
        assert response.headers["content-disposition"].startswith('attachment; filename="holiday clip.mp4"')
        assert (await client.get(url.replace("Signature=", "Signature=0"))).status_code == 403


@needs_s3
async def test_unreachable_endpoint_fails_fast(s3_settings):
    endpoint = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError, match=endpoint):
        await S3Storage.open(Settings(_env_file=None, **{**s3_settings, "S3_ENDPOINT_URL": endpoint}))
    assert time.monotonic() - started < 5


@needs_s3
async def test_wrong_credentials_say_access_denied(s3_settings):
    with pytest.raises(StorageUnavailableError, match="access denied") as caught:
        await S3Storage.open(Settings(_env_file=None, **{**s3_settings, "AWS_SECRET_ACCESS_KEY": "wrong"}))
    assert "AWS_SECRET_ACCESS_KEY" in str(caught.value)


# --- local only --------------------------------------------------------------------------------


@local_only
async def test_local_has_no_s3_sources_and_no_presigned_urls(storage, tmp_path):
    assert not storage.supports_s3_sources
    with pytest.raises(StorageError, match="S3 is not configured"):
        await storage.fetch_uri("s3://bucket/key.mp4", tmp_path / "x.mp4")
    await storage.put_stream("processed/j/out.mp4", generate(10), "video/mp4", 100)
    assert await storage.presigned_url("processed/j/out.mp4", "out.mp4") is None
