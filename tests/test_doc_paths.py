"""Every path the documentation names exists: README.md, ARCHITECTURE.md and docs/*.md, the comments
and docstrings of the code, and the configuration files and scripts. Files move when the code is
reshaped; a comment that still sends the reader to the old place costs the next engineer a search,
so the names are checked here.

Checked: repository paths (`mediaflow/jobs/model.py`, `scripts/bench.py`, `tests/servers/`), module
file names written without their folder (`worker/reaper.py`, `sqlite.py`), relative Markdown links
and their `#anchors`, and `mediaflow.x.y` names in the Markdown files (they must import).
"""

from __future__ import annotations

import ast
import importlib
import io
import os
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from tests.apptools import REPO

# Top-level folders whose paths are written from the repository root (checked exactly).
ROOT_FOLDERS = ("mediaflow", "tests", "scripts", "benchmarks", "deploy", "docs", ".ci")
# Folders that hold no source: the virtualenv, the test servers, data a run leaves behind (at the top),
# and caches (anywhere).
NOT_SOURCE_AT_THE_TOP = {".git", ".venv", ".deps", "data", "media", "out", "test-artifacts", "build"}
NOT_SOURCE_ANYWHERE = {"node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
CODE_FOLDERS = ("mediaflow", "scripts", "benchmarks", "tests")

PATH = re.compile(
    r"(?<![\w./-])"  # a whole token: not the tail of a URL, a longer path or a word
    r"((?:[\w.-]+/)*[\w-]+\.py"  # a module file, with or without its folders
    rf"|(?:{'|'.join(map(re.escape, ROOT_FOLDERS))})/(?:[\w.-]+/)*[\w.-]*)"  # a path from the root
    r"(?![\w-])"
)
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
DOTTED_NAME = re.compile(r"`(mediaflow(?:\.\w+)+)")


@cache
def repository_files() -> tuple[str, ...]:
    """Every file of the checkout, as a path relative to it (the virtualenv and run data aside)."""
    found = []
    for folder, subfolders, files in os.walk(REPO):
        relative = Path(folder).relative_to(REPO)
        skipped = NOT_SOURCE_ANYWHERE | (NOT_SOURCE_AT_THE_TOP if relative == Path() else set())
        subfolders[:] = [name for name in subfolders if name not in skipped and not name.endswith(".egg-info")]
        found.extend((relative / name).as_posix() for name in files)
    return tuple(found)


def exists(token: str) -> bool:
    token = token.rstrip(".")  # the end of a sentence
    if token.split("/")[0] in ROOT_FOLDERS:
        return (REPO / token).exists()
    # Written without its folders: some file's path ends with it.
    return any(path == token or path.endswith(f"/{token}") for path in repository_files())


def markdown_files() -> list[Path]:
    return [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md"))]


def project_files() -> list[Path]:
    """Configuration and scripts whose comments and values name repository paths."""
    named = [".env.example", "Dockerfile", "docker-compose.yml", "pyproject.toml", ".ci/run"]
    return [REPO / name for name in named] + sorted(REPO.glob("scripts/*.sh")) + sorted(REPO.glob("deploy/**/*.yaml"))


def code_files() -> list[Path]:
    in_folders = [path for path in repository_files() if path.startswith(CODE_FOLDERS) and path.endswith(".py")]
    return sorted(REPO.glob("*.py")) + [REPO / path for path in in_folders]


def lines_of(path: Path) -> Iterator[tuple[int, str]]:
    yield from enumerate(path.read_text().splitlines(), start=1)


def prose_of_code(path: Path) -> Iterator[tuple[int, str]]:
    """The comments and docstrings of a Python file: the text written for people."""
    source = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                yield node.body[0].lineno, docstring


def missing_paths(path: Path, prose: Iterator[tuple[int, str]]) -> list[str]:
    where = path.relative_to(REPO)
    return [
        f"{where}:{line}: {token}"
        for line, text in prose
        for token in dict.fromkeys(PATH.findall(text))  # once per line, in order
        if not exists(token)
    ]


def test_every_path_named_in_the_docs_exists():
    missing = [problem for doc in markdown_files() for problem in missing_paths(doc, lines_of(doc))]
    assert not missing, "the docs name paths that do not exist:\n" + "\n".join(missing)


def test_every_path_named_in_configuration_and_scripts_exists():
    missing = [problem for file in project_files() for problem in missing_paths(file, lines_of(file))]
    assert not missing, "configuration and scripts name paths that do not exist:\n" + "\n".join(missing)


def test_every_path_named_in_comments_and_docstrings_exists():
    missing = [problem for code in code_files() for problem in missing_paths(code, prose_of_code(code))]
    assert not missing, "comments and docstrings name paths that do not exist:\n" + "\n".join(missing)


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    anchors: set[str] = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6} (.+)", line)):
            anchor = github_anchor(heading.group(1))
            suffix = 0
            while (anchor if not suffix else f"{anchor}-{suffix}") in anchors:
                suffix += 1  # GitHub numbers repeated headings
            anchors.add(anchor if not suffix else f"{anchor}-{suffix}")
    return anchors


def test_every_relative_link_in_the_docs_leads_somewhere():
    broken = []
    for doc in markdown_files():
        for line, text in lines_of(doc):
            for target in MARKDOWN_LINK.findall(text):
                if re.match(r"[a-z]+:", target):
                    continue  # http(s), mailto: not ours to check here
                file_part, _, anchor = target.partition("#")
                linked = (doc.parent / file_part).resolve() if file_part else doc
                where = f"{doc.relative_to(REPO)}:{line}: {target}"
                if not linked.exists():
                    broken.append(f"{where} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
                    broken.append(f"{where} (no such heading)")
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


def test_every_mediaflow_name_in_the_docs_imports():
    """`mediaflow.media.quality.measure_quality` in the docs is a promise that it is there."""
    unknown = []
    for doc in markdown_files():
        for line, text in lines_of(doc):
            for name in DOTTED_NAME.findall(text):
                if not resolves(name):
                    unknown.append(f"{doc.relative_to(REPO)}:{line}: {name}")
    assert not unknown, "the docs name what the package does not have:\n" + "\n".join(unknown)


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False
