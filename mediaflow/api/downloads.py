"""Serving stored files (outputs, ffmpeg logs) as HTTP downloads: streamed from storage, never copied
to a temp file; one byte range when asked (players seek with Range requests); or, with
S3_PRESIGNED_DOWNLOADS, a redirect so the bytes go straight from S3 to the client."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import RedirectResponse, StreamingResponse

from mediaflow.media.outputs.files import MIME_TYPES
from mediaflow.settings import Settings
from mediaflow.storage import (
    ByteRange,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
    Storage,
    content_disposition,
)


async def stream_stored(
    location: str,
    storage: Storage,
    settings: Settings,
    *,
    disposition: str,
    range_header: str | None = None,
    redirect: bool = True,
):
    """Stream a stored file (or the one byte range a `Range` header asks for, so players can seek).
    `redirect=False` never sends the client to S3 (a playlist's relative URIs must resolve here)."""
    byte_range = ByteRange.parse(range_header)
    key = storage.key_for(location) if location else None
    if key is None:
        raise HTTPException(
            404,
            detail="the stored file is not in this server's storage (was OUTPUT_BUCKET or LOCAL_STORAGE_DIR changed?)",
        )
    filename = key.rsplit("/", 1)[-1]
    if settings.S3_PRESIGNED_DOWNLOADS and redirect:
        url = await storage.presigned_url(key, filename)
        if url:
            return RedirectResponse(url, status_code=307)
    try:
        stored = await storage.open_read(key, byte_range=byte_range)
    except ObjectNotFoundError as exc:
        raise HTTPException(404, detail=f"the stored file {location} is missing") from exc
    except RangeNotSatisfiableError as exc:
        raise HTTPException(416, detail=str(exc), headers={"Content-Range": f"bytes */{exc.total_size}"}) from exc
    content_type = content_type_for(filename, stored.content_type)
    headers = {
        "Content-Length": str(stored.size),
        "Content-Disposition": content_disposition(disposition, filename),
        "Accept-Ranges": "bytes",
    }
    if stored.range is not None:
        first, last = stored.range
        headers["Content-Range"] = f"bytes {first}-{last}/{stored.total_size}"
        return StreamingResponse(stored.chunks, status_code=206, media_type=content_type, headers=headers)
    return StreamingResponse(stored.chunks, media_type=content_type, headers=headers)


def content_type_for(filename: str, fallback: str) -> str:
    if filename.endswith(".log"):
        return "text/plain; charset=utf-8"
    return MIME_TYPES.get(filename.rpartition(".")[2].lower()) or fallback
