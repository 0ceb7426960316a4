"""What an export needs of a run: the trial (or final stage) to export, as an `ExportRecord`.

A search keeps its best trials' trained children (``<run_dir>/weights/trial_<id>/``,
`nascell.search.rundir.weights`), and ``nascell-train`` leaves the final stage's model in
``<final_dir>`` (``final.json`` + ``train/best.weights.h5``, by default ``<run_dir>/final``).
This module reads a run directory (or a final folder) into one typed record; it imports
nothing of `nascell.export` (`nascell.search.handover.exporting` hands the record over):

* `trial_for_export`: a run's best trial (``best/best.json``, else the store's best) or a
  given trial, its spec, metrics and run config; or its final stage's model, where it has one;
* `final_of_folder`: the finished final stage of a ``nascell-train`` folder;
* `export_sizes`: the `export_spec` sizes the run trained it at (the kind reads the run's
  records, `nascell.kinds.SpecKind.sizes_from_run`; the evaluator may declare more; a kept
  trained model's build arguments win);
* `trained_weights`: for a run that kept no trained model, what the run's evaluator class
  rebuilds (`nascell.search.core.evaluator.Evaluator.trained_weights`: ENAS cuts a derived cell
  out of the last supernet checkpoint).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

from absl import logging

from nascell import _io, kinds
from nascell.search.rundir import weights as run_weights
from nascell.search.rundir.run_dir import RunDir, RunDirError
from nascell.search.training import final_model
from nascell.spec import SpecError, spec_from_dict

FINAL_DIR = "final"
SEARCH, FINAL = "search", "final"


class RunExportError(ValueError):
    """The run directory cannot give what export needs; the message says what to pass."""


@dataclasses.dataclass
class ExportRecord:
    """A trained (or found) architecture to export, and where it came from.

    Attributes:
      spec: the spec to export (a registered kind, `nascell.kinds`).
      stage: ``"search"`` (a search trial) or ``"final"`` (``nascell-train``'s model).
      trial_id: the search trial (for the final stage: the run's best trial when it has the
        same spec, else None).
      reward: the trial's (or final stage's) reward.
      metrics: the trial's metrics (or the final stage's).
      config: the run's ``config.json`` ({} without a run).
      run_dir: the run directory, or None (a final folder outside a run).
      weights: the trained weights the run kept for the trial (a folder of
        `nascell.search.rundir.weights`, or a file), or None.
      model: the ``model.json`` of the trained model (kept weights or final stage), or None.
      final_dir: the final stage's folder (stage ``"final"``).
      final_record: the final stage's ``final.json`` (stage ``"final"``).
    """

    spec: Any
    stage: str = SEARCH
    trial_id: Optional[int] = None
    reward: Optional[float] = None
    metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
    config: Dict[str, Any] = dataclasses.field(default_factory=dict)
    run_dir: Optional[str] = None
    weights: Optional[str] = None
    model: Optional[Dict[str, Any]] = None
    final_dir: Optional[str] = None
    final_record: Optional[Dict[str, Any]] = None


# -- reading a run -----------------------------------------------------------------------------

def _open(run_dir: str) -> RunDir:
    if not os.path.isdir(run_dir):
        raise RunExportError(f"--run_dir {run_dir} does not exist (or is not a folder)")
    try:
        return RunDir.open_existing(run_dir, readonly=True)
    except RunDirError as e:
        raise RunExportError(str(e)) from None


def _as_spec(raw: Any, where: str):
    if kinds.find_kind(raw) is not None:
        return raw
    if isinstance(raw, dict):
        try:
            spec = spec_from_dict(raw)
        except SpecError as e:
            raise RunExportError(f"{where} holds a spec that does not validate: {e}") from None
        if kinds.find_kind(spec) is not None:
            return spec
    raise RunExportError(f"{where} holds no exportable spec; the exportable kinds are "
                         f"{', '.join(kinds.available_kinds())}. Received: spec={raw!r}")


def trial_for_export(run_dir: str, trial: Optional[int] = None,
                     final: Optional[bool] = None) -> ExportRecord:
    """The `ExportRecord` of the best trial of ``run_dir`` (or of trial ``trial``), with its
    kept weights and their ``model.json`` where the run kept them. ``final`` (None: when the
    run has a finished final stage and no ``trial`` is given): the final stage's model
    instead (stage ``"final"``)."""
    if final and trial is not None:
        raise RunExportError("pass a trial or the final stage (final=True), not both")
    run = _open(run_dir)
    try:
        if trial is None and final is not False:
            try:
                record = _final_of_run(run, required=bool(final))
            except ValueError as e:
                raise RunExportError(str(e)) from None
            if record is not None:
                return record
        if trial is None:
            best_path = os.path.join(run.path, "best", "best.json")
            entry = None
            try:
                entry = _io.read_json_or_none(best_path)
            except ValueError as e:
                raise RunExportError(f"{e}; or pass --trial ID to export a trial from the "
                                     "store instead") from None
            if entry is None:
                best = run.store.best(1)
                if not best:
                    raise RunExportError(f"{run_dir} has no finished trial yet; nothing to "
                                         f"export")
                t = best[0]
                entry = {"trial_id": t.trial_id, "reward": t.reward, "spec": t.spec,
                         "metrics": t.metrics}
            where = best_path
        else:
            t = run.store.get(int(trial))
            if t is None:
                raise RunExportError(f"trial {trial} is not in {run_dir} (trial ids 0.."
                                     f"{run.store.max_trial_id()})")
            if t.status.value != "done":
                raise RunExportError(f"trial {trial} of {run_dir} is {t.status.value}, not "
                                     f"done{': ' + t.error if t.error else ''}; pick a "
                                     f"finished trial")
            entry = {"trial_id": t.trial_id, "reward": t.reward, "spec": t.spec,
                     "metrics": t.metrics}
            where = f"trial {trial} of {run_dir}"
        metrics = dict(entry.get("metrics") or {})
        record = ExportRecord(
            spec=_as_spec(entry.get("spec"), where), stage=SEARCH,
            trial_id=entry.get("trial_id"), reward=entry.get("reward"), metrics=metrics,
            config=run.config, run_dir=run.path,
            weights=run.trial_weights(entry.get("trial_id"), metrics))
        try:
            record.model = describe_model(record)
        except ValueError as e:  # a corrupt kept model: the export says it is untrained
            logging.warning("%s; exporting without it", e)
            record.model, record.weights = None, None
        return record
    finally:
        run.close()


def _final_info(final_dir: str, run: Optional[RunDir] = None) -> Optional[ExportRecord]:
    """The finished final stage in ``final_dir`` (stage "final"), or None when there is none
    (or it trained a baseline, not an exportable spec). ``run``: the open `RunDir` it belongs
    to, if any (its config; the best trial of the same spec). Raises ValueError for an
    unreadable ``final.json``."""
    path = os.path.join(final_dir, final_model.RECORD)
    record = _io.read_json_or_none(path)
    if not isinstance(record, dict) or record.get("failed") or "metrics" not in record:
        return None
    try:
        spec = spec_from_dict(record.get("spec"))
    except (SpecError, TypeError, ValueError):
        spec = None
    if kinds.find_kind(spec) is None:
        logging.info("%s trained %r, not a spec of a registered kind: nothing of it to export",
                     path, record.get("spec"))
        return None
    trial_id = None
    if run is not None:  # the search trial it was found as, when it is the run's best
        best = run.store.best(1)
        if best and best[0].spec == spec:
            trial_id = best[0].trial_id
    return ExportRecord(spec=spec, stage=FINAL, trial_id=trial_id, reward=record.get("reward"),
                        metrics=dict(record["metrics"]), config=run.config if run else {},
                        run_dir=run.path if run else None,
                        final_dir=os.path.abspath(final_dir), final_record=record)


def _final_of_run(run: RunDir, required: bool = False) -> Optional[ExportRecord]:
    """The final stage of ``<run_dir>/final`` with its ``model``; None if there is none (with
    ``required``: ValueError saying how to make one). ValueError for a corrupt record."""
    final_dir = os.path.join(run.path, FINAL_DIR)
    try:
        record = _final_info(final_dir, run)
    except ValueError as e:
        raise ValueError(f"{e}; or export the search's best trial instead (final=False, "
                         "--nofinal)") from None
    if record is None:
        if required:
            raise ValueError(f"{run.path} has no finished final stage ({final_dir}/"
                             f"{final_model.RECORD}); run nascell-train --run_dir={run.path} "
                             "first")
        return None
    record.model = describe_model(record)
    return record


def final_of_folder(final_dir: str) -> ExportRecord:
    """The final stage of a final folder with its ``model`` (and its run, when the folder is
    ``<run_dir>/final``); RunExportError when it holds no finished training of a spec."""
    run = None
    parent = os.path.dirname(os.path.abspath(final_dir))
    if os.path.isfile(os.path.join(parent, "config.json")):
        try:
            run = RunDir.open_existing(parent, readonly=True)
        except RunDirError:
            run = None
    try:
        record = _final_info(final_dir, run)
    except ValueError as e:
        raise RunExportError(str(e)) from None
    finally:
        if run is not None:
            run.close()
    if record is None:
        raise RunExportError(f"{final_dir} holds no finished final training of an exportable "
                             f"spec ({final_model.RECORD})")
    record.model = describe_model(record)
    return record


def describe_model(record: ExportRecord) -> Optional[Dict[str, Any]]:
    """The ``model.json`` of ``record``'s trained model: its kept weights' (a search trial) or
    one made from ``final.json`` (the final stage); None when there is no such model."""
    if record.stage == FINAL:
        final = record.final_record
        metrics = final["metrics"]
        score = {k: metrics[k] for k in ("valid_ppl", "best_valid_acc", "test_ppl",
                                         "test_acc") if metrics.get(k) is not None}
        if "best_valid_acc" in score:
            score["valid_acc"] = score.pop("best_valid_acc")
        score["epoch"] = metrics.get("best_epoch")
        return run_weights.describe(final["kind"], metrics["model_args"], score,
                                    metrics.get("preprocessing"), stage=FINAL)
    if run_weights.is_model_folder(record.weights):
        return run_weights.read_description(record.weights)
    return None


# -- sizes and untrained weights ---------------------------------------------------------------

def export_sizes(record: ExportRecord) -> Dict[str, Any]:
    """The `export_spec` keyword arguments a run trained a trial's spec at (may be {}): what
    its kind reads from the run's records, then what the evaluator declared under ``export``
    in its config (it wins), then the kept trained model's own sizes (what its weights have)."""
    config = record.config or {}
    sizes = kinds.kind_of(record.spec).sizes_from_run(config, record.metrics or {})
    declared = (config.get("evaluator") or {}).get("export") or {}
    for key, value in declared.items():
        if key == "layer_config":
            sizes["layer_config"] = {**sizes.get("layer_config", {}), **value}
        else:
            sizes[key] = tuple(value) if key == "input_shape" else value
    if record.model:
        sizes.update(model_sizes(record.spec, record.model["model_args"]))
    return sizes


