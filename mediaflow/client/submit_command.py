"""`mediaflow submit`: a local file is uploaded (unless a server on this machine reads it in place), a
source the server reads is passed on; then POST /process for a method, POST /jobs for a template or a
spec file; with --wait the job is followed and its files downloaded."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from mediaflow.client.api import EXIT_OK, EXIT_SERVER, EXIT_USAGE, Api, CliError
from mediaflow.client.follow import job_ended_error, wait_for_job
from mediaflow.client.outputs import check_template, download_all, read_spec, submit_outputs_job
from mediaflow.client.session import DEFAULT_SERVER, JOB_ID, open_api, uses_default_server
from mediaflow.client.terminal import printable
from mediaflow.client.transfer import download_output, upload_file

# For help texts only: the server is the authority on methods, so a newer server's method still works.
KNOWN_METHODS = "compress, extract_audio, resize, convert_format, black_and_white"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_local_file(source: str) -> bool:
    if "://" in source:
        return False
    try:
        return Path(source).is_file()
    except (OSError, ValueError):  # a name the OS cannot even look up is not a local file
        return False


def submit_job(
    api: Api,
    source: str,
    method: str,
    output_format: str | None,
    idempotency_key: str | None,
    destination: str | None = None,
) -> str:
    body = {"source": source, "method_name": method}
    if output_format:
        body["output_format"] = output_format
    if destination:
        body["destination"] = destination
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job_id = api.json("POST", "/process", json=body, headers=headers).get("job_id")
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise CliError(f"{api.server}/process answered without a usable job id: is it a MediaFlow server?", EXIT_SERVER)
    return job_id


def check_method_and_format(api: Api, method: str, output_format: str | None) -> None:
    """Refuse an unknown method or a format the method cannot make before anything is uploaded
    (the server would refuse the job only after the whole file was sent, leaving an unused upload)."""
    with api.stream("GET", "/methods", passthrough=(404, 405)) as response:
        response.read()
    if response.is_error:  # a server from before GET /methods: it checks at POST /process, as it always did
        return
    try:
        methods = {str(m["name"]): [str(f) for f in m["formats"]] for m in response.json()["methods"]}
    except (ValueError, KeyError, TypeError):
        raise CliError(
            f"{api.server}/methods answered something unexpected: is it a MediaFlow server?", EXIT_SERVER
        ) from None
    if method not in methods:
        raise CliError(
            f"--method {printable(method)} is not a method of this server; choose one of: "
            f"{', '.join(printable(name) for name in methods)}",
            EXIT_USAGE,
        )
    formats = methods[method]
    if output_format and output_format.lower() not in formats:
        raise CliError(
            f"--format {printable(output_format)}: {printable(method)} makes "
            f"{', '.join(printable(f) for f in formats)}",
            EXIT_USAGE,
        )


def upload_and_submit(api: Api, args: argparse.Namespace) -> str:
    """Upload the argument if it is a local file, else pass it on as the source; returns the job id."""
    source, uploaded = args.source, is_local_file(args.source)
    # --template or --spec: POST /jobs; read (and check) before anything is uploaded
    outputs_body = (
        None if args.method is not None else read_spec(args.spec) if args.spec else {"template": args.template}
    )
    if uploaded and args.idempotency_key and args.method is not None:
        # A repeated run would upload the file anew, under a new source, and the server would refuse
        # the key for a different request: first ask whether the key already made a job.
        found = api.json("GET", "/process", params={"idempotency_key": args.idempotency_key}).get("jobs") or []
        job = found[0] if isinstance(found[0:1], list) and found and isinstance(found[0], dict) else None
        if job is not None and JOB_ID.fullmatch(str(job.get("job_id", ""))):
            if job.get("method_name") != args.method or (args.format and job.get("output_format") != args.format):
                raise CliError(
                    f"idempotency key {printable(args.idempotency_key)} was used for another request "
                    f"(job {job['job_id']}: {printable(str(job.get('method_name')))} to "
                    f"{printable(str(job.get('output_format')))}); use a new key",
                    EXIT_USAGE,
                )
            print(
                f"idempotency key {printable(args.idempotency_key)} already made job {job['job_id']}; "
                "not uploading again",
                file=sys.stderr,
            )
            return job["job_id"]
    if uploaded:
        if outputs_body is None:
            check_method_and_format(api, args.method, args.format)
        elif args.template:
            check_template(api, args.template)
        if on_this_machine(api) and not args.idempotency_key:
            in_place = str(Path(source).resolve())
            job_id = submit_in_place(api, in_place, args, outputs_body)
            if job_id is not None:
                print(f"the server reads {printable(args.source)} where it is (not uploaded)", file=sys.stderr)
                return job_id
        source = upload_file(api, Path(source))
        print(f"uploaded {printable(args.source)} as {printable(source)}", file=sys.stderr)
    try:
        return submit(api, source, args, outputs_body)
    except CliError as error:
        if error.http_status == 422 and not uploaded and looks_like_a_path(source) and source in str(error):
            raise CliError(
                f"{printable(source)}: no such file on this machine, and the server has none at that path "
                "either (it reads paths below its LOCAL_SOURCE_ROOTS); check the name, or give an "
                "upload://… or s3://… source",
                EXIT_USAGE,
                http_status=422,
            ) from None
        if error.http_status == 409 and uploaded:  # another run with this key won the race, or a different file
            raise CliError(
                f"{error}: the key was used for another request meanwhile; to repeat that "
                "submission, run again (it is found by its key) or pass its upload:// source",
                error.exit_code,
                http_status=409,
            ) from None
        raise


def submit(api: Api, source: str, args: argparse.Namespace, outputs_body: dict | None) -> str:
    destination = args.destination  # checked by the server (S3_DESTINATION_BUCKETS), which says what is wrong
    if outputs_body is not None:
        body = {**outputs_body, "destination": destination} if destination else outputs_body
        return submit_outputs_job(api, source, body, args.idempotency_key)
    return submit_job(api, source, args.method, args.format, args.idempotency_key, destination)


def on_this_machine(api: Api) -> bool:
    return urlsplit(api.server).hostname in LOOPBACK


def looks_like_a_path(source: str) -> bool:
    return "://" not in source


def submit_in_place(api: Api, path: str, args: argparse.Namespace, outputs_body: dict | None) -> str | None:
    """A server on this machine reads files below its LOCAL_SOURCE_ROOTS where they are: try the file's
    absolute path first, so nothing is copied; None when the server does not read that path (then the
    file is uploaded). A refusal for another reason is the user's to see."""
    try:
        return submit(api, path, args, outputs_body)
    except CliError as error:
        if error.http_status == 422 and path in str(error):
            return None
        raise


