"""The benchmark's measuring tools that figures depend on (the figures themselves are not tested)."""

from __future__ import annotations

import subprocess
import sys

from benchmarks import tools
from benchmarks.sections import discover

# Burns CPU by CPU time, not wall time, so a busy machine only makes it slower, never smaller.
BURN = "import time\nwhile time.process_time() < {seconds}: pass\n"
PARENT = (
    "import subprocess, sys, time\n"
    f"subprocess.run([sys.executable, '-c', {BURN.format(seconds=0.6)!r}], check=True)\n"
    + BURN.format(seconds=0.3)
    + "print('burnt', flush=True)\ntime.sleep(30)\n"
)


def test_process_cpu_seconds_counts_the_process_and_the_children_it_waited_for():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "burnt"
        seconds = tools.process_cpu_seconds(parent.pid)
    finally:
        parent.kill()
        parent.wait()
    # 0.3 s of its own and 0.6 s of its child's: without the child's it would be under 0.5 s
    assert 0.85 <= seconds < 5, seconds


def test_the_parallel_workers_section_is_discovered():
    assert "parallel_workers" in [section.name for section in discover()]
