"""The client half of `mediaflow`: the submit, status, wait, list, download, cancel, retry, delete, logs
and workers commands, talking to a running MediaFlow server over HTTP. This module is the argparse
wiring and the commands; the pieces they use live beside it:

- client_api.py: the server over HTTP (`Api`), failures as `CliError`s with exit codes;
- client_follow.py: following a job to its end (Server-Sent Events, else polling);
- client_transfer.py: uploading a file, downloading a job's output (safe file names);
- client_terminal.py: progress lines, jobs as text, server text made safe to print.

Only httpx and the standard library are imported (never the server's modules), so the client starts
quickly and works on a machine that has none of the server's dependencies. Everything the server
sends is treated as untrusted: file names are reduced to a plain name, text is stripped of terminal
control characters before it is printed.

Exit codes (see cli.py): 0 success, 1 the job failed or was canceled, 2 usage or input error (4xx),
3 the server could not be reached or answered with an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mediaflow.client.api import EXIT_JOB_FAILED, EXIT_OK, EXIT_SERVER, EXIT_USAGE, Api, CliError, error_for_response
from mediaflow.client.follow import job_ended_error, wait_for_job
from mediaflow.client.outputs import check_template, download_all, read_spec, submit_outputs_job
from mediaflow.client.terminal import format_job, format_job_table, format_workers, printable
from mediaflow.client.transfer import download_output, upload_file

DEFAULT_SERVER = "http://127.0.0.1:8000"
STATUSES = ("queued", "processing", "completed", "failed", "canceled")
# For help texts only: the server is the authority on methods, so a newer server's method still works.
KNOWN_METHODS = "compress, extract_audio, resize, convert_format, black_and_white"
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def job_id_argument(value: str) -> str:
    """argparse type for job ids: a job id goes into URL paths, so nothing that could change the path
    (`/`, `..`, `?`) gets through."""
    if not _JOB_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a job id (job ids look like 2d0c8f1e-…)")
    return value


# --- commands --------------------------------------------------------------------------------------


def open_api(args: argparse.Namespace) -> Api:
    server = args.server or os.environ.get("MEDIAFLOW_URL") or DEFAULT_SERVER
    api_key = args.api_key or os.environ.get("MEDIAFLOW_API_KEY") or None
    return Api(server, api_key)


def is_local_file(source: str) -> bool:
    if "://" in source:
        return False
    try:
        return Path(source).is_file()
    except (OSError, ValueError):  # a name the OS cannot even look up is not a local file
        return False


def submit_job(api: Api, source: str, method: str, output_format: str | None, idempotency_key: str | None) -> str:
    body = {"source": source, "method_name": method}
    if output_format:
        body["output_format"] = output_format
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job_id = api.json("POST", "/process", json=body, headers=headers).get("job_id")
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
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
        if job is not None and _JOB_ID.fullmatch(str(job.get("job_id", ""))):
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
        source = upload_file(api, Path(source))
        print(f"uploaded {printable(args.source)} as {printable(source)}", file=sys.stderr)
    try:
        if outputs_body is not None:
            return submit_outputs_job(api, source, outputs_body, args.idempotency_key)
        return submit_job(api, source, args.method, args.format, args.idempotency_key)
    except CliError as error:
        if error.http_status == 409 and uploaded:  # another run with this key won the race, or a different file
            raise CliError(
                f"{error}: the key was used for another request meanwhile; to repeat that "
                "submission, run again (it is found by its key) or pass its upload:// source",
                error.exit_code,
                http_status=409,
            ) from None
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
    if sum(x is not None for x in (args.method, args.template, args.spec)) != 1:
        raise CliError(f"say what to make: --method NAME ({KNOWN_METHODS}), --template NAME, or --spec job.json")
    if args.format and args.method is None:
        raise CliError("--format goes with --method; with --template or --spec each output names its format")
    with open_api(args) as api:
        job_id = upload_and_submit(api, args)
        print(job_id, flush=True)  # first, so a script has the id even if waiting is interrupted
        if not args.wait:
            return EXIT_OK
        return wait_then_download(api, job_id, args.output, every_file=args.method is None)


def cmd_status(args: argparse.Namespace) -> int:
    with open_api(args) as api:
        job = api.json("GET", f"/status/{args.job_id}")
    print(json.dumps(job, indent=2) if args.json else format_job(job))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit, "skip": args.skip}
    if args.status:
        params["status"] = args.status
    with open_api(args) as api:
        body = api.json("GET", "/process", params=params)
    jobs = body.get("jobs") if isinstance(body.get("jobs"), list) else []
    if args.json:
        print(json.dumps(body, indent=2))
    elif not jobs:
        print("no jobs" + (f" with status {args.status}" if args.status else ""))
    else:
        print(format_job_table(jobs))
    return EXIT_OK


def cmd_workers(args: argparse.Namespace) -> int:
    with open_api(args) as api:
        body = api.json("GET", "/workers")
    print(json.dumps(body, indent=2) if args.json else format_workers(body))
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    """Follow a job until it ends: exit 0 when it completed, 1 when it failed or was canceled."""
    with open_api(args) as api:
        try:
            job = wait_for_job(api, args.job_id)
        except KeyboardInterrupt:
            print(f"\nstopped waiting; job {args.job_id} keeps running on the server", file=sys.stderr)
            return 130
        if job.get("status") != "completed":
            raise job_ended_error(job)
        print(f"job {args.job_id} completed", file=sys.stderr)
        if args.download:
            print(download_output(api, args.job_id, args.output))
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    with open_api(args) as api:
        print(
            download_all(api, args.job_id, args.output) if args.all else download_output(api, args.job_id, args.output)
        )
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    with open_api(args) as api:
        job = api.json("POST", f"/jobs/{args.job_id}/cancel")
    print(f"job {args.job_id} {printable(str(job.get('status', 'canceled')))}")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    with open_api(args) as api:
        job = api.json("POST", f"/jobs/{args.job_id}/retry")
    print(f"job {args.job_id} {printable(str(job.get('status', 'queued')))} again")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    with open_api(args) as api, api.stream("DELETE", f"/jobs/{args.job_id}") as response:
        response.read()  # 204: nothing to show
    print(f"job {args.job_id} removed, with its output and log")
    return EXIT_OK


def no_log_error(api: Api, job_id: str, error: CliError) -> CliError:
    """Why a job has no ffmpeg log, in the job's own terms (not always "not yet")."""
    job = api.json("GET", f"/status/{job_id}")
    status = printable(str(job.get("status", "?")))
    if status in ("queued", "processing"):
        return CliError(
            f"job {job_id} is {status} and has no ffmpeg log yet: `mediaflow wait {job_id}`, then try again",
            EXIT_USAGE,
            http_status=404,
        )
    if status in ("failed", "canceled"):
        reason = printable(str(job.get("error") or "no reason given"))
        return CliError(
            f"job {job_id} {status} before ffmpeg ran, so there is no ffmpeg log; the reason: {reason}",
            EXIT_JOB_FAILED,
            http_status=404,
        )
    return error


