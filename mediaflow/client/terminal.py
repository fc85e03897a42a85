"""Terminal output for the `mediaflow` client commands: progress lines on stderr, job states as text,
and server-provided text made safe to print.

Everything shown comes from a server and is untrusted: it goes through `printable` (no terminal
control characters) before it reaches the screen. Only the standard library is imported.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

# C0 controls except tab and newline, DEL, and C1 controls (0x9b is a one-byte escape on some terminals).
_CONTROL_CHARACTERS = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(0x80, 0xA0)])


def printable(text: str) -> str:
    """Server-provided text made safe for a terminal: no escape sequences that move the cursor,
    rewrite the title or recolour the screen."""
    return text.translate(_CONTROL_CHARACTERS)


# --- progress on stderr ----------------------------------------------------------------------------


class ProgressLine:
    """One line of progress on stderr: redrawn in place (`\\r`) on a terminal, at most ten times a
    second; elsewhere (logs, CI) a plain line only when the `milestone` changes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self._shown = ""
        self._latest = ""  # on a terminal, the last text even if throttled: finish() draws it
        self._last_draw = 0.0
        self._milestone: object = None

    def show(self, text: str, milestone: object) -> None:
        if self.interactive:
            self._latest = text
            if time.monotonic() - self._last_draw >= 0.1:
                self._draw()
        elif milestone != self._milestone:
            self.stream.write(text + "\n")
            self.stream.flush()
        self._milestone = milestone

    def _draw(self) -> None:
        if self._latest != self._shown:
            self.stream.write("\r" + self._latest.ljust(len(self._shown)))  # pad over a longer previous text
            self.stream.flush()
            self._shown = self._latest
        self._last_draw = time.monotonic()

    def finish(self) -> None:
        """Show the final state and end the line, so the next message starts on its own line."""
        if self.interactive and self._latest:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
        self._shown = self._latest = ""
        self._milestone = None


def progress_bar(fraction: float, width: int = 24) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def human_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def _number(value: Any) -> float | None:
    """A finite number from the server's JSON, or None for anything else (JSON may even carry NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def transfer_text(verb: str, name: str, done: int, total: int | None, started: float) -> str:
    elapsed = max(time.monotonic() - started, 1e-6)
    rate = f"{human_bytes(done / elapsed)}/s"
    if not total:
        return f"{verb} {name}  {human_bytes(done)}  {rate}"
    return (
        f"{verb} {name}  {progress_bar(done / total)} {done * 100 // total:3d}%  "
        f"{human_bytes(done)} of {human_bytes(total)}  {rate}"
    )


def job_percent(job: dict) -> int:
    return int(max(0.0, min(100.0, _number(job.get("progress")) or 0.0)))


# The phases in the words the dashboard uses; a phase this client does not know is shown as sent.
PHASE_TEXT = {
    "queued": "waiting in the queue",
    "downloading": "fetching the source",
    "probing": "inspecting the input",
    "encoding": "encoding",
    "uploading": "saving the result",
    "done": "done",
}


def phase_text(phase: Any) -> str:
    raw = printable(str(phase or ""))[:20]
    return PHASE_TEXT.get(raw, raw)


def job_progress_text(job: dict) -> str:
    status = printable(str(job.get("status", "?")))[:20]
    if status == "queued":
        return "queued, waiting for a worker"
    if status in ("failed", "canceled"):  # the reason is reported on its own line
        return status
    percent = job_percent(job)
    parts = [status, progress_bar(percent / 100), f"{percent:3d}%"]
    phase = phase_text(job.get("phase"))
    if phase and status == "processing":
        parts.append(phase)
    if (fetched := _number(job.get("downloaded_bytes"))) is not None and job.get("phase") == "downloading":
        size = _number(job.get("source_size_bytes"))
        parts.append(human_bytes(fetched) + (f" of {human_bytes(size)}" if size else ""))
    if (eta := _number(job.get("eta_seconds"))) is not None and status == "processing":
        parts.append(f"ETA {human_duration(eta)}")
    if speed := _number(job.get("speed")):
        parts.append(f"{speed:.1f}x")
    return "  ".join(parts)


def job_milestone(job: dict) -> tuple:
    """What makes a plain (non-terminal) progress line worth printing: a new status or phase, or
    another quarter of the work done."""
    return job.get("status"), job.get("phase"), job_percent(job) // 25


# --- jobs as text ----------------------------------------------------------------------------------


def job_makes(job: dict) -> str:
    """What a job makes: "compress -> mp4" (POST /process), "template web", or "custom outputs"."""
    if job.get("method_name"):
        return f"{job.get('method_name')} -> {job.get('output_format')}"
    return f"template {job.get('template')}" if job.get("template") else "custom outputs"


def job_makes_row(job: dict) -> tuple[str, str]:
    if job.get("method_name"):
        return "method", job_makes(job)
    return ("template", str(job.get("template"))) if job.get("template") else ("makes", "custom outputs")


def format_outputs(record: dict) -> str:
    """A job's outputs (GET /jobs/{id}), one line each: name, type, status, and its files."""
    outputs = [o for o in record.get("outputs") or [] if isinstance(o, dict)]
    if not outputs:
        return "outputs    none yet"
    width = max(len(str(o.get("name"))) for o in outputs)
    lines = ["outputs"]
    for output in outputs:
        files = [str(f.get("path")) for f in output.get("files") or [] if isinstance(f, dict)]
        shown = ", ".join(files[:3]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else "")
        status = str(output.get("status"))
        if status == "processing":
            status += f" {job_percent(output)}%"
        line = f"  {str(output.get('name')):<{width}}  {str(output.get('type')):<10}  {status:<10}  {shown}"
        if output.get("error"):
            line += f"  ({output.get('error')})"
        lines.append(line.rstrip())
    return "\n".join(printable(line) for line in lines)


