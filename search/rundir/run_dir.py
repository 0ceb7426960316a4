"""The run directory: everything a search needs to resume after a crash.

    <run_dir>/
      config.json        the search's identity (space, strategy, evaluator, m); written once
      trials.sqlite      every trial and every state change (`nascell.search.rundir.store`)
      strategy/gen-N/    the strategy checkpoint (`Strategy.save`), newest two generations
      best/best.json     the best trial so far (spec, decisions, reward, metrics)
      best/top_k.json    the k best trials, best first
      weights/           trained weights of the best trials: trial_<id>/ (model.json,
                         model.weights.h5; `nascell.search.rundir.weights`)
      tensorboard/       scalar summaries: reward, best so far, baseline, entropy, ...;
                         tensorboard/trials/<id>/ one HParams session per finished trial

Opening a directory that already holds a run compares its config with the new one and refuses
a different search, naming the differing keys; it never mixes two searches in one store. A
corrupt file is reported with its path and the fix, and nothing already written is touched.

The strategy checkpoint and the trial store are kept consistent without a shared transaction:
a checkpoint is written to a fresh ``gen-N`` folder first, and only then does one store
transaction mark the trials whose rewards it includes (``told_gen = N``) and make N current.
A crash between the two leaves generation N-1 current and its trials still marked as theirs,
so on resume the trials that N-1 has not seen are re-told from the store, exactly once.
docs/run_dir.md describes the directory for users.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Dict, Iterable, List, Optional, Tuple

from absl import logging

from nascell import _io
from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.rundir import weights
from nascell.search.rundir.store import StoreError, TrialStore, spec_to_json

CONFIG_FILE = "config.json"
STORE_FILE = "trials.sqlite"
STRATEGY_DIR = "strategy"
BEST_DIR = "best"
TENSORBOARD_DIR = "tensorboard"

_KEEP_GENERATIONS = 2


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked; the message names the file and the fix."""


class ConfigMismatchError(RunDirError):
    """The run directory holds a different search."""

    def __init__(self, path: str, differences: List[Tuple[str, Any, Any]]):
        self.differences = differences
        keys = ", ".join(k for k, _, _ in differences)
        detail = "; ".join(f"{k}: stored {_short(a)} vs now {_short(b)}"
                           for k, a, b in differences[:6])
        if len(differences) > 6:
            detail += "; ..."
        super().__init__(
            f"{path} holds a different search (differing keys: {keys}; {detail}). Refusing to "
            "mix two searches in one run directory: pick a new --run_dir, or pass the same "
            "flags as the run that created it to resume it.")


_UNSET = "(unset)"


