"""Deprecated: ENAS now runs through the one search engine (`nascell.search.enas.run_enas`,
or ``create_strategy("enas", ...)`` with the ``supernet`` evaluator and `run_search`).

`run_enas` here forwards to it with a `DeprecationWarning`; ``ENASTrainer`` and its separate
loop, checkpoints and controller update are gone (docs/search.md describes the engine).
"""

from __future__ import annotations

import warnings
from typing import Any

from nascell.search.enas import ENASResult  # noqa: F401  (the result type, as before)


def run_enas(space_name: str, run_dir: str, **kwargs: Any):
    """Deprecated alias of `nascell.search.enas.run_enas`."""
    warnings.warn("nascell.search.enas.trainer.run_enas is deprecated; use "
                  "nascell.search.enas.run_enas", DeprecationWarning, stacklevel=2)
    from nascell.search.enas import run_enas as _run_enas
    return _run_enas(space_name, run_dir, **kwargs)
