"""How a nascell binary starts, and the first code its worker processes run: quiet or not.

The console scripts ``nascell-search``, ``nascell-train`` and ``nascell-export`` (setup.py) are
this module's `search`, `train` and `export`. It is a top-level module, outside the ``nascell``
package, because it has to run before ``nascell`` is imported: importing any ``nascell``
module imports TensorFlow, and TensorFlow's import prints C++ log lines. So the decision about
the process is made here, by the binaries and the workers they start, and ``import nascell``
itself decides nothing (it reads no command line and leaves file descriptor 2 alone). This
module imports nothing but the standard library until a binary has decided.

TensorFlow prints C++ log lines on import and at run time (oneDNN notices, CUDA probes, XLA
service lines). Most respect ``TF_CPP_MIN_LOG_LEVEL``, read when TensorFlow loads, but a few
are written through Abseil before its logging is initialized and ignore that variable (in
TF 2.21: the oneDNN and cudart lines at import). So a quiet process

* sets ``TF_CPP_MIN_LOG_LEVEL=3`` before TensorFlow is imported (unless the user set it), and
* imports TensorFlow with file descriptor 2 sent to a temporary file, then writes back to the
  real stderr every captured line that is not a native log line (Python warnings, tracebacks
  and anything else stay visible; if the import fails, everything captured is written back).

Who is quiet: a binary run without ``--verbosity``/``-v`` (``--verbosity=0`` or ``-v 0`` keeps
TensorFlow's own logging as it is), and the worker processes it starts: a quiet binary sets
``NASCELL_QUIET=1`` in its environment, which its local workers inherit (their pool
initializer is `worker_setup`) and its Ray workers are given (with `worker_setup` as their
setup hook, `ray_init_options`). A binary started with ``NASCELL_QUIET`` set and no
``--verbosity`` follows the variable. A quiet binary also keeps its Python loggers (absl,
TensorFlow's) to warnings and errors (`quiet_python_logs`).

``python -m nascell.search.bin.search`` runs the same ``main``, but Python imports ``nascell``
(and TensorFlow) before the module's first line: its INFO logs are off as in a binary, but
TensorFlow's import lines show. Run the installed binaries to hide them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import tempfile
from typing import Any, Iterator, List, Mapping, Optional, Sequence

ENV = "NASCELL_QUIET"
TF_ENV = "TF_CPP_MIN_LOG_LEVEL"
BINARIES = ("nascell-search", "nascell-train", "nascell-export")

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


def search() -> Any:
    """The ``nascell-search`` console script."""
    return _launch("nascell-search", "nascell.search.bin.search")


def train() -> Any:
    """The ``nascell-train`` console script."""
    return _launch("nascell-train", "nascell.search.bin.train")


def export() -> Any:
    """The ``nascell-export`` console script."""
    return _launch("nascell-export", "nascell.search.handover.exporting")


def _launch(binary: str, module: str) -> Any:
    """`start` the binary, then run its module (``run()``: absl's ``app.run`` of its ``main``),
    imported only now."""
    start(binary)
    return importlib.import_module(module).run()


def start(binary: str) -> None:
    """Decide whether this process, the binary ``binary`` run with ``sys.argv``'s flags, is
    quiet (`wanted`): if it is, import TensorFlow `quietly`, else leave TensorFlow's logging as
    it is. The console scripts call it first thing; a binary run with ``python -m`` calls it
    from its ``__main__`` block, when TensorFlow is already imported."""
    if wanted([binary] + sys.argv[1:]):
        with quietly():
            import keras  # noqa: F401  (imports TensorFlow as its backend)
            import tensorflow  # noqa: F401
    elif os.environ.get(ENV) == "1":  # --verbosity asked for logs: so do its workers
        os.environ[ENV] = "0"


def worker_setup(then: Optional[str] = None) -> None:
    """The first code a worker process runs (a local pool's initializer, a Ray worker's
    ``worker_process_setup_hook``): in a worker of a quiet binary (``NASCELL_QUIET=1``),
    import TensorFlow `quietly` now. Then call ``then`` (``"module:function"``, imported only
    now, so that its ``nascell`` import finds TensorFlow loaded)."""
    if os.environ.get(ENV) == "1":
        with quietly():
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    if then:
        module, name = then.split(":")
        getattr(importlib.import_module(module), name)()


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Make this process quiet, around a body that imports TensorFlow: ``TF_CPP_MIN_LOG_LEVEL``
    set to 3 (unless the user set it), ``NASCELL_QUIET=1`` for the worker processes it starts,
    and the body run with native log lines hidden (`muted_native_logs`; not when TensorFlow is
    already imported: its import lines are out, and later lines follow the level)."""
    os.environ.setdefault(TF_ENV, "3")
    os.environ[ENV] = "1"
    if "tensorflow" in sys.modules:
        yield
        return
    with muted_native_logs():
        yield


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


def wanted(argv: Optional[Sequence[str]] = None,
           environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether a process with this command line (default: ``sys.argv``) and environment
    should be quiet (see the module docstring): a binary's own ``--verbosity`` decides, else
    ``NASCELL_QUIET`` (set by a parent), else a binary is quiet and anything else is not."""
    environ = os.environ if environ is None else environ
    argv = sys.argv if argv is None else argv
    binary = bool(argv) and os.path.basename(argv[0]) in BINARIES
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
    output is forwarded to the driver): the environment for the workers, `worker_setup` as
    their setup hook (TensorFlow imported with its native lines hidden before any task), Ray's
    own logging at warnings. Empty for a process that is not quiet."""
    if os.environ.get(ENV) != "1":
        return {}
    import logging
    env = {ENV: "1", TF_ENV: os.environ.get(TF_ENV, "3")}
    return {"logging_level": logging.WARNING,
            "runtime_env": {"env_vars": env,
                            "worker_process_setup_hook": "_nascell_launch.worker_setup"}}
