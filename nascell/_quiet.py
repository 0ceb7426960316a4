"""Quiet binaries: TensorFlow's native log lines off unless the user asks for them.

TensorFlow prints C++ log lines on import and at run time (oneDNN notices, CUDA probes, XLA
service lines). Most respect ``TF_CPP_MIN_LOG_LEVEL``, read when TensorFlow loads, but a few
are written through Abseil before its logging is initialized and ignore that variable (in
TF 2.21: the oneDNN and cudart lines at import). So a quiet process

* sets ``TF_CPP_MIN_LOG_LEVEL=3`` before TensorFlow is imported (unless the user set it), and
* imports TensorFlow with file descriptor 2 sent to a temporary file, then writes back to the
  real stderr every captured line that is not a native log line (Python warnings, tracebacks
  and anything else stay visible; if the import fails, everything captured is written back).

Who is quiet: a nascell binary (``nascell-search``, ``nascell-train``, ``nascell-export``, or
the same run as ``python -m nascell.search.bin.search`` ...) run without ``--verbosity``/``-v``,
and every process started with ``NASCELL_QUIET=1`` in its environment, which a quiet binary
sets so its worker processes (local or Ray) are quiet too. ``--verbosity=0`` (or ``-v 0``)
keeps TensorFlow's own logging as it is. A quiet binary also keeps its Python loggers (absl,
TensorFlow's) to warnings and errors (`quiet_python_logs`).

Nothing here imports TensorFlow until `prepare()`, which `nascell/_quiet_import.py` calls
when `nascell/__init__.py` imports it first thing: in a quiet process it imports TensorFlow and
Keras right away, with their native lines hidden, so the package's own imports find them
loaded.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator, List, Optional, Sequence

ENV = "NASCELL_QUIET"
TF_ENV = "TF_CPP_MIN_LOG_LEVEL"
BINARIES = ("nascell-search", "nascell-train", "nascell-export")
# The same binaries run as ``python -m <module>``: any module of a ``bin`` package (named by
# pattern, so that this module of ``nascell/`` names nothing in the search or export halves).
_BINARY_MODULE = re.compile(r"^nascell\.(search|export)\.bin\.\w+$")

# A native (C++) log line, optionally prefixed by Ray's "(task pid=N) ", or the lines Abseil
# and TensorFlow's CPU feature guard print around them. Abseil writes lines logged before its
# initialization with a zero date ("I0000 00:00:<seconds since the epoch>"), which tells them
# from absl-py's Python lines ("I1129 08:26:13.206747").
_NATIVE = re.compile(
    r"^(\([^)]*pid=\d+[^)]*\)\s+)?("
    r"[IWEF]0000 00:00:\d+(\.\d+)?\s+\d+ [\w./+-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate "
    r"compiler flags\."
    # TensorFlow Lite's own logger, when an interpreter first allocates its tensors.
    r"|INFO: (Created|Initialized) TensorFlow Lite )")


def is_native_log_line(line: str) -> bool:
    """True for a line TensorFlow's C++ runtime (or Abseil) logged, not Python."""
    return bool(_NATIVE.match(line))


def _asks_verbosity(argv: Sequence[str]) -> Optional[int]:
    """The ``--verbosity`` / ``-v`` value on a command line, or None when absent."""
    for i, arg in enumerate(argv):
        for name in ("--verbosity", "-v"):
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1:]
            else:
                continue
            try:
                return int(value)
            except ValueError:
                return 0  # absl will reject it; do not hide anything meanwhile
    return None


def _run_as_module(argv: Sequence[str]) -> bool:
    """``python -m nascell.search.bin.search ...``: while Python imports the module's parent
    packages (which is when `prepare` runs), ``sys.argv[0]`` is ``"-m"``; the module name is
    in ``sys.orig_argv``."""
    if argv[0] != "-m":
        return False
    orig = list(getattr(sys, "orig_argv", ()))
    return "-m" in orig and orig.index("-m") + 1 < len(orig) and \
        bool(_BINARY_MODULE.match(orig[orig.index("-m") + 1]))


def wanted(argv: Optional[Sequence[str]] = None, environ=None) -> bool:
    """Whether this process should be quiet (see the module docstring): a binary's own
    ``--verbosity`` decides, else ``NASCELL_QUIET`` (set by a parent), else a binary is quiet
    and anything else (Python, a notebook, pytest) is not."""
    environ = os.environ if environ is None else environ
    argv = sys.argv if argv is None else argv
    binary = bool(argv) and (os.path.basename(argv[0]) in BINARIES or _run_as_module(argv))
    verbosity = _asks_verbosity(argv[1:]) if binary else None
    if verbosity is not None:
        return verbosity < 0
    if environ.get(ENV) in ("0", "1"):
        return environ[ENV] == "1"
    return binary


@contextlib.contextmanager
def muted_native_logs() -> Iterator[None]:
    """Send fd 2 to a temporary file; afterwards, write back all but the native log lines
    (everything, if the body raised)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr (a closed or replaced stream)
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept: List[str] = [ln for ln in text.splitlines(keepends=True)
                               if failed or not is_native_log_line(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def muted_if_quiet() -> contextlib.AbstractContextManager:
    """`muted_native_logs()` in a quiet process (for native code that logs after the import,
    such as TensorFlow Lite's interpreter), else a context that does nothing."""
    return muted_native_logs() if os.environ.get(ENV) == "1" else contextlib.nullcontext()


def early() -> contextlib.AbstractContextManager:
    """Called before TensorFlow is imported: in a quiet process, set ``TF_CPP_MIN_LOG_LEVEL``
    (unless set), mark the environment for child processes, and return `muted_native_logs()`
    to wrap the import; otherwise a context that does nothing."""
    if not wanted():
        if os.environ.get(ENV) == "1":  # a binary asked for --verbosity: so do its workers
            os.environ[ENV] = "0"
        return contextlib.nullcontext()
    os.environ.setdefault(TF_ENV, "3")
    os.environ[ENV] = "1"
    if "tensorflow" in sys.modules:  # too late to hide its import lines
        return contextlib.nullcontext()
    return muted_native_logs()


def prepare() -> None:
    """In a quiet process, import TensorFlow and Keras now, hiding their native log lines."""
    if not wanted() or "tensorflow" in sys.modules:
        return
    with early():
        import keras  # noqa: F401  (imports TensorFlow as its backend)
        import tensorflow  # noqa: F401


def quiet_python_logs() -> None:
    """In a quiet process, absl's and TensorFlow's Python loggers keep warnings and errors
    only. Binaries call it once absl has parsed the flags (which sets the verbosity)."""
    if os.environ.get(ENV) != "1":
        return
    import logging

    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def ray_init_options() -> dict:
    """`ray.init` keyword arguments that keep a quiet process's Ray workers quiet too (their
    output is forwarded to the driver): the environment for the workers, Ray's own logging at
    warnings. Empty for a process that is not quiet."""
    if os.environ.get(ENV) != "1":
        return {}
    import logging
    env = {ENV: "1", TF_ENV: os.environ.get(TF_ENV, "3")}
    return {"logging_level": logging.WARNING, "runtime_env": {"env_vars": env}}
