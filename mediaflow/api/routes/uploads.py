"""POST /upload: a file streamed into storage; its `source` value feeds POST /process."""

from __future__ import annotations

from fastapi import HTTPException, Request

from mediaflow.api.deps import OwnerDep, SettingsDep, StorageDep
from mediaflow.api.numbers import ascii_decimal
from mediaflow.api.openapi import UPLOAD_BODY, Tag
from mediaflow.api.routes import authenticated_router
from mediaflow.api.uploads import UploadFormatError, open_upload
from mediaflow.jobs.schemas import UploadResponse
from mediaflow.logs import get_logger
from mediaflow.media.sources import redacted, upload_source
from mediaflow.storage import UploadTooLargeError

log = get_logger("api")
router = authenticated_router(Tag.UPLOADS)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, detail=f"upload is larger than the limit of {limit} bytes (UPLOAD_MAX_BYTES)")


@router.post(
    "/upload",
    response_model=UploadResponse,
    status_code=201,
    summary="Upload a file (multipart/form-data, part 'file'); use the returned source in POST /process",
    responses={413: {"description": "Larger than UPLOAD_MAX_BYTES"}, 422: {"description": "Not a multipart upload"}},
    openapi_extra=UPLOAD_BODY,  # the route parses the multipart stream itself; this tells clients its shape
)
async def upload(request: Request, storage: StorageDep, settings: SettingsDep, owner: OwnerDep) -> UploadResponse:
    limit = settings.UPLOAD_MAX_BYTES
    declared = ascii_decimal(request.headers.get("content-length"))
    if declared is not None and declared > limit + 64 * 1024:  # + room for multipart framing
        raise _too_large(limit)
    try:
        upload_stream = await open_upload(request)
        source, key = upload_source(upload_stream.filename, owner)
        size = await storage.put_stream(key, upload_stream.chunks, upload_stream.content_type, limit)
    except UploadFormatError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    except UploadTooLargeError as exc:
        raise _too_large(limit) from exc
    log.info("upload.stored", source=redacted(source), size=size)  # the id stays with its owner
    return UploadResponse(source=source, filename=key.rsplit("/", 1)[-1], size=size)
