"""The seed methods' output formats as a request names them: the default, case and a leading dot
ignored, and the error for a format the method cannot produce (POST /process; GET /methods lists them).

What a method does, and in which formats, is its built-in template (`outputs/templates.py`), made by
the same builders as every POST /jobs output; a format's MIME type is the outputs' one table
(`outputs/files.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mediaflow.jobs.model import Method
from mediaflow.media.outputs.files import MIME_TYPES
from mediaflow.media.outputs.templates import allowed_formats, format_not_available

__all__ = [
    "OUTPUT_FORMATS",
    "OutputFormat",
    "allowed_formats",
    "default_format",
    "mime_type_for",
    "resolve_output_format",
]


@dataclass(frozen=True)
class OutputFormat:
    name: str
    extension: str  # without the dot: "mp4"
    mime_type: str


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    name: OutputFormat(name, name, MIME_TYPES[name]) for method in Method for name in allowed_formats(method)
}


def mime_type_for(filename: str) -> str | None:
    """The MIME type of a seed method's output file, by its extension (None for anything else)."""
    _, dot, extension = filename.rpartition(".")
    fmt = OUTPUT_FORMATS.get(extension.lower()) if dot else None
    return fmt.mime_type if fmt else None


def default_format(method: Method) -> str:
    return allowed_formats(method)[0]


def resolve_output_format(method: Method, requested: str | None) -> OutputFormat:
    """The output format for a request: None or blank → the method's default; case and a leading dot ignored."""
    method = Method(method)
    allowed = allowed_formats(method)
    if requested is None or not requested.strip():
        return OUTPUT_FORMATS[allowed[0]]
    name = requested.strip().lower().removeprefix(".")
    if name not in allowed:
        raise format_not_available(method, requested)
    return OUTPUT_FORMATS[name]
