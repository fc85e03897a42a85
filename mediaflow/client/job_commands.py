"""The `mediaflow` commands that look at or act on jobs already made: status, list, wait, download,
cancel, retry, delete, logs and workers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mediaflow.client.api import EXIT_JOB_FAILED, EXIT_OK, EXIT_USAGE, Api, CliError, error_for_response
from mediaflow.client.follow import job_ended_error, wait_for_job
from mediaflow.client.outputs import download_all, download_one
from mediaflow.client.session import open_api
from mediaflow.client.terminal import format_job, format_job_table, format_outputs, format_workers, printable
from mediaflow.client.transfer import download_output


def cmd_status(args: argparse.Namespace) -> int:
    with open_api(args) as api:
        job = api.json("GET", f"/status/{args.job_id}")
        # A job of outputs (POST /jobs): what each output is and has made lives in its full record.
        record = None if job.get("method_name") else api.json("GET", f"/jobs/{args.job_id}")
    if args.json:
        print(json.dumps(job if record is None else {**job, "outputs": record.get("outputs")}, indent=2))
    else:
        print(format_job(job) if record is None else f"{format_job(job)}\n{format_outputs(record)}")
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
    if args.all and args.file:
        raise CliError("--all saves every file and --file one of them: choose one")
    with open_api(args) as api:
        if args.all:
            print(download_all(api, args.job_id, args.output))
        elif args.file:
            print(download_one(api, args.job_id, args.file, args.output))
        else:
            print(download_output(api, args.job_id, args.output))
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
