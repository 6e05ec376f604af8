"""write_atomic and safe_filename."""

from __future__ import annotations

import os
import threading

import pytest

from include.headroom.fileio import safe_filename, write_atomic


def test_write_atomic_replaces_whole_files_and_creates_the_folder(tmp_path):
    path = tmp_path / "a" / "b" / "report.html"
    assert write_atomic(path, "<p>one</p>") == path
    assert path.read_text() == "<p>one</p>"
    write_atomic(path, b"\x89PNG two")
    assert path.read_bytes() == b"\x89PNG two"
    assert os.listdir(path.parent) == ["report.html"]


def test_write_atomic_gives_the_permissions_of_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "x.json", "{}")
        (tmp_path / "plain.json").write_text("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == (tmp_path / "plain.json").stat().st_mode & 0o777 == 0o644
    write_atomic(tmp_path / "secret.json", "{}", mode=0o600, fsync=True)
    assert (tmp_path / "secret.json").stat().st_mode & 0o777 == 0o600


def test_concurrent_writers_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "state.json"
    payloads = [str(i) * 50_000 for i in range(8)]
    threads = [threading.Thread(target=write_atomic, args=(path, p)) for p in payloads for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_text() in payloads  # one writer's whole text, never a mix
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(path, 42)  # type: ignore[arg-type]
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["keep.txt"]


@pytest.mark.parametrize("name, safe", [
    ("manual__2026-11-01T00:00:00+00:00", "manual__2026-11-01T00_00_00_00_00"),
    ("checkout-api", "checkout-api"),
    ("a/b\\c d", "a_b_c_d"),
    ("../../etc/passwd", ".._.._etc_passwd"),
    ("..", "__"),
    (".", "_"),
    ("", "_"),
    ("ünïcode", "_n_code"),
])
def test_safe_filename(name, safe):
    assert safe_filename(name) == safe


def test_safe_filename_keeps_extra_characters_but_never_a_separator():
    assert safe_filename("service=checkout api", keep="=") == "service=checkout_api"
    assert safe_filename("a/b", keep="/") == "a_b"
