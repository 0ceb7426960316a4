"""A run's trained weights: their files, where the run directory keeps them, and pruning.

    <run_dir>/weights/trial_<id>/model.json, model.weights.h5      a kept trial (`trial_folder`)
    <run_dir>/strategy/gen-N/supernet.npz                          ENAS' shared weights

This module alone reads, writes and prunes a run's trained weights; `WEIGHTS_DIR` and the
``trial_<id>`` name are defined here and nowhere else.

**The files of a trained model.** A child trainer that may run on any node of a cluster
cannot write into the search's run directory (a worker node does not share the driver's file
system), so it returns its trained weights *with its result*: `pack` turns the model into two
small files, as bytes (``EvalResult.weights``), and the search loop on the driver writes the
ones worth keeping (`WeightsKeeper`). The final stage (``nascell-train``) describes its model
with the same files, so an export reads both alike:

* ``model.json`` (`MODEL_FILE`): ``format``, ``evaluator`` (the trainer: ``rnn_lm`` or
  ``conv_classifier``), ``model_args`` (how to build the model again:
  `nascell.search.training.final_model.rebuild_model`; a conv child's ``input_shape`` and
  ``num_classes`` are among them), ``score`` (what these weights scored on the validation
  data: ``valid_ppl`` or ``valid_acc``, and the ``epoch``), ``preprocessing`` (image
  children: the per-channel whitening of the pixels) and ``weights``.
* ``model.weights.h5`` (`WEIGHTS_FILE`): every weight of the whole model, as Keras'
  ``model.save_weights`` writes them (``model.load_weights`` reads them back).

The weights are those of the epoch that earned the reward (the best validation epoch), so the
model rebuilt from these files scores the trial's recorded validation metric.

**Keeping the best.** The search loop hands each result to `WeightsKeeper.offer` as it
arrives, which decides at once whether the trial enters the ``keep`` best (by reward; with a
strategy's ``result_phase``, that phase's trials first, as ``best/best.json`` ranks them),
writes its folder if so, and drops the bytes either way, so at most one trial's weights are in
memory. Once the trial is committed to the store, `WeightsKeeper.prune` deletes the folders
that fell out of the best ``keep``. ``keep=0`` keeps nothing new (and leaves weights an earlier
run kept alone).

Crash safety, as for everything in the run directory: a folder is written under a hidden
temporary name (``.trial_<id>.tmp-*``), its files and the folder fsynced, then renamed to
``trial_<id>``, so a ``trial_<id>`` folder is always whole and a crash mid-write leaves only a
hidden leftover. The weights are written *before* the store commits the trial;
`WeightsKeeper.reconcile`, when a run starts or resumes, removes the leftovers, the folders of
trials the store does not hold as done (a crash between the two: the trial is evaluated
again), and any beyond ``keep``.

**Supernet checkpoints.** Both ENAS supernets save their shared weights, in order, as one
in-memory ``.npz`` (`weights_to_bytes`, `load_weights_bytes`), which the strategy checkpoint
writes into ``strategy/gen-N/supernet.npz``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from nascell import _io
from nascell.search.core.evaluator import EvalResult
from nascell.search.core.trial import Trial, TrialStatus

WEIGHTS_DIR = "weights"
DEFAULT_KEEP = 3
MODEL_FILE = "model.json"
WEIGHTS_FILE = "model.weights.h5"
FORMAT = "nascell-trained-model"
FORMAT_VERSION = 1
_PREFIX = "trial_"

Key = Tuple[int, float, int]


def trial_folder(run_dir: str, trial_id: int) -> str:
    """Where trial ``trial_id``'s kept weights are (whether or not they exist)."""
    return os.path.join(run_dir, WEIGHTS_DIR, f"{_PREFIX}{int(trial_id)}")


