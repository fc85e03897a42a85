"""One table for every benchmark figure: each beside what bounds it, as a ratio."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    """One measured figure. `reference` is what it is compared with: raw ffmpeg for job timings, a
    ceiling (the same load tool against GET /healthz, the store's raw insert rate) for rates.
    `ratio` = value / reference (for timings: how many times raw ffmpeg; for rates: share of the
    ceiling). `met` is None when there is no target."""

    section: str
    figure: str
    stack: str
    value: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


def render(rows: list[Row]) -> str:
    """A Markdown table (pastes into docs/performance.md and issue notes as is)."""
    header = ["section", "figure", "stack", "MediaFlow", "reference", "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        cells = [row.section, row.figure, row.stack, row.value, row.reference, ratio, row.target, met]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {row.section} / {row.figure}: {row.note}" for row in rows if row.note]
    return "\n".join(lines + ([""] + notes if notes else []))
