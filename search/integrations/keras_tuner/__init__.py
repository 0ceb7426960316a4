"""nascell's search strategies inside KerasTuner: keep your ``build_model(hp)``.

    import keras_tuner as kt
    import nascell.search.keras_tuner as nkt

    tuner = kt.Tuner(
        oracle=nkt.Oracle("reinforce", objective="val_accuracy", max_trials=50),
        hypermodel=build_model, directory="tuning", project_name="run1")
    tuner.search(x, y, epochs=5, validation_split=0.2)

    # or, shaped like kt.RandomSearch:
    tuner = nkt.StrategySearch(build_model, strategy="evolution", objective="val_accuracy",
                               max_trials=50, directory="tuning", project_name="run2")

Any strategy of `nascell.search.available_strategies()` works (``reinforce``: the paper's
controller; ``evolution``: regularized evolution; ``random``; ``enas``'s controller; ...).
How hyperparameters become nascell decisions (Floats included) is in
`nascell.search.integrations.keras_tuner.hp_space`; rewards, failures, repeats and saving in
`nascell.search.integrations.keras_tuner.oracle`. Needs the ``tuner`` extra:
``pip install "nascell[tuner]"``.
"""

from __future__ import annotations

try:
    import keras_tuner as kt
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError("nascell.search.keras_tuner needs KerasTuner: pip install "
                      "\"nascell[tuner]\" (or pip install keras-tuner)") from e

from typing import Any, Dict, Optional

from nascell.search.integrations.keras_tuner.hp_space import FLOAT_POINTS, MAX_CHOICES, HPSpace
from nascell.search.integrations.keras_tuner.oracle import DEFAULT_STRATEGY_OPTIONS, Oracle


class StrategySearch(kt.Tuner):
    """A Keras tuner driven by a nascell strategy, used like `kt.RandomSearch`.

    Args:
      hypermodel: ``build_model(hp)`` or a `kt.HyperModel`.
      strategy: a nascell strategy name (default ``"reinforce"``).
      objective, max_trials, seed, hyperparameters, tune_new_entries, allow_new_entries,
        max_retries_per_trial, max_consecutive_failed_trials: as `kt.RandomSearch`.
      strategy_options, float_points, max_choices, max_repeats: as `Oracle`.
      **kwargs: `kt.Tuner`'s (``directory``, ``project_name``, ``overwrite``, ...).
    """

    def __init__(self, hypermodel: Any = None, strategy: str = "reinforce",
                 objective: Any = None, max_trials: Optional[int] = 10,
                 seed: Optional[int] = None,
                 strategy_options: Optional[Dict[str, Any]] = None,
                 hyperparameters: Any = None, tune_new_entries: bool = True,
                 allow_new_entries: bool = True, max_retries_per_trial: int = 0,
                 max_consecutive_failed_trials: int = 3, float_points: int = FLOAT_POINTS,
                 max_choices: int = MAX_CHOICES, max_repeats: int = 5, **kwargs: Any):
        oracle = Oracle(strategy, objective=objective, max_trials=max_trials, seed=seed,
                        strategy_options=strategy_options, hyperparameters=hyperparameters,
                        tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
                        max_retries_per_trial=max_retries_per_trial,
                        max_consecutive_failed_trials=max_consecutive_failed_trials,
                        float_points=float_points, max_choices=max_choices,
                        max_repeats=max_repeats)
        super().__init__(oracle, hypermodel, **kwargs)


__all__ = ["DEFAULT_STRATEGY_OPTIONS", "FLOAT_POINTS", "HPSpace", "MAX_CHOICES", "Oracle",
           "StrategySearch"]