def model_sizes(spec: Any, model_args: Dict[str, Any]) -> Dict[str, Any]:
    """The `export_spec` sizes of ``spec``'s layer in a model built with ``model_args`` (a
    conv child's image shape is there even when the run records none)."""
    modality = kinds.kind_of(spec).modality
    if modality == "image" and model_args.get("input_shape"):
        return {"input_shape": tuple(int(d) for d in model_args["input_shape"])}
    if modality == "sequence" and model_args.get("units"):
        units = int(model_args["units"])
        embedding = model_args.get("embedding_dim")
        tied = model_args.get("tie_weights", True)
        return {"units": units, "input_dim": int(embedding) if (not tied and embedding)
                else units}
    return {}


def trained_weights(record: ExportRecord, sizes: Dict[str, Any]) -> Tuple[Any, Dict[str, Any]]:
    """``(weights source, provenance facts)`` of a trial: a kept file, or what the run's
    evaluator class rebuilds (`nascell.search.core.evaluator.Evaluator.trained_weights`: a built
    Keras layer or a path), or ``(None, {})`` for a fresh initialization."""
    if record.weights is not None:
        return record.weights, {}
    name = ((record.config or {}).get("evaluator") or {}).get("name")
    if not name:
        return None, {}
    from nascell.search.core.evaluator import Evaluator
    from nascell.search.evaluators import evaluator_class
    try:
        cls = evaluator_class(name)
    except (ValueError, ImportError):  # a custom evaluator this process does not know
        return None, {}
    if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
        return None, {}
    found = cls.trained_weights(record, sizes)
    return found if found is not None else (None, {})
