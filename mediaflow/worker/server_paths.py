"""Server paths out of what a job shows its user: the ffmpeg log it stores and the error it records.

ffmpeg names its input and output by path ("Input #0, mov,mp4,… from 'file:/tmp/mediaflow-w812-…/source'"),
and its error lines and Python's OSErrors do the same. A user learns nothing from the worker's temp
directory or where LOCAL_SOURCE_ROOTS live on disk, but an attacker maps the server with them. So the
work directory becomes "" (its files keep their plain names: `source`, `clip_compress.mp4`) and a
source root becomes the name users give it (`media/`). The server log keeps the unscrubbed text.
"""

from __future__ import annotations

from pathlib import Path

from mediaflow.settings import Settings


class ServerPaths:
    def __init__(self, settings: Settings, workdir: Path) -> None:
        pairs = [(str(workdir) + "/", ""), (str(workdir), ".")]
        for configured, resolved in zip(settings.LOCAL_SOURCE_ROOTS, settings.source_roots, strict=True):
            name = (configured.name or str(configured)) + "/"
            pairs += [(str(resolved) + "/", name), (str(configured.expanduser()) + "/", name)]
        # Longest first, so a root inside the work dir (or the other way round) is replaced whole.
        self._pairs = sorted(
            {(path, name) for path, name in pairs if path not in ("/", "./")},
            key=lambda pair: len(pair[0]),
            reverse=True,
        )

    def scrub(self, text: str) -> str:
        for path, name in self._pairs:
            text = text.replace(path, name)
        return text

    def scrub_file(self, source: Path, dest: Path) -> Path:
        """A copy of the text file `source` with server paths replaced, line by line (logs can be long)."""
        with open(source, encoding="utf-8", errors="replace") as lines, open(dest, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(self.scrub(line))
        return dest
