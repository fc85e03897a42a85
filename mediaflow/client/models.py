"""What the Python client hands back: typed, read-only views of the server's JSON.

Built from the server's answers, which are not trusted to be complete: a field a (newer or older)
server leaves out is None, and fields this client does not know are kept in `raw`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FINAL_STATUSES = frozenset({"completed", "failed", "canceled"})


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Job:
    """A job as GET /status/{id} described it at one moment."""

    job_id: str
    status: str  # queued, processing, completed, failed, canceled
    progress: int = 0  # 0-100, only forward
    phase: str | None = None  # queued, downloading, probing, encoding, uploading, done
    method_name: str | None = None
    source: str | None = None
    output_format: str | None = None
    template: str | None = None  # the template a POST /jobs job was made from (None: a method, or custom outputs)
    error: str | None = None
    output_path: str | None = None
    log_path: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    eta_seconds: float | None = None
    speed: float | None = None
    attempts: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Job:
        return cls(
            job_id=str(body.get("job_id", "")),
            status=str(body.get("status", "")),
            progress=int(_number(body.get("progress")) or 0),
            phase=_text(body.get("phase")),
            method_name=_text(body.get("method_name")),
            source=_text(body.get("source")),
            output_format=_text(body.get("output_format")),
            template=_text(body.get("template")),
            error=_text(body.get("error")),
            output_path=_text(body.get("output_path")),
            log_path=_text(body.get("log_path")),
            created_at=_timestamp(body.get("created_at")),
            started_at=_timestamp(body.get("started_at")),
            completed_at=_timestamp(body.get("completed_at")),
            eta_seconds=_number(body.get("eta_seconds")),
            speed=_number(body.get("speed")),
            attempts=int(_number(body.get("attempts")) or 0),
            raw=dict(body),
        )

    @property
    def done(self) -> bool:
        """Completed, failed or canceled: nothing will change any more (unless retried)."""
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class Upload:
    """A file stored by POST /upload; pass `source` to submit()."""

    source: str
    filename: str
    size: int


@dataclass(frozen=True)
class Template:
    """Saved job settings (GET /templates): a built-in one, or one saved with this API key."""

    name: str
    description: str
    builtin: bool
    outputs: tuple[dict[str, Any], ...]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Template:
        return cls(
            name=str(body.get("name", "")),
            description=str(body.get("description", "")),
            builtin=body.get("builtin") is True,
            outputs=tuple(o for o in body.get("outputs") or () if isinstance(o, dict)),
        )


@dataclass(frozen=True)
class Method:
    """A processing method the server offers (GET /methods)."""

    name: str
    label: str
    description: str
    formats: tuple[str, ...]
    default_format: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Method:
        return cls(
            name=str(body.get("name", "")),
            label=str(body.get("label", "")),
            description=str(body.get("description", "")),
            formats=tuple(str(f) for f in body.get("formats") or ()),
            default_format=str(body.get("default_format", "")),
        )
