"""`model.fit` with per-epoch checkpoints, resume, and the best-validation weights.

For trainers that use Keras' own loop (the conv children): a callback saves every finished
epoch through `EpochCheckpoints`; a second call in the same folder restores the last finished
epoch (weights and optimizer) and continues with ``initial_epoch``; at the end the best epoch's
weights (by ``monitor``) are loaded and copied to ``best.weights.h5``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from nascell.search.training.checkpoints import EpochCheckpoints


def _checkpoint_callback(checkpoints: EpochCheckpoints, optimizer, monitor: str, mode: str,
                         history: List[Dict[str, Any]], best: Dict[str, Any]):
    import keras

    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            value = logs.get(monitor)
            if value is None or not math.isfinite(value):
                return  # a diverged epoch is not saved; the loop's finiteness checks report it
            history.append(dict(logs, epoch=epoch + 1))
            is_best = best["epoch"] == 0 or better(value, best["value"])
            if is_best:
                best.update(epoch=epoch + 1, value=value)
            checkpoints.save(epoch + 1, self.model, optimizer, is_best,
                             {"history": history, "best_epoch": best["epoch"],
                              "best_value": best["value"], "monitor": monitor})

    return EpochCheckpoint()


def fit_with_checkpoints(model, checkpoint_dir: str, fingerprint: Dict[str, Any],
                         monitor: str, mode: str, epochs: int, **fit_kwargs: Any
                         ) -> Tuple[List[Dict[str, Any]], int, int, Optional[str]]:
    """``model.fit(epochs=epochs, **fit_kwargs)`` (a compiled model), checkpointed per epoch in
    ``checkpoint_dir`` (`EpochCheckpoints`, guarded by ``fingerprint``).

    Returns ``(history, best_epoch, resumed_after_epoch, best_weights_path)``: ``history`` one
    dict of logs per epoch (``epoch`` 1-based), the whole training's, resumed part included.
    ``model`` ends with the best epoch's weights.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"Argument `mode` must be 'max' or 'min'. Received: mode={mode!r}")
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    checkpoints = EpochCheckpoints(checkpoint_dir, fingerprint)
    progress = checkpoints.restore(model, optimizer)
    history: List[Dict[str, Any]] = list(progress["history"]) if progress else []
    best = {"epoch": int(progress["best_epoch"]) if progress else 0,
            "value": progress["best_value"] if progress else None}
    done = int(progress["epoch"]) if progress else 0
    callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    callbacks.append(_checkpoint_callback(checkpoints, optimizer, monitor, mode, history, best))
    if done < epochs:
        model.fit(epochs=epochs, initial_epoch=done, callbacks=callbacks, **fit_kwargs)
    if best["epoch"] == 0:
        return history, 0, done, None
    if best["epoch"] != history[-1]["epoch"]:
        checkpoints.load_best(model)
    return history, best["epoch"], done, checkpoints.finish()
