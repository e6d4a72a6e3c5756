"""The folder lock that runs and sweeps hold while they write: exclusive, released, no symlinks."""

from __future__ import annotations

import os

import pytest

from simulator.folder_lock import lock_folder, unlock_folder

pytestmark = pytest.mark.skipif(os.name == "nt", reason="no advisory locks on Windows")


class Busy(Exception):
    pass


def test_a_held_folder_is_refused_until_its_lock_is_released(tmp_path):
    fd = lock_folder(tmp_path, Busy, "in use")
    assert fd is not None and (tmp_path / ".lock").is_file()
    with pytest.raises(Busy, match="^in use$"):  # flock: a second open file is refused
        lock_folder(tmp_path, Busy, "in use")
    unlock_folder(fd)
    again = lock_folder(tmp_path, Busy, "in use")
    unlock_folder(again)
    unlock_folder(None)  # nothing held: nothing to do


def test_a_symlinked_lock_file_is_never_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").symlink_to(target)
    with pytest.raises(Busy, match=r"\.lock: cannot open the lock .*symlink is never followed"):
        lock_folder(folder, Busy, "in use")
    assert target.read_text() == "keep"