def cmd_logs(args: argparse.Namespace) -> int:
    with open_api(args) as api, api.stream("GET", f"/jobs/{args.job_id}/log", passthrough=(404,)) as response:
        if response.status_code == 404:
            response.read()
            raise no_log_error(api, args.job_id, error_for_response(response, api.server))
        if sys.stdout.isatty():  # the log is ffmpeg's stderr from the server: keep escapes off a terminal
            for text in response.iter_lines():  # ffmpeg ends its stats lines with \r: show each on its own line
                sys.stdout.write(printable(text) + "\n")
        else:
            for chunk in response.iter_bytes():
                sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    return EXIT_OK


def reporting_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command, turning a CliError into its message on stderr and its exit code (no traceback)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CliError as error:
            print(f"mediaflow {args.command}: {error}", file=sys.stderr)
            return error.exit_code
        except BrokenPipeError:  # `mediaflow logs ID | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush stays quiet
            return EXIT_OK
        except OSError as exc:  # reading the file to upload, writing where -o points
            name = f" {exc.filename}" if exc.filename else ""
            print(f"mediaflow {args.command}:{name}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print(f"\nmediaflow {args.command}: interrupted", file=sys.stderr)
            return 130

    return run


# --- argument parsing ------------------------------------------------------------------------------


def _non_negative_int(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of 0 or more")
    return int(value)


def _connection_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("server")
    group.add_argument(
        "--server", metavar="URL", help=f"the MediaFlow server (default: $MEDIAFLOW_URL, else {DEFAULT_SERVER})"
    )
    group.add_argument("--api-key", metavar="KEY", help="API key sent as X-API-Key (default: $MEDIAFLOW_API_KEY)")
    return options


def add_client_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add submit, status, list, download, cancel, retry and logs to `mediaflow`'s subcommands."""
    common = [_connection_options()]

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=common)
        parser.set_defaults(handler=reporting_errors(handler))
        return parser

    submit = command("submit", cmd_submit, "queue a job for a local file (uploaded) or a server-side source")
    submit.add_argument(
        "source",
        metavar="FILE|SOURCE",
        help="a local file to upload, or a source the server reads: an http(s):// URL, upload://…, "
        "s3://bucket/key, or a path below the server's LOCAL_SOURCE_ROOTS",
    )
    submit.add_argument("--method", help=f"what to do: {KNOWN_METHODS}")
    submit.add_argument(
        "--template",
        metavar="NAME",
        help="many outputs from a template (built-in: web, hls, ...; GET /templates lists them); instead of --method",
    )
    submit.add_argument(
        "--spec",
        type=Path,
        metavar="JOB.JSON",
        help='many outputs as written in a file: {"outputs": [...]} (see README); instead of --method',
    )
    submit.add_argument("--format", help="output container (default: mp4 for video methods, mp3 for extract_audio)")
    submit.add_argument("--wait", action="store_true", help="follow the job's progress, then download the output")
    submit.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="with --wait: where to save the output (default: the server's file name, here; "
        "with --template/--spec a folder, default ./JOB_ID)",
    )
    submit.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="submitting again with the same key returns the same job instead of a new one",
    )

    status = command("status", cmd_status, "show a job's status and progress")
    status.add_argument("job_id", type=job_id_argument)
    status.add_argument("--json", action="store_true", help="print the server's JSON")

    listing = command("list", cmd_list, "list jobs, newest first")
    listing.add_argument("--status", choices=STATUSES, help="only jobs with this status")
    listing.add_argument("--limit", type=_non_negative_int, default=10, help="jobs per page, 1-100 (default 10)")
    listing.add_argument("--skip", type=_non_negative_int, default=0, help="jobs to skip (default 0)")
    listing.add_argument("--json", action="store_true", help="print the server's JSON")

    wait = command("wait", cmd_wait, "follow a job until it ends (exit 0 completed, 1 failed or canceled)")
    wait.add_argument("job_id", type=job_id_argument)
    wait.add_argument("--download", action="store_true", help="then download the output, as `download` does")
    wait.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="with --download: file or directory to save to (default: the server's file name, here)",
    )

    download = command("download", cmd_download, "download a completed job's output")
    download.add_argument("job_id", type=job_id_argument)
    download.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="file or directory to save to (default: the server's file name, here)",
    )
    download.add_argument(
        "--all",
        action="store_true",
        help="every file of a POST /jobs job's outputs, into the -o folder (default ./JOB_ID)",
    )

    cancel = command("cancel", cmd_cancel, "cancel a queued or running job")
    cancel.add_argument("job_id", type=job_id_argument)

    retry = command("retry", cmd_retry, "run a failed or canceled job again")
    retry.add_argument("job_id", type=job_id_argument)

    delete = command("delete", cmd_delete, "remove a finished job with its output and log")
    delete.add_argument("job_id", type=job_id_argument)

    logs = command("logs", cmd_logs, "print the ffmpeg log of a job's last run")
    logs.add_argument("job_id", type=job_id_argument)

    workers = command("workers", cmd_workers, "list the worker processes alive on every machine")
    workers.add_argument("--json", action="store_true", help="print the server's JSON")
