"""Small crash-safe file helpers: write to a temporary file, fsync, then rename.

Shared by the search (run directories, checkpoints) and the export (artifact folders), so both
write files the same way: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Optional


def umask() -> int:
    """The process umask, read without changing it (Linux), else the common 022.

    Read from /proc rather than with ``os.umask`` (which sets it to read it), as another
    thread may be creating files meanwhile."""
    try:
        with open("/proc/self/status", "r", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the umask (0644 usually)."""
    return 0o666 & ~umask()


def folder_mode() -> int:
    """The mode ``os.makedirs`` gives a new folder: 0777 less the umask (0755 usually)."""
    return 0o777 & ~umask()


def temp_file(directory: str, suffix: str = "") -> str:
    """A new empty hidden file in ``directory`` (for a write-then-rename), with the mode an
    ordinary new file gets. ``tempfile.mkstemp`` makes it 0600, which the rename would keep:
    a file another user (a serving process) may read would end up private."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    return tmp


def temp_folder(directory: str, prefix: str) -> str:
    """A new hidden folder in ``directory`` (for a write-then-rename), with the mode an
    ordinary new folder gets, not ``tempfile.mkdtemp``'s private 0700."""
    tmp = tempfile.mkdtemp(dir=directory, prefix=prefix)
    os.chmod(tmp, folder_mode())
    return tmp


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` in one piece, with an ordinary new file's mode."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = temp_file(directory, suffix=os.path.basename(path))
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fsync_dir(path: str) -> None:
    """Flush a directory entry (a rename into it) to disk; best effort where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def json_default(obj: Any) -> Any:
    """`json.dumps`' ``default``: numpy scalars and arrays as lists, sets sorted, objects with
    ``to_dict`` (specs) as their dict, anything else as its repr."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return repr(obj)


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode("utf-8"))


def read_json_or_none(path: str) -> Optional[Any]:
    """The JSON in `path`, or None if the file does not exist. A corrupt file raises ValueError."""
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is corrupt ({e.msg} at line {e.lineno}); restore it from a "
                         "backup or delete it to start that part afresh") from None