def find_trial_weights(run_dir: str, trial_id: int,
                       metrics: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """The trained weights a run holds for a trial, or None: a path its evaluator recorded in
    the trial's metrics (``weights`` or ``weights_path``, absolute or relative to the run
    directory), else `trial_folder` (the model the search kept), else a file an evaluator kept
    under the same name (``trial_<id>.keras`` or ``trial_<id>.npz``, what `nascell.export`'s
    ``weights_from`` reads)."""
    for key in ("weights", "weights_path"):
        path = (metrics or {}).get(key)
        if isinstance(path, str):
            path = path if os.path.isabs(path) else os.path.join(run_dir, path)
            if os.path.exists(path):
                return path
    folder = trial_folder(run_dir, trial_id)
    for path in (folder, folder + ".keras", folder + ".npz"):
        if os.path.exists(path):
            return path
    return None


# -- the files of a trained model --------------------------------------------------------------

def describe(evaluator: str, model_args: Dict[str, Any], score: Dict[str, Any],
             preprocessing: Optional[Dict[str, Any]] = None,
             **extra: Any) -> Dict[str, Any]:
    """The ``model.json`` object of a trained model (JSON-able)."""
    out = {"format": FORMAT, "format_version": FORMAT_VERSION, "evaluator": evaluator,
           "model_args": model_args, "score": score, "weights": WEIGHTS_FILE}
    if preprocessing:
        out["preprocessing"] = preprocessing
    out.update(extra)
    return json.loads(json.dumps(out, default=_io.json_default))


def pack(model, description: Dict[str, Any]) -> Dict[str, bytes]:
    """``{file name: bytes}`` of ``model`` (its weights as they are now) and ``description``
    (from `describe`): what `EvalResult.weights` carries."""
    with tempfile.TemporaryDirectory(prefix="nascell-weights-") as tmp:
        path = os.path.join(tmp, WEIGHTS_FILE)
        model.save_weights(path)
        with open(path, "rb") as f:
            weights = f.read()
    text = json.dumps(description, indent=2, sort_keys=True, default=_io.json_default) + "\n"
    return {MODEL_FILE: text.encode("utf-8"), WEIGHTS_FILE: weights}


def is_model_folder(path: Optional[str]) -> bool:
    """Whether ``path`` is a folder holding a trained model's files (`MODEL_FILE`)."""
    return bool(path) and os.path.isfile(os.path.join(path, MODEL_FILE))


def read_description(folder: str) -> Dict[str, Any]:
    """The ``model.json`` of a folder of a trained model; ValueError naming the file if it is
    missing, corrupt or of another format."""
    path = os.path.join(folder, MODEL_FILE)
    try:
        data = _io.read_json_or_none(path)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path} is unreadable ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} does not describe a trained nascell model (format "
                         f"{None if not isinstance(data, dict) else data.get('format')!r})")
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path} has format version {data.get('format_version')}; this "
                         f"nascell reads versions up to {FORMAT_VERSION}. Upgrade nascell.")
    weights = os.path.join(folder, data.get("weights") or WEIGHTS_FILE)
    if not os.path.isfile(weights):
        raise ValueError(f"{folder} has {MODEL_FILE} but not its weights {weights}")
    return data


def rebuild(folder: str, return_state: bool = False):
    """The Keras model of a folder of a trained model, with its weights loaded.

    Language models come back as ``ids -> logits`` (or, with ``return_state``, in the
    stateful form ``[ids, *states] -> [logits, *states]``; the same weights)."""
    from nascell.search.training.final_model import rebuild_model

    description = read_description(folder)
    weights = os.path.join(folder, description.get("weights") or WEIGHTS_FILE)
    return rebuild_model(description["evaluator"], description["model_args"], weights,
                         return_state=return_state)


# -- keeping the best trials' weights ----------------------------------------------------------

