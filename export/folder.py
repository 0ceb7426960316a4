"""Writing a folder in one piece: stage it beside the target, then rename it into place.

    with staged_folder("exports/cell", overwrite=False) as tmp:
        ...write files into tmp...

Everything is written into a temporary folder next to the target (same file system), fsynced,
and renamed to the target only once complete, so a failure or a crash never leaves a
half-written folder. Replacing an existing folder moves the old one aside first and puts it
back if the rename fails. File-level atomics (one file, one JSON) are `nascell._io`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator

from nascell import _io


def check_target(directory: str, overwrite: bool) -> str:
    """The absolute target path; FileExistsError if it exists and may not be replaced."""
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"{directory} already exists; pass overwrite=True (--overwrite) "
                              f"to replace it, or choose another folder")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise FileExistsError(f"{directory} exists and is not a folder; remove it first")
    return directory


@contextlib.contextmanager
def staged_folder(directory: str, overwrite: bool) -> Iterator[str]:
    """Yield a fresh temporary folder; on a clean exit it becomes ``directory``; on an
    exception it is removed and ``directory`` is left as it was."""
    directory = check_target(directory, overwrite)
    parent, name = os.path.split(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = _io.temp_folder(parent, prefix=f".{name}.tmp-")  # a normal folder's mode, not 0700
    try:
        yield tmp
        fsync_tree(tmp)
        move_into_place(tmp, directory, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fsync_tree(root: str) -> None:
    """Flush every file and folder under ``root`` to disk."""
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())
        _io.fsync_dir(folder)


def move_into_place(tmp: str, directory: str, overwrite: bool) -> None:
    """Rename the finished folder to ``directory``; an old one is moved aside, then deleted."""
    if not os.path.exists(directory):
        os.rename(tmp, directory)
        _io.fsync_dir(os.path.dirname(directory))
        return
    if not overwrite:
        raise FileExistsError(f"{directory} appeared while it was being written; nothing was "
                              "replaced")
    parent, name = os.path.split(directory)
    old = tempfile.mkdtemp(dir=parent, prefix=f".{name}.old-")
    os.rmdir(old)
    os.rename(directory, old)
    try:
        os.rename(tmp, directory)
    except BaseException:
        os.rename(old, directory)  # put the previous folder back
        raise
    _io.fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)

