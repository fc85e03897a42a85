"""A MediaFlow worker, as the seed named it: `python worker.py [--concurrency N] [--burst]` (the same as
`mediaflow worker`). The code lives in `mediaflow/worker/`."""

from mediaflow.worker.loop import main

if __name__ == "__main__":
    raise SystemExit(main())
