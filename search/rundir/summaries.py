"""TensorBoard summaries of a search: scalar curves, and one HParams session per trial.

    <run_dir>/tensorboard/                 the search's curves, step = finished trials (or epoch)
        events.out.tfevents.*              trial/reward, search/best_reward, strategy/baseline,
                                           strategy/entropy, ... and the HParams experiment
                                           (the space's decisions as hparams, the metrics)
    <run_dir>/tensorboard/trials/<id>/     one HParams session per finished trial: its
        events.out.tfevents.*              decisions as hparams, reward and metrics at step 0

TensorBoard's HParams dashboard then shows every trial as a row (its decisions, its reward),
parallel coordinates across decisions, and links each to its scalars. The writers are
TensorFlow's own (``tf.summary.create_file_writer``); the summaries are exactly those
``tf.summary.scalar`` and the HParams plugin's ``hp.hparams`` / ``hp.hparams_config`` write,
but all of one step's go out as one Summary through ``tf.summary.experimental.write_raw_pb``:
one TF op per step instead of one per tag, so summaries cost a search about a millisecond a
trial. TensorFlow and ``tensorboard`` are imported on first use.

A decision becomes one hparam: a `Categorical` decision a string hparam whose discrete domain
is its choices (``str`` of each: ``"conv3"``, ``"3"``, ``"True"``); a `Skips` decision a
string hparam without domain, its value the chosen indices as ``"[0, 2]"`` (``"[]"`` for
none) since its 2**k subsets are too many to list.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from absl import logging

TRIALS_DIR = "trials"
REWARD_METRIC = "reward"


def _finite(value: Any) -> Optional[float]:
    """``float(value)`` for a finite real number (not bool), else None."""
    if value is None or isinstance(value, (bool, str, bytes)):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def hparam_value(value: Any) -> str:
    """A decision's value as the string hparam TensorBoard shows (see the module docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else sorted(value)
        return json.dumps([int(i) for i in items])
    return str(value)


def numeric_metrics(metrics: Optional[Mapping[str, Any]]) -> Dict[str, float]:
    """The finite numeric entries of a trial's metrics (the ones TensorBoard can plot)."""
    out = {}
    for key, value in (metrics or {}).items():
        number = _finite(value)
        if number is not None and key != REWARD_METRIC:
            out[str(key)] = number
    return out


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
        del tensorboard
    except ImportError:
        raise ImportError(
            "TensorBoard summaries need the `tensorboard` package: `pip install tensorboard` "
            "(nascell declares it), or turn summaries off (run_search(tensorboard=False), "
            "nascell-search --notensorboard).") from None


def _trial_dir_name(trial_id: Any) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(trial_id))
    return name if name.strip(".") else f"trial_{name}"


def _scalar_summary(scalars: Mapping[str, Any], metadata_cache: Dict[str, Any]):
    """A Summary proto holding `scalars` as ``tf.summary.scalar`` writes them (a float32
    scalar tensor with the scalars plugin's metadata); non-finite values are left out."""
    _require_tensorboard()
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    summary = summary_pb2.Summary()
    for tag, value in scalars.items():
        number = _finite(value)
        if number is None:
            continue
        tag = str(tag)
        meta = metadata_cache.get(tag)
        if meta is None:
            meta = metadata_cache[tag] = scalar_metadata.create_summary_metadata(
                display_name=tag, description="")
        summary.value.add(tag=tag, metadata=meta, tensor=tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, float_val=[number]))
    return summary


