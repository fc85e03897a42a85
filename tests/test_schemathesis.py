"""Property-based API testing with schemathesis against the real server: whatever a client sends
within (and just outside) the OpenAPI schema, the API never answers 5xx and its responses conform."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.apptools import ApiServer, make_settings

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "use_after_free",
    "ensure_resource_availability",
])


def test_the_api_survives_schemathesis(tmp_path):
    # No workers: jobs stay queued, so an event stream would stay open for SSE_MAX_STREAM_S.
    settings = make_settings(tmp_path, SSE_MAX_STREAM_S=1)
    (tmp_path / "media" / "clip.mp4").write_bytes(b"not a real video: jobs stay queued, no worker runs")
    st = Path(sys.executable).with_name("st")
    assert st.exists() or shutil.which("st"), "schemathesis is installed by scripts/setup.sh --test"
    with ApiServer(settings, tmp_path) as server:
        # A few real jobs so operations on an existing job are exercised too.
        for method in ("compress", "resize"):
            httpx.post(f"{server.url}/process", json={"source": "clip.mp4", "method_name": method}).raise_for_status()
        result = subprocess.run(
            [str(st), "run", f"{server.url}/openapi.json", "--checks", CHECKS, "--max-examples", "40",
             "--workers", "2", "--seed", "20261125", "--no-color",
             # The coverage phase hits an internal schemathesis error (hypothesis filter on a
             # negative type) on this schema; the other phases generate and mutate just as well.
             "--phases", "examples,fuzzing,stateful"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
        server_log = server.log_path.read_text()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
    assert "Traceback" not in server_log, server_log[-4000:]
