"""The MediaFlow HTTP API, as the seed named it: `uvicorn main:app` serves it; `python main.py` serves it
with in-process workers (the same as `mediaflow serve`). The code lives in `mediaflow/api/`."""

from mediaflow.api.app import create_app

app = create_app()

if __name__ == "__main__":
    from mediaflow.cli import main

    raise SystemExit(main(["serve"]))
