"""An exclusive, non-blocking advisory lock on a folder: a run's partial folder, a sweep's folder.

The lock is ``flock`` on the folder's ``.lock`` file, held through an open descriptor: the
operating system releases it when the process ends, however it ends, so a crashed writer never
leaves a folder locked. Where the platform has no advisory locks (Windows), nothing is locked.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["lock_folder", "unlock_folder"]


def lock_folder(folder: Path, error: type[Exception], busy: str) -> int | None:
    """Take ``folder/.lock`` exclusively, without waiting.

    Parameters
    ----------
    folder : Path
        An existing folder.
    error : Exception class
        Raised, with message ``busy``, when another process holds the lock; and when the lock
        file cannot be opened (e.g. it is a symlink, which is never followed).
    busy : str
        The message for a folder in use, e.g. ``"another run is writing to out"``.

    Returns
    -------
    The lock's file descriptor (pass it to :func:`unlock_folder`), or None without advisory locks.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks
        return None
    path = folder / ".lock"
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise error(f"{path}: cannot open the lock ({exc}; a symlink is never followed)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise error(busy) from None
    return fd


def unlock_folder(fd: int | None) -> None:
    """Release a lock taken by :func:`lock_folder` (None: nothing to release)."""
    if fd is not None:
        os.close(fd)
