"""The MediaFlow Python client: `from mediaflow.client import MediaFlow` (or `AsyncMediaFlow`).

    from mediaflow.client import MediaFlow

    with MediaFlow("http://127.0.0.1:8000") as mf:              # or MEDIAFLOW_URL / MEDIAFLOW_API_KEY
        job = mf.submit("media/sample.mp4", method="compress")   # a local file is uploaded first
        job = mf.wait(job.job_id)                                 # follows its progress (SSE)
        print(mf.download(job.job_id, "small.mp4"))

Only httpx and the standard library are needed. Names load on first use, so the command line (which
shares this package) starts without them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "MediaFlow": "mediaflow.client.sdk",
    "AsyncMediaFlow": "mediaflow.client.aio",
    "Job": "mediaflow.client.models",
    "Upload": "mediaflow.client.models",
    "Method": "mediaflow.client.models",
    "Template": "mediaflow.client.models",
    "MediaFlowError": "mediaflow.client.api",
    "JobFailedError": "mediaflow.client.api",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mediaflow.client' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