def format_job(job: dict) -> str:
    """A job as aligned `field  value` lines, leaving out what is not set."""
    status = job.get("status")
    state = job_progress_text(job) if status in ("processing", "queued") else status
    rows = [
        ("job", job.get("job_id")),
        ("status", state),
        job_makes_row(job),
        ("source", job.get("source")),
        ("created", job.get("created_at")),
        ("started", job.get("started_at")),
        ("completed", job.get("completed_at")),
        ("attempts", job.get("attempts")),
        ("error", job.get("error")),
        ("output", job.get("output_path")),
    ]
    return "\n".join(f"{name:<10} {printable(str(value))}" for name, value in rows if value not in (None, ""))


def format_job_table(jobs: list) -> str:
    header = ("JOB ID", "STATUS", "PROGRESS", "MAKES", "CREATED", "SOURCE")
    rows = [header]
    for job in (job for job in jobs if isinstance(job, dict)):
        created = str(job.get("created_at") or "")[:19].replace("T", " ")
        source = str(job.get("source") or "")
        rows.append(
            (
                str(job.get("job_id")),
                str(job.get("status")),
                f"{job_percent(job)}%",
                job_makes(job),
                created,
                source,  # the last column: shown whole, so the name at its end is never cut
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    return "\n".join(
        printable(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        ).rstrip()
        for row in rows
    )


def format_workers(body: dict) -> str:
    """GET /workers as text: one line per live worker process, then the totals."""
    workers = [worker for worker in body.get("workers") or [] if isinstance(worker, dict)]
    lines = [
        f"{worker.get('host')}  pid {worker.get('pid')}  {worker.get('busy')}/{worker.get('slots')} busy  "
        f"last seen {str(worker.get('seen_at') or '')[:19].replace('T', ' ')}"
        for worker in workers
    ]
    # Busy counts come from each process's presence beat, so a job that just ended may still count a while.
    lines.append(
        f"{body.get('count')} worker process(es) alive, {body.get('busy')}/{body.get('slots')} slots busy "
        "(as of each process's last beat)"
    )
    return "\n".join(printable(line) for line in lines)
