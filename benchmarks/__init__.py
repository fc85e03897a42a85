"""MediaFlow's benchmark suite: `python scripts/bench.py` runs every section and prints one table.

Layout (so that several people can add sections without touching each other's files):
    table.py      `Row`: one figure, beside its reference (raw ffmpeg, or the ceiling it cannot beat)
    stacks.py     the two shapes measured: the embedded default, and Kafka + MongoDB + S3 (test servers)
    tools.py      shared measuring tools: wrk, RSS sampling, processes, clips, waiting for jobs
    sections/     one module per section; each defines `SECTION = Section(...)`. A new module there is
                  picked up by itself (sorted by `order`), nothing else to edit.
"""
