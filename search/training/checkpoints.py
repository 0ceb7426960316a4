"""Per-epoch checkpoints that survive ``kill -9``, and the best-validation weights.

A checkpoint folder holds:

* ``epoch-NNNN.weights.h5`` / ``epoch-NNNN.optimizer.npz``: the model's weights and the
  optimizer's variables after epoch ``NNNN`` (1-based), for the last finished epoch;
* ``epoch-NNNN.weights.h5`` of the best epoch so far (by validation), when that is not the last;
* ``progress.json``: which epoch finished last, which was best, the per-epoch history, and a
  ``fingerprint`` of the settings the training ran with.

Every file is written to a temporary name, flushed and renamed, and ``progress.json`` is
written last, naming only files that are complete: a reader (a resumed training) sees the
previous epoch or the new one, never a mix. Files no longer named are removed afterwards.
When training ends, `finish` copies the best weights to ``best.weights.h5`` (the stable place
an exporter reads them from).
"""

from __future__ import annotations

import io
import os
import shutil
from typing import Any, Dict, Optional

import numpy as np
from absl import logging

from nascell import _io

PROGRESS = "progress.json"
BEST_WEIGHTS = "best.weights.h5"


class CheckpointMismatchError(RuntimeError):
    """The checkpoint folder belongs to a training with other settings."""


def _epoch_file(epoch: int, suffix: str) -> str:
    return f"epoch-{epoch:04d}.{suffix}"


def _save_weights_atomic(model, path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = _io.temp_file(directory, suffix=".weights.h5")
    try:
        model.save_weights(tmp, overwrite=True)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _optimizer_bytes(optimizer) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{f"v{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
    return buf.getvalue()


def _load_optimizer(optimizer, path: str) -> None:
    with np.load(path) as f:
        if len(f.files) != len(optimizer.variables):
            raise CheckpointMismatchError(
                f"{path} holds {len(f.files)} optimizer variables, this optimizer has "
                f"{len(optimizer.variables)}: the checkpoint is from another optimizer")
        for i, v in enumerate(optimizer.variables):
            v.assign(f[f"v{i}"])


class EpochCheckpoints:
    """The checkpoint folder of one training (see the module docstring).

    Args:
        directory: the folder (created on the first save).
        fingerprint: JSON-able settings of the training; a folder written with other settings
            is refused (`CheckpointMismatchError`) rather than resumed.
    """

    def __init__(self, directory: str, fingerprint: Optional[Dict[str, Any]] = None):
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.fingerprint = _io_json_roundtrip(fingerprint or {})

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @property
    def best_weights_path(self) -> str:
        """``best.weights.h5``: written by `finish`."""
        return self.path(BEST_WEIGHTS)

    def progress(self) -> Optional[Dict[str, Any]]:
        """The last saved progress, or None (no epoch finished yet); checks the fingerprint."""
        progress = _io.read_json_or_none(self.path(PROGRESS))
        if progress is None:
            return None
        if progress.get("fingerprint") != self.fingerprint:
            raise CheckpointMismatchError(
                f"{self.directory} holds a training with other settings (its progress.json "
                f"fingerprint differs); delete that folder to train afresh, or use another")
        return progress

    def restore(self, model, optimizer) -> Optional[Dict[str, Any]]:
        """Load the last finished epoch into ``model`` and ``optimizer`` (built); returns its
        progress, or None when there is nothing to resume."""
        progress = self.progress()
        if progress is None:
            return None
        model.load_weights(self.path(progress["weights"]))
        _load_optimizer(optimizer, self.path(progress["optimizer"]))
        logging.info("resuming from %s after epoch %d", self.directory, progress["epoch"])
        return progress

    def save(self, epoch: int, model, optimizer, is_best: bool,
             progress: Dict[str, Any]) -> Dict[str, Any]:
        """Record epoch ``epoch`` (1-based): weights, optimizer, then ``progress.json``.

        ``progress`` is the caller's record (history, best epoch, ...); the file names and the
        fingerprint are added. Returns what was written.
        """
        previous = _io.read_json_or_none(self.path(PROGRESS)) or {}
        weights = _epoch_file(epoch, "weights.h5")
        _save_weights_atomic(model, self.path(weights))
        optimizer_file = _epoch_file(epoch, "optimizer.npz")
        _io.atomic_write_bytes(self.path(optimizer_file), _optimizer_bytes(optimizer))
        best_weights = weights if is_best else previous.get("best_weights")
        record = dict(progress, epoch=int(epoch), weights=weights, optimizer=optimizer_file,
                      best_weights=best_weights, fingerprint=self.fingerprint)
        _io.atomic_write_json(self.path(PROGRESS), record)
        _io.fsync_dir(self.directory)
        self._prune(keep={weights, optimizer_file, best_weights, PROGRESS, BEST_WEIGHTS})
        return record

    def load_best(self, model) -> None:
        """Load the best epoch's weights (as recorded in ``progress.json``) into ``model``."""
        progress = self.progress()
        if progress is None or not progress.get("best_weights"):
            raise FileNotFoundError(f"{self.directory} has no finished epoch")
        model.load_weights(self.path(progress["best_weights"]))

    def finish(self) -> str:
        """Copy the best epoch's weights to ``best.weights.h5`` (atomically); returns its path."""
        progress = self.progress()
        if progress is None or not progress.get("best_weights"):
            raise FileNotFoundError(f"{self.directory} has no finished epoch")
        source = self.path(progress["best_weights"])
        tmp = _io.temp_file(self.directory, suffix=".weights.h5")
        try:
            shutil.copyfile(source, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.best_weights_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _io.fsync_dir(self.directory)
        return self.best_weights_path

    def _prune(self, keep) -> None:
        for name in os.listdir(self.directory):
            stale_epoch = name.startswith("epoch-") and name not in keep
            stale_tmp = name.startswith(".tmp-")
            if stale_epoch or stale_tmp:
                try:
                    os.unlink(self.path(name))
                except OSError:
                    pass


def _io_json_roundtrip(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, ...), so fingerprints compare
    equal to what a file holds."""
    import json

    return json.loads(json.dumps(obj, sort_keys=True, default=str))
