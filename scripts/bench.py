"""MediaFlow benchmarks: one command, one table. Numbers for people, not pass/fail tests.

    .venv/bin/python scripts/bench.py                      # every section, embedded and Kafka+MongoDB+S3
    .venv/bin/python scripts/bench.py --only latency       # one section (repeatable)
    .venv/bin/python scripts/bench.py --stack embedded     # one shape
    .venv/bin/python scripts/bench.py --quick              # fewer repetitions, shorter runs

Each figure is printed beside what bounds it (raw ffmpeg, or a ceiling measured on the spot) and as a
ratio to it. Needs `wrk` (Debian: apt-get install -y wrk) and the test servers (`scripts/setup.sh --test`);
the servers are started on 127.0.0.1 and stopped at the end. Sections live in benchmarks/sections/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import traceback
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.sections import discover  # noqa: E402
from benchmarks.stacks import STACKS, Bench  # noqa: E402
from benchmarks.table import Row, render  # noqa: E402


def parse_args(names: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=names, help="run only this section (repeatable)")
    parser.add_argument(
        "--stack",
        dest="stacks",
        action="append",
        choices=list(STACKS),
        help="run only on this shape (repeatable; default both)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter runs")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) after the run")
    args = parser.parse_args()
    args.stacks = args.stacks or list(STACKS)
    return args


async def run_sections(bench: Bench, sections) -> list[Row]:
    rows: list[Row] = []
    for section in sections:
        print(f"==> {section.name}: {section.description}", file=sys.stderr, flush=True)
        try:
            section_rows = await section.run(bench)
        except Exception as exc:  # one broken section must not hide the others' figures
            traceback.print_exc()
            section_rows = [Row(section.name, "(section failed)", "", f"{type(exc).__name__}: {exc}"[:200])]
        for row in section_rows:
            print(f"    {row.figure} [{row.stack}]: {row.value} | {row.reference}", file=sys.stderr, flush=True)
        rows += section_rows
    return rows


def main() -> int:
    sections = discover()
    args = parse_args([section.name for section in sections])
    chosen = [section for section in sections if not args.only or section.name in args.only]
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="mediaflow-bench-"))
    with ExitStack() as cleanup:
        if not args.keep:
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        else:
            print(f"work directory: {workdir}", file=sys.stderr)
        bench = Bench(args=args, workdir=workdir, cleanup=cleanup)
        rows = asyncio.run(run_sections(bench, chosen))
    print(render(rows))
    # Figures on a shared machine move with its load: say what it was.
    print(
        f"\n{len(os.sched_getaffinity(0))} CPUs; load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
