"""Registry of evaluators, by the name the `--evaluator` flag uses.

Entries are imported lazily, so asking for the tabular NAS-Bench-201 evaluator does not import
the child trainers (and their data pipelines), and vice versa.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List

from nascell.search.core.evaluator import EvalResult, Evaluator, FunctionEvaluator

# name -> "module:ClassName"
_EVALUATORS: Dict[str, str] = {
    "nasbench201": "nascell.search.evaluators.nasbench201:NASBench201Evaluator",
    "synthetic_pairwise":
        "nascell.search.evaluators.synthetic_pairwise:SyntheticPairwiseEvaluator",
    "rnn_lm": "nascell.search.evaluators.rnn_lm:RNNLanguageModelEvaluator",
    "conv_classifier": "nascell.search.evaluators.conv_classifier:ConvClassifierEvaluator",
    # ENAS: scores with the shared weights the enas strategy trains (nascell.search.enas).
    "supernet": "nascell.search.enas.evaluator:SupernetEvaluator",
}


def register_evaluator(name: str, target: str) -> None:
    """Register `target` ("package.module:Class") under `name`."""
    _EVALUATORS[name] = target


def available_evaluators() -> List[str]:
    return sorted(_EVALUATORS)


def evaluator_class(name: str):
    if name not in _EVALUATORS:
        raise ValueError(f"Argument `name` must be a registered evaluator, one of "
                         f"{sorted(_EVALUATORS)}. Received: name={name!r}")
    module, cls = _EVALUATORS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create_evaluator(name: str, **options: Any) -> Evaluator:
    """Create a registered evaluator by name with its keyword options."""
    return evaluator_class(name)(**options)


__all__ = ["EvalResult", "Evaluator", "FunctionEvaluator", "available_evaluators",
           "create_evaluator", "evaluator_class", "register_evaluator"]
