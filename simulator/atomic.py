"""Files that exist are whole: write to a temporary name beside the target, fsync, rename.

The one place the project writes a result file (tables, config sidecars, checkpoints).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["write_atomically"]


def write_atomically(path: Path, write: Callable[[IO[Any]], Any], binary: bool = False) -> Path:
    """Call ``write(handle)`` on a fresh temporary file beside ``path``, fsync it and rename it
    over ``path``; return ``path``.

    The temporary name is ``.NAME.partial`` (a folder has one writer: runs and sweeps lock
    theirs). Whatever sits there (a planted symlink, say) is removed first and the file is
    created with ``O_EXCL | O_NOFOLLOW``, so nothing outside the folder is written; a symlink at
    ``path`` itself is replaced by the rename, never followed. On any error the temporary file
    is removed and ``path`` is left as it was.
    """
    tmp = path.with_name(f".{path.name}.partial")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb" if binary else "w", newline=None if binary else "") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
