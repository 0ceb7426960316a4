"""What every real child trainer shares: the device strategy, failure isolation, cleanup.

A child that fails must not stop the search (docs/search.md, "Rewards"): a NaN or infinite
loss, a spec that cannot be built, or running out of memory becomes ``EvalResult.failure`` with a
reward of 0 and the reason. Data that cannot be found, or that no architecture could train on,
is not the child's fault and raises: `Evaluator.check_data` finds it before the first trial,
so a misconfigured search stops with the message naming the flag.

A child returns the weights that earned its reward (`best_epoch_weights` keeps the best
validation epoch's in memory; `pack_weights` turns the model into the files of
`nascell.search.rundir.weights`), so the search can keep the best trials' trained weights
wherever the child ran.
"""

from __future__ import annotations

import gc
import math
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from absl import logging

from nascell.search.core.evaluator import EvalResult


class ChildDiverged(FloatingPointError):
    """Training produced a NaN or infinite loss."""


# Comma-separated logical devices (e.g. "CPU:0,CPU:1") to mirror every child and the final
# stage over instead of the visible GPUs; for checking the multi-device path on a machine
# without them (tests/search/test_replicas.py splits the CPU into two logical devices).
DEVICES_ENV = "NASCELL_DEVICES"
# One mirrored strategy per device set and process: every MirroredStrategy numbers its
# collective all-reduces from the same keys, and TensorFlow's runtime remembers a key's shape,
# so a second strategy's child of another architecture would fail ("Shape mismatch in the
# collective instance"); the same strategy keeps numbering on.
_MIRRORED: Dict[Tuple[str, ...], Any] = {}


def distribution_strategy():
    """`tf.distribute.MirroredStrategy` over the visible GPUs, or the default strategy (one
    device: the CPU) when there are none; with ``$NASCELL_DEVICES`` set (`DEVICES_ENV`), a
    mirrored strategy over exactly the logical devices it names. Batch sizes given to the
    children and to the final stage are global: a mirrored strategy splits each batch across
    its replicas. The strategy is made once per device set in a process, and reused."""
    import os

    import tensorflow as tf

    named = [d.strip() for d in os.environ.get(DEVICES_ENV, "").split(",") if d.strip()]
    if named:
        known = {d.name.split("device:")[-1]: d.name for d in tf.config.list_logical_devices()}
        missing = [d for d in named if d.upper() not in known]
        if missing:
            raise ValueError(f"${DEVICES_ENV} must name logical devices of this process, "
                             f"comma-separated: {sorted(known)}. Received: "
                             f"{DEVICES_ENV}={os.environ[DEVICES_ENV]!r}")
        return _mirrored(tuple(known[d.upper()] for d in named))
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return _mirrored(tuple(g.name for g in gpus))
    return tf.distribute.get_strategy()


def _mirrored(devices: Tuple[str, ...]):
    import tensorflow as tf

    if devices not in _MIRRORED:
        _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _MIRRORED[devices]


def num_replicas(strategy) -> int:
    return int(getattr(strategy, "num_replicas_in_sync", 1))


def seed_everything(seed: Optional[int]) -> None:
    if seed is None:
        return
    import keras

    keras.utils.set_random_seed(int(seed))


def clear_child_memory(registered_before: Optional[Set[str]] = None) -> None:
    """Drop the child's graph and weights so memory does not grow from trial to trial.

    ``registered_before``: the gradient-registry names that existed before the child (from
    `custom_gradient_names`); the ``CustomGradient-*`` entries the child added are removed.
    """
    import keras

    if registered_before is not None:
        drop_custom_gradients(registered_before)
    keras.backend.clear_session(free_memory=True)
    gc.collect()


def _gradient_registry() -> Optional[Dict[str, Any]]:
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry  # pylint: disable=protected-access
    except (ImportError, AttributeError):  # another TensorFlow layout: nothing to drop
        return None
    return registry if isinstance(registry, dict) else None


def custom_gradient_names() -> Set[str]:
    """The ``tf.custom_gradient`` entries now in TensorFlow's global gradient registry."""
    registry = _gradient_registry()
    if registry is None:
        return set()
    return {k for k in list(registry) if str(k).startswith("CustomGradient-")}