def _short(value: Any, limit: int = 60) -> str:
    if value is _UNSET:
        return _UNSET
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def normalize_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """The config as JSON would give it back (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(config, sort_keys=True, default=_io.json_default))


def _flatten(obj: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(obj, dict) and obj:
        out: Dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def config_differences(stored: Dict[str, Any], new: Dict[str, Any]) -> List[Tuple[str, Any, Any]]:
    """(dotted key, stored value, new value) for every key whose value differs. Where a data
    set lives (``...data.path``, `nascell.search.data.provenance.is_location`) is not compared:
    the same data moved elsewhere resumes; its content is compared through its fingerprint."""
    from nascell.search.data.provenance import is_location

    a, b = _flatten(normalize_config(stored)), _flatten(normalize_config(new))
    missing = object()
    diffs = []
    for key in sorted(set(a) | set(b)):
        if is_location(key):
            continue
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            diffs.append((key, _UNSET if va is missing else va, _UNSET if vb is missing else vb))
    return diffs


class RunDir:
    """A run directory, created or opened (and checked) by `RunDir.open_or_create`."""

    def __init__(self, path: str, config: Dict[str, Any], store: TrialStore,
                 resumed: bool):
        self.path = path
        self.config = config
        self.store = store
        self.resumed = resumed
        self._writer = None
        self._hparams_config_written = False
        self._last_top: Optional[List[Dict[str, Any]]] = None

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open_or_create(cls, path: str, config: Dict[str, Any]) -> "RunDir":
        """Create a run directory for `config`, or open the one there if it is the same search.

        Raises:
          ConfigMismatchError: the directory holds a search with another config.
          RunDirError: the directory is not a run directory, or one of its files is corrupt.
        """
        path = os.path.abspath(path)
        config = normalize_config(config)
        config_path = os.path.join(path, CONFIG_FILE)
        store_path = os.path.join(path, STORE_FILE)
        if os.path.exists(path) and not os.path.isdir(path):
            raise RunDirError(f"--run_dir {path} is a file, not a directory; pick another path")
        stored = _read_config(config_path)
        if stored is None:
            if os.path.exists(store_path):
                raise RunDirError(
                    f"{path} has {STORE_FILE} but no {CONFIG_FILE}, so it cannot be checked "
                    f"against this search. Restore {config_path} from a backup, or pick a new "
                    "--run_dir. Nothing was changed.")
            leftovers = [n for n in os.listdir(path)] if os.path.isdir(path) else []
            if leftovers:
                raise RunDirError(
                    f"{path} is not empty ({', '.join(sorted(leftovers)[:5])}) and is not a "
                    "nascell run directory (no config.json); pick a new or empty --run_dir.")
            os.makedirs(path, exist_ok=True)
            _io.atomic_write_json(config_path, config)
            resumed = False
        else:
            diffs = config_differences(stored, config)
            if diffs:
                raise ConfigMismatchError(path, diffs)
            resumed = True
        try:
            store = TrialStore(store_path)
        except StoreError as e:
            raise RunDirError(str(e)) from None
        return cls(path, config, store, resumed)

    @staticmethod
    def check_readable(path: str) -> None:
        """Raise `RunDirError` if `path` holds a run directory with a corrupt file (without
        changing anything), so a binary can refuse it before doing any work."""
        path = os.path.abspath(path)
        if not os.path.isdir(path):
            return
        _read_config(os.path.join(path, CONFIG_FILE))
        store_path = os.path.join(path, STORE_FILE)
        if os.path.exists(store_path):
            try:
                TrialStore(store_path, readonly=True).close()
            except StoreError as e:
                raise RunDirError(str(e)) from None

    @classmethod
    def open_existing(cls, path: str, readonly: bool = True) -> "RunDir":
        """Open a finished or running search for reading (export, inspection)."""
        path = os.path.abspath(path)
        config = _read_config(os.path.join(path, CONFIG_FILE))
        if config is None:
            raise RunDirError(f"{path} is not a nascell run directory (no {CONFIG_FILE})")
        try:
            store = TrialStore(os.path.join(path, STORE_FILE), readonly=readonly)
        except StoreError as e:
            raise RunDirError(str(e)) from None
        return cls(path, config, store, resumed=True)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._hparams_config_written = False
        self.store.close()

    # -- strategy checkpoints --------------------------------------------------------------

    def _gen_dir(self, generation: int) -> str:
        return os.path.join(self.path, STRATEGY_DIR, f"gen-{generation:08d}")

    def _generations(self) -> List[int]:
        root = os.path.join(self.path, STRATEGY_DIR)
        if not os.path.isdir(root):
            return []
        gens = []
        for name in os.listdir(root):
            if name.startswith("gen-") and name[4:].isdigit():
                gens.append(int(name[4:]))
        return sorted(gens)

    @property
    def strategy_generation(self) -> int:
        """The current strategy checkpoint generation (0: none yet)."""
        value = self.store.info("strategy_generation")
        return 0 if value is None else int(value)

    def save_strategy(self, strategy: Any, told_ids: Iterable[int]) -> int:
        """Checkpoint `strategy`, which has now been told `told_ids` since the last checkpoint."""
        generation = max([self.strategy_generation] + self._generations()) + 1
        final = self._gen_dir(generation)
        tmp = final + ".tmp"
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        strategy.save(tmp)
        _io.fsync_dir(tmp)
        os.replace(tmp, final)
        _io.fsync_dir(os.path.dirname(final))
        self.store.mark_told(told_ids, generation)
        for old in self._generations():
            if old < generation - (_KEEP_GENERATIONS - 1):
                shutil.rmtree(self._gen_dir(old), ignore_errors=True)
        root = os.path.join(self.path, STRATEGY_DIR)
        for name in os.listdir(root):  # half-written checkpoints of a crashed run
            if name.endswith(".tmp"):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        return generation

    def restore_strategy(self, strategy: Any) -> int:
        """Restore the newest readable checkpoint; returns its generation (0: none)."""
        current = self.strategy_generation
        if current == 0:
            return 0
        errors = []
        for generation in sorted((g for g in self._generations() if g <= current), reverse=True):
            directory = self._gen_dir(generation)
            try:
                if strategy.restore(directory):
                    if generation != current:
                        logging.warning("strategy checkpoint %d is unreadable (%s); resumed "
                                        "from %d and re-telling the trials it has not seen",
                                        current, "; ".join(errors), generation)
                    return generation
                errors.append(f"{directory} holds no strategy state")
            except Exception as e:  # a corrupt checkpoint: try the one before it
                errors.append(f"{directory}: {e}")
        raise RunDirError(
            f"no readable strategy checkpoint in {os.path.join(self.path, STRATEGY_DIR)} "
            f"({'; '.join(errors) or 'generation %d is missing' % current}). The trials are "
            f"safe in {os.path.join(self.path, STORE_FILE)}; restore the strategy folder from a "
            "backup, or start a new search with another --run_dir.")

    def strategy_dir(self, generation: Optional[int] = None) -> Optional[str]:
        """The folder of strategy checkpoint ``generation`` (default: the current one), or
        None when there is none (a strategy may keep its own files there, e.g. ENAS' shared
        weights)."""
        generation = self.strategy_generation if generation is None else int(generation)
        path = self._gen_dir(generation)
        return path if generation > 0 and os.path.isdir(path) else None

    def untold_trials(self, generation: int) -> List[Trial]:
        """Finished trials that checkpoint `generation` has not seen, in finish order."""
        return self.store.untold(after_generation=generation)

    # -- best specs ------------------------------------------------------------------------

    def update_best(self, k: int = 5, phase: Optional[str] = None) -> Optional[Trial]:
        """Rewrite best/best.json and best/top_k.json from the store; returns the best trial.

        ``phase``: rank only the trials whose ``meta["phase"]`` is ``phase`` once there are any
        (a strategy's result phase, `Strategy.result_phase`: ENAS' derived candidates).
        """
        top = self.store.best(k, phase=phase) if phase is not None else []
        top = top or self.store.best(k)
        if not top:
            return None
        entries = [_best_entry(t) for t in top]
        best_dir = os.path.join(self.path, BEST_DIR)
        if entries != self._last_top:
            self._last_top = entries
            _io.atomic_write_json(os.path.join(best_dir, "best.json"), entries[0])
            _io.atomic_write_json(os.path.join(best_dir, "top_k.json"), entries)
        return top[0]

    def trial_weights(self, trial_id: int, metrics: Optional[Dict[str, Any]] = None
                      ) -> Optional[str]:
        """The trained weights the run holds for a trial, or None
        (`nascell.search.rundir.weights.find_trial_weights`)."""
        return weights.find_trial_weights(self.path, trial_id, metrics)

    # -- summaries -------------------------------------------------------------------------

    def write_scalars(self, step: int, scalars: Dict[str, float]) -> None:
        """Append scalar summaries at `step` to tensorboard/."""
        self._summary_writer().write(step, scalars)

    def write_trial_summary(self, trial: Trial, space: Any = None) -> None:
        """Write `trial`'s TensorBoard HParams session (tensorboard/trials/<id>/): its
        decisions as hparams; reward, failed (0/1) and numeric metrics at step 0. The first
        call also declares the HParams experiment from `space.decisions` (default: the
        trial's decision names)."""
        from nascell.search.rundir.summaries import numeric_metrics
        writer = self._summary_writer()
        metrics = {"failed": float(trial.status == TrialStatus.FAILED),
                   **numeric_metrics(trial.metrics)}
        decisions = dict(trial.decisions or {})
        if not self._hparams_config_written:
            writer.write_hparams_config(getattr(space, "decisions", None) or sorted(decisions),
                                        metrics)
            self._hparams_config_written = True
        writer.write_trial(trial.trial_id, decisions, trial.reward, metrics)

    def _summary_writer(self):
        if self._writer is None:
            from nascell.search.rundir.summaries import ScalarWriter
            self._writer = ScalarWriter(os.path.join(self.path, TENSORBOARD_DIR))
        return self._writer


def _best_entry(trial: Trial) -> Dict[str, Any]:
    spec = spec_to_json(trial.spec)
    return {"trial_id": trial.trial_id, "reward": trial.reward,
            "spec": None if spec is None else json.loads(spec),
            "decisions": trial.decisions, "metrics": trial.metrics}


def _read_config(config_path: str) -> Optional[Dict[str, Any]]:
    try:
        config = _io.read_json_or_none(config_path)
    except (ValueError, OSError) as e:
        raise RunDirError(
            f"{config_path} is unreadable ({e}). It records the search that created this run "
            "directory; nothing was changed. Restore it from a backup (or rewrite it with "
            "the flags of that search), or pick a new --run_dir.") from None
    if config is not None and not isinstance(config, dict):
        raise RunDirError(f"{config_path} does not hold a JSON object; restore it from a "
                          "backup or pick a new --run_dir. Nothing was changed.")
    return config

