"""Source validation: only uploads, s3:// (when configured) and files below the allowed roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mediaflow.media.sources import SourceError, parse_source, storage_filename, upload_source
from mediaflow.storage.local import LocalStorage
from tests.apptools import make_settings


@pytest.fixture
def env(tmp_path: Path):
    settings = make_settings(tmp_path)
    media = tmp_path / "media"
    (media / "clip.mp4").write_bytes(b"x")
    (media / "sub").mkdir()
    (media / "sub" / "deep.mp4").write_bytes(b"x")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    return settings, LocalStorage(tmp_path / "storage"), media, outside


def test_file_under_root_by_absolute_and_root_relative_path(env):
    settings, storage, media, _ = env
    by_absolute = parse_source(str(media / "clip.mp4"), settings, storage)
    assert by_absolute.kind == "local" and by_absolute.path == (media / "clip.mp4").resolve()
    assert parse_source("sub/deep.mp4", settings, storage).path == (media / "sub" / "deep.mp4").resolve()


@pytest.mark.parametrize("raw", ["/etc/passwd", "../secret.txt", "sub/../../secret.txt", "/proc/self/environ"])
def test_paths_outside_the_roots_are_refused(env, raw):
    settings, storage, media, _ = env
    with pytest.raises(SourceError, match="the server has no such file under media/"):
        parse_source(raw if raw.startswith("/") else raw, settings, storage)
    with pytest.raises(SourceError):
        parse_source(str(media / raw) if not raw.startswith("/") else raw, settings, storage)


def test_symlink_pointing_out_is_refused(env):
    settings, storage, media, outside = env
    (media / "link.mp4").symlink_to(outside)
    (media / "dirlink").symlink_to(outside.parent)
    with pytest.raises(SourceError):
        parse_source(str(media / "link.mp4"), settings, storage)
    with pytest.raises(SourceError):
        parse_source(str(media / "dirlink" / "secret.txt"), settings, storage)


def test_symlink_inside_the_root_is_fine(env):
    settings, storage, media, _ = env
    (media / "alias.mp4").symlink_to(media / "clip.mp4")
    assert parse_source(str(media / "alias.mp4"), settings, storage).path == (media / "clip.mp4").resolve()


def test_directories_devices_and_missing_files_are_refused(env):
    settings, storage, media, _ = env
    with pytest.raises(SourceError, match="not a regular file"):
        parse_source(str(media / "sub"), settings, storage)
    os.mkfifo(media / "pipe.mp4")
    with pytest.raises(SourceError, match="not a regular file"):
        parse_source(str(media / "pipe.mp4"), settings, storage)
    with pytest.raises(SourceError, match="no such file"):
        parse_source(str(media / "nope.mp4"), settings, storage)


@pytest.mark.parametrize(
    "raw",
    [
        "http://127.0.0.1/x.mp4",
        "file:///etc/passwd",
        "concat:/etc/passwd|x",
        "pipe:0",
        "subfile:x",
        "data:abc",
        "clip.mp4\x00.txt",
        "",
        "upload://nothex/clip.mp4",
        "upload://" + "a" * 32 + "/../x",
        "upload://" + "a" * 32 + "/",
    ],
)
def test_urls_protocols_and_malformed_values_are_refused(env, raw):
    settings, storage, _, _ = env
    with pytest.raises(SourceError):
        parse_source(raw, settings, storage)


def test_s3_source_without_s3_configured_says_so(env):
    settings, storage, _, _ = env
    with pytest.raises(SourceError, match="S3 is not configured"):
        parse_source("s3://bucket/key.mp4", settings, storage)


def test_upload_source_round_trip(env):
    settings, storage, _, _ = env
    source, key = upload_source("../../My Holiday (1).mp4", None)
    parsed = parse_source(source, settings, storage)
    assert parsed.kind == "upload" and parsed.key == key and key.startswith("uploads/")
    assert parsed.name == "My_Holiday_1.mp4"
    # With an API key the key lies in that owner's folder; another owner's parse leads elsewhere.
    source, key = upload_source("clip.mp4", "alice")
    assert (
        parse_source(source, settings, storage, "alice").key
        == key
        != parse_source(source, settings, storage, "bob").key
    )


@pytest.mark.parametrize(
    "name,expected",
    [
        ("../../etc/passwd", "passwd"),
        ("-rf.mp4", "rf.mp4"),
        ("...", "input"),
        ("a b/c d.mov", "c_d.mov"),
        ("ü.mp4", "input.mp4"),
    ],
)
def test_safe_filename(name, expected):
    assert storage_filename(name) == expected
