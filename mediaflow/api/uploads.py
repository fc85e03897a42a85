"""Streaming multipart upload parsing for POST /upload.

Starlette's `request.form()` reads the whole body into a temporary file before the handler runs, so
a size limit could only be enforced after the fact. Here the body is parsed as it arrives and the
file part's bytes are handed straight to storage: memory stays flat and an oversized upload is
stopped as soon as it passes the limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MAX_BOUNDARY_LENGTH, MultipartParser, parse_options_header
from starlette.requests import Request


class UploadFormatError(ValueError):
    """The request is not a multipart upload with a `file` part."""


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None


@dataclass
class UploadStream:
    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]


async def open_upload(request: Request, field_name: str = "file") -> UploadStream:
    """Parse the request until the `field_name` file part starts; its bytes follow as `chunks`."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadFormatError("send the file as multipart/form-data with a part named 'file'")
    if len(boundary) > MAX_BOUNDARY_LENGTH:  # python-multipart's own limit; its error would be a 500
        raise UploadFormatError(
            f"the multipart boundary is {len(boundary)} characters long; at most "
            f"{MAX_BOUNDARY_LENGTH} are allowed (RFC 2046 asks for at most 70)"
        )

    # Events the parser produced for the current chunk: ("start" | "data" | "end", the part, its bytes).
    pending: list[tuple[str, _Part, bytes]] = []
    current = _Part()
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        nonlocal current
        current = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current.headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(current.headers.get(b"content-disposition"))
        current.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = disposition.get(b"filename")
        current.filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
        pending.append(("start", current, b""))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        pending.append(("data", current, data[start:end]))

    def on_part_end() -> None:
        pending.append(("end", current, b""))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    body = request.stream()

    async def events() -> AsyncIterator[tuple[str, _Part, bytes]]:
        async for chunk in body:
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own errors on malformed bodies
                raise UploadFormatError(f"malformed multipart body: {exc}") from exc
            while pending:
                yield pending.pop(0)
        parser.finalize()
        while pending:
            yield pending.pop(0)

    stream = events()
    file_part: _Part | None = None
    filename: str | None = None
    async for kind, part, _ in stream:
        if kind == "start" and part.name == field_name and part.filename is not None:
            file_part, filename = part, part.filename
            break
    if file_part is None or filename is None:
        raise UploadFormatError("the multipart body has no file part named 'file'")

    async def chunks() -> AsyncIterator[bytes]:
        async for kind, part, data in stream:
            if kind == "data" and part is file_part:
                yield bytes(data)
            elif kind == "end" and part is file_part:
                return
        raise UploadFormatError("the upload ended before the file part was complete")

    file_type = file_part.headers.get(b"content-type", b"application/octet-stream").decode("latin-1")
    return UploadStream(filename=filename, content_type=file_type, chunks=chunks())
