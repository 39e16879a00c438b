"""sr.ownership.owned_folder: a folder of ours is replaced whole or not at all; a failed swap restores the old one."""

from __future__ import annotations

import errno
import os

import pytest

import sr.atomic
from sr.errors import UserError
from sr.ownership import MANIFEST, owned_folder

MARKER = "done.txt"
KIND = "output"


def _contents(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _previous(tmp_path):
    """A folder an earlier owned_folder made (its manifest lists its files)."""
    out = tmp_path / "out"
    with owned_folder(out, KIND) as new:
        (new / "sub").mkdir(parents=True)
        (new / MARKER).write_text("old")
        (new / "sub" / "a.txt").write_text("old a")
    return out


def test_success_replaces_the_contents_and_leaves_no_temporary(tmp_path):
    out = _previous(tmp_path)
    with owned_folder(out, KIND) as new:
        assert new.parent == out.parent and new != out
        (new / MARKER).write_text("new")
        (new / "b.txt").write_text("new b")
    assert _contents(out) == {MARKER: "new", "b.txt": "new b"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert out.stat().st_mode & 0o777 == 0o777 & ~sr.atomic.UMASK  # not mkdtemp's owner-only mode


def test_a_new_folder_is_created(tmp_path):
    with owned_folder(tmp_path / "a" / "b", KIND) as new:
        (new / MARKER).write_text("x")
    assert _contents(tmp_path / "a" / "b") == {MARKER: "x"}


def test_a_failure_while_building_leaves_the_old_folder_untouched(tmp_path):
    out = _previous(tmp_path)
    before = _contents(out)
    with pytest.raises(RuntimeError, match="half way"), owned_folder(out, KIND) as new:
        (new / MARKER).write_text("new")
        raise RuntimeError("half way")
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failed_final_rename_restores_the_old_folder(tmp_path, monkeypatch):
    out = _previous(tmp_path)
    before = _contents(out)
    rename = os.rename
    calls = []

    def failing_rename(src, dst):
        calls.append((os.fspath(src), os.fspath(dst)))
        if os.fspath(dst) == os.fspath(out) and ".new-" in os.fspath(src):  # only the new folder moving in
            raise OSError(errno.EIO, "Input/output error")
        return rename(src, dst)

    monkeypatch.setattr(sr.atomic.os, "rename", failing_rename)
    with pytest.raises(OSError) as info, owned_folder(out, KIND) as new:
        (new / MARKER).write_text("new")
    assert info.value.filename == str(out)
    assert "could not rename the new folder into place" in str(info.value) and "left in place" in str(info.value)
    assert len(calls) == 3  # old aside, new in (failed), old back
    assert _contents(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failed_restore_names_where_the_old_folder_is(tmp_path, monkeypatch):
    out = _previous(tmp_path)
    before = _contents(out)
    rename = os.rename

    def failing_rename(src, dst):
        if os.fspath(dst) == os.fspath(out):  # neither the new folder nor the old one can move back in
            raise OSError(errno.EIO, "Input/output error")
        return rename(src, dst)

    monkeypatch.setattr(sr.atomic.os, "rename", failing_rename)
    with pytest.raises(OSError) as info, owned_folder(out, KIND):
        pass
    (aside,) = tmp_path.glob(".out.old-*")
    assert f"kept as {aside / 'out'}" in str(info.value)
    assert _contents(aside / "out") == before  # nothing deleted


def test_a_folder_of_other_files_is_refused_and_kept(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / MARKER).write_text("a file named like ours proves nothing")
    with pytest.raises(UserError, match=f"{mine} exists and was not made by this tool"):
        with owned_folder(mine, KIND):
            pytest.fail("the block must not run")
    assert _contents(mine) == {"notes.txt": "keep me", MARKER: "a file named like ours proves nothing"}
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