class ScalarWriter:
    """Writes a search's TensorBoard summaries under `logdir`.

    `write` appends scalars to the search's own event file (a new file per writer, as
    TensorBoard expects; a resumed search just adds one) and flushes, so a killed search
    loses at most the record being written. `write_trial` writes one trial's HParams session
    to its own sub-run (a writer opened, written, and closed). `write_hparams_config` declares
    the HParams experiment: the decisions and the metrics the dashboard shows.
    """

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        self.logdir = logdir
        self._writer = None
        self._config_key: Optional[str] = None
        self._decisions: Sequence[Any] = ()
        self._metric_names: list = [REWARD_METRIC]
        self._metadata: Dict[str, Any] = {}  # tag -> the scalars plugin's SummaryMetadata

    # -- the search's scalars ------------------------------------------------------------------

    def _main_writer(self):
        if self._writer is None:
            import tensorflow as tf
            self._writer = tf.summary.create_file_writer(self.logdir)
        return self._writer

    def write(self, step: int, scalars: Dict[str, float]) -> None:
        """Write `scalars` (tag -> number) at `step`; non-finite and non-numeric values are
        skipped."""
        writer = self._main_writer()
        if self._write_scalars(writer, step, scalars):
            writer.flush()

    def _write_scalars(self, writer, step: int, scalars: Mapping[str, Any]) -> bool:
        """The summaries ``tf.summary.scalar`` writes, as one Summary of all `scalars` (one TF
        op per step instead of one per tag, several times faster). False if none was finite."""
        import tensorflow as tf
        summary = _scalar_summary(scalars, self._metadata)
        if not summary.value:
            return False
        with writer.as_default():
            tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=int(step))
        return True

    # -- HParams ----------------------------------------------------------------------------

    def write_hparams_config(self, decisions: Iterable[Any],
                             metrics: Iterable[str] = ()) -> None:
        """Declare the HParams experiment: one hparam per decision (`Categorical` with its
        choices as discrete domain, `Skips` or a bare name as a free string) and the metrics
        `reward` plus `metrics`. Written again only when something changed (a metric first seen)."""
        self._decisions = tuple(decisions)
        for name in metrics:
            if name not in self._metric_names:
                self._metric_names.append(str(name))
        self._write_config()

    def _write_config(self) -> None:
        _require_tensorboard()
        from tensorboard.plugins.hparams import api as hp
        hparams = []
        for d in self._decisions:
            name, choices = str(getattr(d, "name", d)), getattr(d, "choices", None)
            if choices is not None:
                hparams.append(hp.HParam(name, hp.Discrete(
                    sorted({hparam_value(c) for c in choices}))))
            else:
                hparams.append(hp.HParam(name))
        key = json.dumps([[h.name, repr(h.domain)] for h in hparams] + self._metric_names)
        if key == self._config_key:
            return
        metrics = [hp.Metric(name, display_name=name) for name in self._metric_names]
        writer = self._main_writer()
        with writer.as_default():
            hp.hparams_config(hparams=hparams, metrics=metrics)
        writer.flush()
        self._config_key = key

    def write_trial(self, trial_id: Any, decisions: Mapping[str, Any],
                    reward: Optional[float], metrics: Optional[Mapping[str, Any]] = None
                    ) -> str:
        """Write one finished trial's HParams session to ``trials/<trial_id>/``: its
        decisions as hparams, `reward` and the numeric `metrics` as scalars at step 0.
        Returns the session's folder. A metric not yet in the experiment config is added to it.
        """
        import tensorflow as tf
        _require_tensorboard()
        from tensorboard.plugins.hparams import summary_v2 as hp_summary
        numbers = numeric_metrics(metrics)
        if self._config_key is not None and any(k not in self._metric_names for k in numbers):
            self._metric_names.extend(k for k in numbers if k not in self._metric_names)
            self._write_config()
        path = os.path.join(self.logdir, TRIALS_DIR, _trial_dir_name(trial_id))
        # What hp.hparams and tf.summary.scalar write, as one Summary: one TF op per trial.
        summary = _scalar_summary({REWARD_METRIC: reward, **numbers}, self._metadata)
        summary.value.extend(hp_summary.hparams_pb(
            {str(k): hparam_value(v) for k, v in decisions.items()},
            trial_id=str(trial_id)).value)
        writer = tf.summary.create_file_writer(path)
        try:
            with writer.as_default():
                tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=0)
        finally:
            writer.close()
        return path

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as e:  # pylint: disable=broad-except
                logging.warning("closing the TensorBoard writer of %s: %s", self.logdir, e)
            self._writer = None