class WeightsKeeper:
    """Keeps the trained weights of the ``keep`` best trials under ``<run_dir>/weights``.

    Args:
      run_dir: the run directory.
      keep: how many trials' weights to keep (0: none; the best trial is always among them).
      phase: rank the trials of this phase (``trial.meta["phase"]``) first, as the loop's
        ``result_phase``.
    """

    def __init__(self, run_dir: str, keep: int = DEFAULT_KEEP, phase: Optional[str] = None):
        if keep is None or int(keep) < 0:
            raise ValueError(f"Argument `keep_weights` must be a non-negative integer. "
                             f"Received: keep_weights={keep!r}")
        self.root = os.path.join(run_dir, WEIGHTS_DIR)
        self.keep = int(keep)
        self.phase = phase
        self.kept: Dict[int, Key] = {}

    def _key(self, trial: Trial) -> Key:
        in_phase = int(self.phase is not None and (trial.meta or {}).get("phase") == self.phase)
        return (in_phase, float(trial.reward or 0.0), -int(trial.trial_id))

    # -- start / resume ------------------------------------------------------------------------

    def reconcile(self, store: Any) -> None:
        """Bring the folder in line with ``store``: remove half-written leftovers, folders of
        trials not done there, and any beyond the best ``keep``."""
        self.kept = {}
        for name in self._entries():
            path = os.path.join(self.root, name)
            if name.startswith("."):  # a write or a removal a crash interrupted
                _remove(path)
                continue
            trial_id = _trial_id(name)
            if trial_id is None:
                continue  # not ours (a user's file): left alone
            trial = store.get(trial_id)
            if trial is None or trial.status != TrialStatus.DONE:
                logging.info("removing the weights of trial %d, which the store does not hold "
                             "as done (it is evaluated again)", trial_id)
                _remove(path)
                continue
            self.kept[trial_id] = self._key(trial)
        self.prune()

    def _entries(self) -> List[str]:
        return sorted(os.listdir(self.root)) if os.path.isdir(self.root) else []

    # -- each result ---------------------------------------------------------------------------

    def offer(self, trial: Trial, result: EvalResult) -> bool:
        """Keep ``result.weights`` if ``trial`` (status and reward set, not yet committed)
        enters the best ``keep``; the bytes are dropped from ``result`` either way. Returns
        whether they were written."""
        weights = result.weights
        if weights is not None:
            result.weights = None  # never hold more than this one trial's weights
        if not weights or self.keep == 0 or trial.status != TrialStatus.DONE:
            return False
        key = self._key(trial)
        if len(self.kept) >= self.keep and key <= min(self.kept.values()):
            return False
        try:
            self._write(trial.trial_id, weights)
        except (OSError, ValueError) as e:  # the trial keeps its reward without weights
            logging.warning("could not keep the weights of trial %d: %s", trial.trial_id, e)
            return False
        self.kept[trial.trial_id] = key
        return True

    def prune(self) -> List[int]:
        """Delete the kept weights beyond the best ``keep``; returns the trial ids removed.
        With ``keep=0`` keeping is off: nothing is deleted (an earlier run's weights stay)."""
        if not self.keep:
            return []
        ranked = sorted(self.kept, key=self.kept.__getitem__, reverse=True)
        removed = ranked[self.keep:]
        for trial_id in removed:
            self._delete(trial_id)
            del self.kept[trial_id]
        return removed

    # -- files ---------------------------------------------------------------------------------

    def _write(self, trial_id: int, files: Dict[str, bytes]) -> None:
        for name in files:
            if (not isinstance(name, str) or not name or os.path.basename(name) != name
                    or name.startswith(".")):
                raise ValueError(f"the evaluator returned a weights file named {name!r}; "
                                 "expected plain file names")
        os.makedirs(self.root, exist_ok=True)
        target = trial_folder(os.path.dirname(self.root), trial_id)
        tmp = _io.temp_folder(self.root, prefix=f".{_PREFIX}{trial_id}.tmp-")
        try:
            for name, data in files.items():
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            _io.fsync_dir(tmp)
            if os.path.exists(target):  # the same trial evaluated again after a crash
                self._delete(trial_id)
            os.rename(tmp, target)
        except BaseException:
            _remove(tmp)
            raise
        _io.fsync_dir(self.root)
        logging.info("kept the trained weights of trial %d in %s", trial_id, target)

    def _delete(self, trial_id: int) -> None:
        """Remove a trial's folder: renamed to a hidden name first, so an interrupted removal
        never leaves a partial ``trial_<id>`` folder."""
        path = trial_folder(os.path.dirname(self.root), trial_id)
        if not os.path.exists(path):
            return
        doomed = tempfile.mkdtemp(dir=self.root, prefix=f".{_PREFIX}{trial_id}.old-")
        os.rmdir(doomed)
        os.rename(path, doomed)
        _io.fsync_dir(self.root)
        _remove(doomed)


def _trial_id(name: str) -> Optional[int]:
    rest = name[len(_PREFIX):] if name.startswith(_PREFIX) else ""
    return int(rest) if rest.isdigit() else None


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except OSError:
            pass


# -- supernet checkpoints ----------------------------------------------------------------------


def weights_to_bytes(weights: Sequence) -> bytes:
    """The values of ``weights`` (variables), in order, as ``.npz`` bytes: a supernet's
    checkpoint."""
    buf = io.BytesIO()
    np.savez(buf, **{f"w{i}": np.asarray(v) for i, v in enumerate(weights)})
    return buf.getvalue()


def load_weights_bytes(weights: Sequence, data: bytes) -> None:
    """Assign what `weights_to_bytes` wrote back to ``weights``; a count mismatch is an
    error."""
    with np.load(io.BytesIO(data)) as f:
        if len(f.files) != len(weights):
            raise ValueError(f"supernet checkpoint holds {len(f.files)} arrays, this "
                             f"supernet has {len(weights)}: its options differ")
        for i, v in enumerate(weights):
            v.assign(f[f"w{i}"])
