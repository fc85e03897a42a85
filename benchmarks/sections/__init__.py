"""Benchmark sections. Each module here defines `SECTION = Section(name, order, run)`; `discover()`
finds them all, so adding a section is adding a file."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.stacks import Bench
    from benchmarks.table import Row


@dataclass(frozen=True)
class Section:
    name: str  # for --only
    order: int  # sections run (and print) in this order; leave gaps (10, 20, ...) for new ones
    run: Callable[[Bench], Awaitable[list[Row]]]
    description: str = ""


def discover() -> list[Section]:
    sections = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "SECTION", None), Section):
            sections.append(module.SECTION)
    return sorted(sections, key=lambda section: section.order)
