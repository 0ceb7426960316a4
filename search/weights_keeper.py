"""The trained weights of a search's best trials, kept in its run directory.

    <run_dir>/weights/trial_<id>/model.json, model.weights.h5    (`nascell.search.child_weights`)

An evaluator returns a child's trained weights with its result (``EvalResult.weights``, from
whichever node trained it); the search loop hands each result to `WeightsKeeper.offer` as it
arrives, which decides at once whether the trial enters the ``keep`` best (by reward; with a
strategy's ``result_phase``, that phase's trials first, as ``best/best.json`` ranks them),
writes its folder if so, and drops the bytes either way, so at most one trial's weights are in
memory. Once the trial is committed to the store, `prune` deletes the folders that fell out of
the best ``keep``. ``keep=0`` keeps nothing new (and leaves weights an earlier run kept alone).

Crash safety, as for everything in the run directory: a folder is written under a hidden
temporary name (``.trial_<id>.tmp-*``), its files and the folder fsynced, then renamed to
``trial_<id>``, so a ``trial_<id>`` folder is always whole and a crash mid-write leaves only a
hidden leftover. The weights are written *before* the store commits the trial; `reconcile`,
when a run starts or resumes, removes the leftovers, the folders of trials the store does not
hold as done (a crash between the two: the trial is evaluated again), and any beyond ``keep``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from absl import logging

from nascell import _io
from nascell.search.trial import Trial, TrialStatus

WEIGHTS_DIR = "weights"
DEFAULT_KEEP = 3
_PREFIX = "trial_"

Key = Tuple[int, float, int]


def trial_folder(run_dir: str, trial_id: int) -> str:
    """Where trial ``trial_id``'s kept weights are (whether or not they exist)."""
    return os.path.join(run_dir, WEIGHTS_DIR, f"{_PREFIX}{int(trial_id)}")


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

    def offer(self, trial: Trial, result: Any) -> bool:
        """Keep ``result.weights`` if ``trial`` (status and reward set, not yet committed)
        enters the best ``keep``; the bytes are dropped from ``result`` either way. Returns
        whether they were written."""
        weights = getattr(result, "weights", None)
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
