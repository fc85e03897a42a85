"""The client half of `mediaflow`: the argparse wiring of the commands that talk to a running MediaFlow
server over HTTP, and how their failures reach the user. The commands live beside it:

- submit_command.py: `submit` (upload or pass on the source, POST /process or POST /jobs, --wait);
- job_commands.py: status, list, wait, download, cancel, retry, delete, logs, workers;
- session.py: which server and key, what a job id may look like;
- api.py (the server over HTTP, failures as `CliError`s with exit codes), follow.py (following a job
  to its end), transfer.py and outputs.py (moving files), terminal.py (text for the terminal).

Only httpx and the standard library are imported (never the server's modules), so the client starts
quickly and works on a machine that has none of the server's dependencies. Everything the server
sends is treated as untrusted: file names are reduced to a plain name, text is stripped of terminal
control characters before it is printed.

Exit codes (see cli.py): 0 success, 1 the job failed or was canceled, 2 usage or input error (4xx),
3 the server could not be reached or answered with an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from mediaflow.client.api import EXIT_OK, EXIT_USAGE, CliError
from mediaflow.client.job_commands import (
    cmd_cancel,
    cmd_delete,
    cmd_download,
    cmd_list,
    cmd_logs,
    cmd_retry,
    cmd_status,
    cmd_wait,
    cmd_workers,
)
from mediaflow.client.session import DEFAULT_SERVER, job_id_argument
from mediaflow.client.submit_command import KNOWN_METHODS, cmd_submit

STATUSES = ("queued", "processing", "completed", "failed", "canceled")


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
        help='many outputs as written in a file: {"outputs": [...]} (see docs/outputs.md); instead of --method',
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
        "--destination",
        metavar="s3://BUCKET/PREFIX/",
        help="deliver the job's files to your own bucket (allowed by the server's S3_DESTINATION_BUCKETS)",
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
    download.add_argument(
        "--file",
        metavar="NAME",
        help="one file of a job of many: an output's name (if it made one file) or a file's path, "
        "e.g. stream/master.m3u8 (`mediaflow status JOB_ID` lists them)",
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
