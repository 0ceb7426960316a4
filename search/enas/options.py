"""Every setting of an ENAS search, and which part of the one engine takes it.

An ENAS search is a space (``enas_rnn``, ``enas_conv``, ``enas_macro``), the ``enas`` strategy
(controller and schedule) and the ``supernet`` evaluator (shared weights and data), run by
`nascell.search.core.loop.run_search`. `run_enas` and ``nascell-search --enas_option=KEY=VALUE``
accept the settings by one flat name each; `split_options` sends each where it belongs. The
defaults live with the parts (`ENAS_CONTROLLER_DEFAULTS` and `ENAS_SCHEDULE_DEFAULTS` in
`nascell.search.strategies.enas`, the evaluator's arguments in
`nascell.search.enas.evaluator.SupernetEvaluator`), not here.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

SPACE, STRATEGY, EVALUATOR = "space", "strategy", "evaluator"


def _int(text: str) -> int:
    return int(text)


def _float(text: str) -> float:
    return float(text)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ValueError(text)


# flat name -> (part, that part's argument name, parser of a flag's text)
OPTIONS: Dict[str, Tuple[str, str, Callable[[str], Any]]] = {
    # the space
    "num_nodes": (SPACE, "num_nodes", _int),  # enas_rnn, enas_conv
    "num_layers": (SPACE, "num_layers", _int),  # enas_macro
    # the strategy: the schedule
    "epochs": (STRATEGY, "epochs", _int),
    "shared_steps": (STRATEGY, "shared_steps", _int),
    "controller_steps": (STRATEGY, "controller_steps", _int),
    "controller_batch": (STRATEGY, "m", _int),
    "derive_samples": (STRATEGY, "derive_samples", _int),
    # the strategy: the controller
    "controller_units": (STRATEGY, "units", _int),
    "controller_layers": (STRATEGY, "num_layers", _int),
    "controller_lr": (STRATEGY, "learning_rate", _float),
    "controller_init_range": (STRATEGY, "init_range", _float),
    "temperature": (STRATEGY, "temperature", _float),
    "tanh_constant": (STRATEGY, "tanh_constant", _float),
    "entropy_weight": (STRATEGY, "entropy_weight", _float),
    "baseline_decay": (STRATEGY, "baseline_decay", _float),
    "controller_jit_compile": (STRATEGY, "jit_compile", _bool),
    # the evaluator: the supernet and its data
    "units": (EVALUATOR, "units", _int),
    "filters": (EVALUATOR, "filters", _int),
    "num_cells": (EVALUATOR, "num_cells", _int),
    "batch_size": (EVALUATOR, "batch_size", _int),
    "seq_len": (EVALUATOR, "seq_len", _int),
    "max_train_tokens": (EVALUATOR, "max_train_tokens", _int),
    "max_valid_tokens": (EVALUATOR, "max_valid_tokens", _int),
    "shared_lr": (EVALUATOR, "shared_lr", _float),
    "shared_clipnorm": (EVALUATOR, "shared_clipnorm", _float),
    "derive_batches": (EVALUATOR, "derive_batches", _int),
    "per_activation": (EVALUATOR, "per_activation", _bool),
}


def split_options(options: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """``{"space": {...}, "strategy": {...}, "evaluator": {...}}`` from flat ENAS settings;
    ValueError (Keras style) for an unknown name."""
    out: Dict[str, Dict[str, Any]] = {SPACE: {}, STRATEGY: {}, EVALUATOR: {}}
    for key, value in options.items():
        if key not in OPTIONS:
            raise ValueError(f"Argument `{key}` must be one of the ENAS settings "
                             f"{sorted(OPTIONS)}. Received: {key}={value!r}")
        part, name, _ = OPTIONS[key]
        out[part][name] = value
    return out


def parse_option(item: str) -> Tuple[str, Any]:
    """``"KEY=VALUE"`` (a flag's text) -> ``(key, typed value)``; "none" is None."""
    key, sep, text = item.partition("=")
    if not sep or key not in OPTIONS:
        raise ValueError(f"Argument `enas_option` must be KEY=VALUE with KEY one of "
                         f"{sorted(OPTIONS)}. Received: enas_option={item!r}")
    if text.lower() == "none":
        return key, None
    try:
        return key, OPTIONS[key][2](text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid {key}") from None