def wait_then_download(api: Api, job_id: str, output: Path | None, *, every_file: bool = False) -> int:
    try:
        job = wait_for_job(api, job_id)
    except KeyboardInterrupt:
        print(
            f"\nstopped waiting; job {job_id} keeps running on the server "
            f"(`mediaflow wait {job_id}`, `mediaflow cancel {job_id}`)",
            file=sys.stderr,
        )
        return 130
    except CliError as error:  # the server went away or broke: the job itself may be fine
        raise CliError(
            f"{error} (job {job_id} may still be running: `mediaflow wait {job_id}`)",
            error.exit_code,
            http_status=error.http_status,
        ) from None
    if job.get("status") != "completed":
        raise job_ended_error(job)
    print(f"job {job_id} completed", file=sys.stderr)
    print(download_all(api, job_id, output) if every_file else download_output(api, job_id, output))
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    if args.output and not args.wait:
        raise CliError("-o/--output saves the result of --wait: add --wait, or use `mediaflow download JOB_ID -o PATH`")
    chosen = [
        flag
        for flag, value in (("--method", args.method), ("--template", args.template), ("--spec", args.spec))
        if value is not None
    ]
    if len(chosen) > 1:
        raise CliError(f"{' and '.join(chosen)} each say what to make: choose one")
    if not chosen:
        raise CliError(f"say what to make: --method NAME ({KNOWN_METHODS}), --template NAME, or --spec job.json")
    if args.format and args.method is None:
        raise CliError("--format goes with --method; with --template or --spec each output names its format")
    if uses_default_server(args):  # said once, so a job sent to an unexpected server does not go unnoticed
        print(f"server: {DEFAULT_SERVER} (the default; --server URL or MEDIAFLOW_URL for another)", file=sys.stderr)
    with open_api(args) as api:
        job_id = upload_and_submit(api, args)
        print(job_id, flush=True)  # first, so a script has the id even if waiting is interrupted
        if not args.wait:
            return EXIT_OK
        return wait_then_download(api, job_id, args.output, every_file=args.method is None)