def drop_custom_gradients(registered_before: Set[str]) -> int:
    """Remove the ``CustomGradient-*`` gradient functions registered since `registered_before`.

    Why: every trace of a training step under a `tf.distribute` strategy (the default one
    included) all-reduces dense gradients through ``ReplicaContext.all_reduce``, which wraps
    them in ``tf.custom_gradient``; in a graph that registers a gradient function under a new
    unique name in TensorFlow's process-global registry, and that function's closure holds
    the traced step's tensors, hence its whole `FuncGraph` (and the function kept in the eager
    context). Nothing ever unregisters it, so each child leaked its training graph (about
    6 MiB for the small benchmark children) through `keras.backend.clear_session`. Those
    names are unique to graphs that are gone once the child is cleared, so dropping them is
    safe. (A sparse gradient, e.g. an untied embedding's, takes a path without the wrapper,
    which is why untied language models did not leak.) Returns how many were dropped.
    """
    registry = _gradient_registry()
    if registry is None:
        return 0
    new = [k for k in list(registry)
           if str(k).startswith("CustomGradient-") and k not in registered_before]
    for k in new:
        registry.pop(k, None)
    return len(new)


def check_finite(name: str, values: List[float]) -> None:
    bad = [v for v in values if v is None or not math.isfinite(v)]
    if bad:
        raise ChildDiverged(f"{name} is not finite ({bad[0]}): the child diverged; a lower "
                            f"learning rate or gradient clipping (--child_clipnorm) may help")


def history_values(history: Dict[str, List[float]], key: str) -> List[float]:
    return [float(v) for v in history.get(key, [])]


def nan_callbacks():
    """Stop training at the first NaN batch loss (the check after training reports it)."""
    import keras

    return [keras.callbacks.TerminateOnNaN()]


def best_epoch_weights(monitor: str, mode: str = "min", first_epoch: int = 0):
    """A Keras callback that keeps, in memory, the weights of the best epoch by ``monitor``
    (``mode`` "min" or "max"; only epochs from ``first_epoch``, 0-based, count), so the weights
    a child returns are those of the epoch its reward comes from. ``restore()`` puts them back
    into the model (and returns whether there were any); ``epoch`` is the 1-based best epoch.
    """
    import keras
    import numpy as np

    if mode not in ("min", "max"):
        raise ValueError(f"Argument `mode` must be 'min' or 'max'. Received: mode={mode!r}")

    class BestEpochWeights(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best: Optional[float] = None
            self.epoch: Optional[int] = None
            self.weights = None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if epoch < first_epoch or value is None or not math.isfinite(float(value)):
                return
            value = float(value)
            if self.best is None or (value < self.best if mode == "min" else value > self.best):
                self.best, self.epoch = value, epoch + 1
                self.weights = [np.array(w) for w in self.model.get_weights()]

        def restore(self) -> bool:
            if self.weights is None:
                return False
            self.model.set_weights(self.weights)
            return True

    return BestEpochWeights()


def pack_weights(evaluator: Any, model: Any, describe: Callable[[], Dict[str, Any]]
                 ) -> Optional[Dict[str, bytes]]:
    """``EvalResult.weights`` for ``model`` as it is now (`nascell.search.run_weights.pack`,
    ``describe()`` giving its ``model.json``), or None when the evaluator was asked not to
    return weights. Packing is not the child's training: if it fails, the trial keeps its
    reward and returns no weights (a warning says why)."""
    if not evaluator.return_weights:
        return None
    from nascell.search.rundir import weights as run_weights

    try:
        return run_weights.pack(model, describe())
    except Exception as e:  # e.g. no space left in the temporary folder
        logging.warning("could not pack the child's trained weights (%s: %s); the trial keeps "
                        "its reward without them", type(e).__name__, _first_line(e))
        return None


def run_isolated(kind: str, trial_id: int, fn: Callable[[], EvalResult]) -> EvalResult:
    """Run one child's build-and-train ``fn``; its failures become failed results.

    Out of memory, divergence and build/training errors are recorded (reward 0, the error
    text); the Keras session is cleared afterwards whatever happened.
    """
    import tensorflow as tf

    start = time.time()
    registered_before = custom_gradient_names()
    try:
        result = fn()
        result.seconds = result.seconds or time.time() - start
        return result
    except tf.errors.ResourceExhaustedError as e:
        error = f"out of memory: {_first_line(e)}; use a smaller child or batch"
    except ChildDiverged as e:
        error = f"diverged: {e}"
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a spec that does not build or train: a failed child
        error = f"{type(e).__name__}: {_first_line(e)}"
        logging.debug("child %s trial %d failed:\n%s", kind, trial_id, traceback.format_exc())
    finally:
        clear_child_memory(registered_before)
    seconds = time.time() - start
    logging.warning("%s child (trial %d) failed after %.1fs: %s", kind, trial_id, seconds, error)
    return EvalResult.failure(error=error, metrics={"seconds": seconds}, seconds=seconds)


def _first_line(e: Any) -> str:
    text = str(getattr(e, "message", None) or e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line[:500]
