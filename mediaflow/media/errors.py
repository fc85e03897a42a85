"""What can go wrong while probing or running ffmpeg, as exceptions the worker turns into job errors."""

from __future__ import annotations


class SourceError(ValueError):
    """The source is not acceptable or cannot be had; the message tells the user what to do."""


class FfmpegError(Exception):
    """Base class of everything that goes wrong while probing or running ffmpeg."""


class InvalidFormatError(ValueError):
    """The requested output format is not available for the method; the message lists those that are."""


class ProbeError(FfmpegError):
    """The source is not a media file we accept; the message is fit to show to the user."""


class FfmpegFailedError(FfmpegError):
    def __init__(self, returncode: int, summary: str) -> None:
        self.returncode = returncode
        self.summary = summary
        if returncode < 0:
            message = f"ffmpeg was killed by signal {-returncode}"
        else:
            message = f"ffmpeg failed with exit code {returncode}"
        if summary:
            message += ": " + "; ".join(summary.splitlines())
        super().__init__(message)


class InputLimitError(ProbeError):
    """The input broke a resource limit while ffmpeg decoded it (frame size, duration, memory); the
    message names the setting."""
