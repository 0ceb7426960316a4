"""ENAS (Pham et al., 2018) in the one search engine: weight-sharing supernets, the evaluator
that scores with them, and `run_enas`, the one-call form of an ENAS search.

* `rnn_supernet.RNNSupernet`, `conv_supernet.ConvSupernet`, `macro_supernet.MacroSupernet`:
  the recurrent, micro and macro supernets (shared weights for every choice of their space);
* `tasks`: a supernet with its data, trained and scored; `evaluator.SupernetEvaluator`
  (``--evaluator=supernet``): the reward of an architecture under the shared weights;
* the ``enas`` strategy (`nascell.search.strategies.enas.ENASStrategy`) trains the shared
  weights and the controller in ENAS' alternation, then derives the final architecture;
* `options`: every ENAS setting by one flat name, and which part takes it.

``nascell-search --strategy=enas --space=enas_rnn|enas_conv|enas_macro`` and `run_enas` both
build those three parts and run them with `nascell.search.core.loop.run_search`, in a run directory
like every other search's (docs/search.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional

SPACES = ("enas_rnn", "enas_conv", "enas_macro")


@dataclasses.dataclass
class ENASResult:
    """What `run_enas` returns: the derived architecture and its score, and the run."""

    spec: Any
    decisions: Dict[str, Any]
    metric: float  # validation perplexity (recurrent) or accuracy (image) of the derived spec
    reward: float
    epochs: int
    history: List[Dict[str, float]]
    run_dir: str
    search: Any  # the `nascell.search.core.loop.SearchResult`


def build(space_name: str, seed: int = 0, data: Optional[Dict[str, Any]] = None,
          data_options: Optional[Dict[str, Any]] = None, **options: Any):
    """``(space, strategy, evaluator)`` of an ENAS search: ``options`` are flat ENAS settings
    (`options.OPTIONS`), ``data_options`` the evaluator's data arguments (``dataset``,
    ``data_dir``, ``cifar_npz``, ``download``, ``subset``)."""
    from nascell.search.core.strategy import create_strategy
    from nascell.search.enas.evaluator import SupernetEvaluator
    from nascell.search.enas.options import split_options
    from nascell.search.spaces import create_space
    if space_name not in SPACES:
        raise ValueError(f"Argument `space_name` must be one of {list(SPACES)}. Received: "
                         f"space_name={space_name!r}")
    parts = split_options(options)
    space = create_space(space_name, **parts["space"])
    evaluator = SupernetEvaluator(seed=seed, data=data, **(data_options or {}),
                                  **parts["evaluator"])
    strategy = create_strategy("enas", space, seed=seed, **parts["strategy"])
    return space, strategy, evaluator


def run_enas(space_name: str, run_dir: str, *, data_dir: Optional[str] = None,
             data: Optional[Dict[str, Any]] = None,
             progress: Optional[Callable[[Dict[str, float]], None]] = None, seed: int = 0,
             num_trials: Optional[int] = None, data_options: Optional[Dict[str, Any]] = None,
             **options: Any) -> ENASResult:
    """Run (or resume) an ENAS search of ``space_name`` in ``run_dir``; returns the derived
    architecture.

    Keyword ``options`` are flat ENAS settings (`nascell.search.enas.options.OPTIONS`:
    ``epochs``, ``shared_steps``, ``controller_steps``, ``controller_batch``, ``units``, ...).
    ``data`` replaces the data set (see `SupernetEvaluator`), ``data_dir`` says where it is.
    ``progress`` is called with each finished epoch's statistics. The search runs through
    `nascell.search.core.loop.run_search` (``num_trials`` defaults to one ENAS run,
    ``strategy.planned_trials()``); restarting with the same arguments resumes it, and a
    finished run returns its stored result.
    """
    from nascell.search.core.loop import run_search
    data_options = dict(data_options or {})
    if data_dir is not None:
        data_options["data_dir"] = data_dir
    space, strategy, evaluator = build(space_name, seed=seed, data=data,
                                       data_options=data_options, **options)
    strategy.on_epoch = progress
    result = run_search(space, strategy, evaluator, run_dir,
                        num_trials=num_trials or strategy.planned_trials(), m=strategy.m,
                        progress=False, checkpoint_every=strategy.checkpoint_every)
    best = result.best
    metrics = dict(best.metrics or {}) if best is not None else {}
    name = "valid_ppl" if space_name == "enas_rnn" else "valid_acc"
    return ENASResult(spec=None if best is None else best.spec,
                      decisions={} if best is None else dict(best.decisions),
                      metric=float(metrics.get(name, float("nan"))),
                      reward=float("nan") if best is None else float(best.reward),
                      epochs=len(strategy.history), history=list(strategy.history),
                      run_dir=result.run_dir, search=result)


__all__ = ["ENASResult", "SPACES", "build", "run_enas"]
