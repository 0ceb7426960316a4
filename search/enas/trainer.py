"""Deprecated (0.1.0's entry point; removed in nascell 0.3.0): ENAS runs through the one search
engine, `nascell.search.enas.run_enas`, or ``create_strategy("enas", ...)`` with the
``supernet`` evaluator and `run_search` (docs/search.md describes the engine).

`run_enas` here forwards to it with a `DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from typing import Any

from nascell.search.enas import ENASResult  # noqa: F401  (the result type, as before)


def run_enas(space_name: str, run_dir: str, **kwargs: Any):
    """Deprecated alias of `nascell.search.enas.run_enas` (removed in nascell 0.3.0)."""
    warnings.warn("nascell.search.enas.trainer.run_enas is deprecated and will be removed in "
                  "nascell 0.3.0; use nascell.search.enas.run_enas", DeprecationWarning,
                  stacklevel=2)
    from nascell.search.enas import run_enas as _run_enas
    return _run_enas(space_name, run_dir, **kwargs)
