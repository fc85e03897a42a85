"""/openapi.json is good enough for a generated client: operation ids from route names, tags by area,
the API key schemes, the multipart upload, binary and event-stream responses, examples on every model.
The proof: a client generated with openapi-python-client (offline) from a running API's spec uploads,
processes, follows and downloads a real clip, with an API key."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time

import av
import httpx
import pytest
from pydantic import BaseModel

from mediaflow.api.app import create_app
from mediaflow.api.openapi import Tag
from mediaflow.jobs import schemas
from tests.apptools import ApiServer, make_settings
from tests.media import make_clip

API_KEY = "sdk-test-key-5b1e"
OPERATIONS = {
    "root": "health",
    "healthz": "health",
    "readyz": "health",
    "process": "jobs",
    "list_jobs": "jobs",
    "status": "jobs",
    "methods": "jobs",
    "job_events": "jobs",
    "cancel": "jobs",
    "retry": "jobs",
    "delete_job": "jobs",
    "upload": "uploads",
    "download": "files",
    "download_url": "files",
    "job_log": "files",
    "create_job": "jobs",
    "get_job": "jobs",
    "list_templates": "templates",
    "create_template": "templates",
    "list_workers": "workers",
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict:
    return create_app(make_settings(tmp_path_factory.mktemp("openapi"))).openapi()


def operations(spec: dict) -> dict[str, dict]:
    return {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}


def test_operation_ids_are_route_names_and_tagged_by_area(spec):
    ops = operations(spec)
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), f"operation ids must be unique (route function names): {sorted(ids)}"
    untagged = {
        name: op.get("tags")
        for name, op in ops.items()
        if len(op.get("tags", [])) != 1 or op["tags"][0] not in vars(Tag).values()
    }
    assert not untagged, f"give these routers a Tag (authenticated_router(Tag.…)): {untagged}"
    assert {name: ops[name]["tags"] for name in OPERATIONS} == {name: [tag] for name, tag in OPERATIONS.items()}
    assert {tag["name"] for tag in spec["tags"]} == {op["tags"][0] for op in ops.values()}, "described tags = used"


def test_api_key_schemes_are_declared_where_a_key_is_checked(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == schemes["ApiKey"] | {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["Bearer"]["scheme"] == "bearer"
    ops = operations(spec)
    for name, tag in OPERATIONS.items():
        expected = None if tag == "health" else [{"ApiKey": []}, {"Bearer": []}]
        if name == "download":
            expected = [{"ApiKey": []}, {"Bearer": []}, {}]  # a signed link needs no key
        assert ops[name].get("security") == expected, name


def test_upload_body_and_binary_and_stream_responses_are_described(spec):
    ops = operations(spec)
    form = ops["upload"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"] == form["properties"]["file"] | {
        "type": "string",
        "format": "binary",
    }
    binary = {"schema": {"type": "string", "format": "binary"}}
    for status in ("200", "206"):
        assert ops["download"]["responses"][status]["content"] == {
            "video/*": binary,
            "audio/*": binary,
            "application/octet-stream": binary,
        }
    assert list(ops["job_events"]["responses"]["200"]["content"]) == ["text/event-stream"]
    assert list(ops["job_log"]["responses"]["200"]["content"]) == ["text/plain"]


def test_every_model_has_examples_that_validate(spec):
    ours = {
        name: model
        for name in spec["components"]["schemas"]
        if isinstance(model := getattr(schemas, name, None), type) and issubclass(model, BaseModel)
    }
    assert {
        "ProcessRequest",
        "ProcessResponse",
        "JobStatusResponse",
        "JobStatusListResponse",
        "UploadResponse",
        "DownloadLinkResponse",
        "MethodsResponse",
        "MethodInfo",
    } <= set(ours)
    for name, model in ours.items():
        examples = spec["components"]["schemas"][name].get("examples")
        assert examples, f"{name} has no example"
        for example in examples:
            model.model_validate(example)


# --- a generated client against the running API --------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("sdk")
    settings = make_settings(base, API_KEYS=f"sdk:{API_KEY}", FFMPEG_THREADS=1)
    make_clip(base / "media", "sample.mp4", width=320, height=240, seconds=1)  # the README's media/sample.mp4, short
    with ApiServer(settings, base, api_workers=1) as api:
        api.base = base
        yield api


@pytest.fixture(scope="module")
def sdk(server, tmp_path_factory):
    """openapi-python-client's package generated from the server's own /openapi.json, imported."""
    out = tmp_path_factory.mktemp("generated")
    (out / "openapi.json").write_bytes(httpx.get(f"{server.url}/openapi.json").content)
    # No post hooks: they would run ruff, which is not needed to use the client.
    (out / "config.yaml").write_text("package_name_override: mediaflow_sdk\npost_hooks: []\n")
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            "openapi.json",
            "--meta",
            "none",
            "--output-path",
            "mediaflow_sdk",
            "--config",
            "config.yaml",
            "--fail-on-warning",
        ],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("mediaflow_sdk")
    finally:
        sys.path.remove(str(out))
        for name in [name for name in sys.modules if name.split(".")[0] == "mediaflow_sdk"]:
            del sys.modules[name]


def generated_functions(sdk) -> set[str]:
    package = sdk.__path__[0] + "/api"
    import pathlib

    return {f"{p.parent.name}.{p.stem}" for p in pathlib.Path(package).glob("*/*.py") if p.stem != "__init__"}


def test_generated_client_has_one_function_per_route_name(sdk, server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    expected = {f"{op['tags'][0]}.{op['operationId']}" for path in spec["paths"].values() for op in path.values()}
    assert generated_functions(sdk) == expected
    assert {f"{tag}.{name}" for name, tag in OPERATIONS.items()} <= expected


def test_generated_client_uploads_processes_and_downloads(sdk, server):
    from mediaflow_sdk import AuthenticatedClient, Client
    from mediaflow_sdk.api.files import download
    from mediaflow_sdk.api.jobs import process, status
    from mediaflow_sdk.api.uploads import upload
    from mediaflow_sdk.models import JobStatus, ProcessRequest, UploadBody
    from mediaflow_sdk.types import File

    client = AuthenticatedClient(
        base_url=server.url,
        token=API_KEY,
        prefix="",
        auth_header_name="X-API-Key",
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(30),
    )
    with open(server.base / "media" / "sample.mp4", "rb") as clip:
        uploaded = upload.sync(
            client=client, body=UploadBody(file=File(payload=clip, file_name="sample.mp4", mime_type="video/mp4"))
        )
    assert uploaded.source.startswith("upload://") and uploaded.filename == "sample.mp4"
    assert uploaded.size == (server.base / "media" / "sample.mp4").stat().st_size

    submitted = process.sync(
        client=client,
        body=ProcessRequest.from_dict({"source": uploaded.source, "method_name": "resize", "output_format": "mp4"}),
    )
    assert submitted.status is JobStatus.QUEUED
    final = wait(status, client, submitted.job_id)
    assert final.status is JobStatus.COMPLETED, final.error

    output = download.sync(submitted.job_id, client=client)
    path = server.base / "downloaded.mp4"
    path.write_bytes(output.payload.read())
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (1280, 720)

    anonymous = Client(base_url=server.url)
    assert status.sync_detailed(submitted.job_id, client=anonymous).status_code == 401


def test_generated_client_creates_a_job_from_a_template(sdk, server):
    """POST /jobs (many outputs) with a built-in template, through the generated client."""
    from mediaflow_sdk import AuthenticatedClient
    from mediaflow_sdk.api.jobs import create_job, get_job
    from mediaflow_sdk.api.templates import list_templates
    from mediaflow_sdk.models import CreateJobRequest

    client = AuthenticatedClient(
        base_url=server.url, token=API_KEY, prefix="", auth_header_name="X-API-Key", raise_on_unexpected_status=True
    )
    templates = {template.name: template for template in list_templates.sync(client=client).templates}
    assert templates["extract_audio"].builtin
    created = create_job.sync(
        client=client, body=CreateJobRequest.from_dict({"source": "media/sample.mp4", "template": "extract_audio"})
    )
    deadline = time.monotonic() + 60
    while (job := get_job.sync(created.job_id, client=client)).status.value not in ("completed", "failed", "canceled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job.status.value == "completed", job.error


def test_the_process_examples_work_as_shown(sdk, server):
    """Each ProcessRequest example from the spec (the README's media/sample.mp4), sent as it is."""
    from mediaflow_sdk import AuthenticatedClient
    from mediaflow_sdk.api.jobs import process, status
    from mediaflow_sdk.models import JobStatus, ProcessRequest

    client = AuthenticatedClient(base_url=server.url, token=API_KEY, raise_on_unexpected_status=True)  # Bearer
    spec = httpx.get(f"{server.url}/openapi.json").json()
    examples = spec["components"]["schemas"]["ProcessRequest"]["examples"]
    job_ids = [process.sync(client=client, body=ProcessRequest.from_dict(example)).job_id for example in examples]
    for job_id in job_ids:
        final = wait(status, client, job_id)
        assert final.status is JobStatus.COMPLETED, final.error


def wait(status, client, job_id: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status.sync(job_id, client=client)
        if current.status.value in ("completed", "failed", "canceled"):
            return current
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished in {timeout} s: {current}")
