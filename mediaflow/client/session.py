"""What every `mediaflow` client command shares: which server to talk to (and with which key), and what
a job id may look like before it goes into a URL path. Only the standard library and the client's own
modules are imported."""

from __future__ import annotations

import argparse
import os
import re

from mediaflow.client.api import Api

DEFAULT_SERVER = "http://127.0.0.1:8000"
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def job_id_argument(value: str) -> str:
    """argparse type for job ids: a job id goes into URL paths, so nothing that could change the path
    (`/`, `..`, `?`) gets through."""
    if not JOB_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a job id (job ids look like 2d0c8f1e-…)")
    return value


def uses_default_server(args: argparse.Namespace) -> bool:
    """Neither --server nor MEDIAFLOW_URL: whatever listens on the default port gets the request, maybe
    another user's server if ours could not take the port."""
    return not (args.server or os.environ.get("MEDIAFLOW_URL"))


def open_api(args: argparse.Namespace) -> Api:
    server = args.server or os.environ.get("MEDIAFLOW_URL") or DEFAULT_SERVER
    api_key = args.api_key or os.environ.get("MEDIAFLOW_API_KEY") or None
    return Api(server, api_key)
