"""skacd._atomic: a file appears complete at its path, or not at all."""

import os
import stat

import pytest

from skacd._atomic import atomic_open, atomic_write


def _names(folder):
    return sorted(os.listdir(folder))


def test_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert _names(tmp_path) == ["out.bin"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(path, "w", encoding="utf-8") as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["out.txt"]


def test_mode_honours_the_umask(tmp_path):
    umask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a", b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o640


def test_temporary_name(tmp_path):
    seen = []
    with atomic_open(tmp_path / "x.skf", prefix=".tmp-x.skf-1-", suffix="",
                     fsync=False, fsync_directory=True) as fh:
        seen = _names(tmp_path)
        fh.write(b"1")
    assert len(seen) == 1 and seen[0].startswith(".tmp-x.skf-1-")
    with atomic_open(tmp_path / "y.csv", "w") as fh:
        seen = [n for n in _names(tmp_path) if n != "x.skf"]
    assert seen[0].startswith(".y.csv.") and seen[0].endswith(".tmp")


def test_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "a", "a"):
            pass
