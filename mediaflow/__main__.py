"""`python -m mediaflow …` is the `mediaflow` command."""

from mediaflow.cli import main

raise SystemExit(main())
