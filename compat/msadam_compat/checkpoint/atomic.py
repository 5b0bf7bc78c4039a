"""Atomic file replacement: write beside the target, flush and fsync, then ``os.replace``.

MindSpore 2.10 deletes an existing checkpoint first and then writes ``<name>.tmp`` and renames it
(``_exec_save``, ``mindspore/train/serialization.py`` lines 379-390 and 466-473), so a crash while
saving loses both the old and the new file. Here the old file stays until the new one is complete
on disk: a failure at any point leaves the target as it was and removes the temporary file. The
result gets MindSpore's final mode, read-only for its owner (``os.chmod(..., stat.S_IRUSR)``,
line 473).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator

__all__ = ["FINAL_MODE", "atomic_path", "fsync_file"]

#: serialization.py line 473: a saved checkpoint is made read-only for its owner.
FINAL_MODE = stat.S_IRUSR


def fsync_file(path: str) -> None:
    """Flush ``path``'s data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (best effort: not every platform or file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str) -> Iterator[str]:
    """Yield a temporary path in ``target``'s directory; on success it becomes ``target``.

    The caller writes the whole file to the yielded path (and may fsync it itself; it is fsynced
    again here). On any exception the temporary file is removed and ``target`` is untouched.
    """
    directory = os.path.dirname(target) or "."
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield temporary
        fsync_file(temporary)
        os.chmod(temporary, FINAL_MODE)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    _fsync_directory(directory)
