"""The hand-over from a search run to an export: the one module that needs both halves.

Dependencies flow one way, ``nascell`` <- ``nascell.search`` and ``nascell`` <-
``nascell.export``; this module is the single exception. No other module of the search imports
``nascell.export``, and the export reaches a run directory only through here
(tests/test_layering.py walks the imports to keep it so). It holds:

* `trial_for_export`: a run's best trial (``best/best.json``, else the store's best) or a
  given trial, its spec, metrics and run config; or its final stage's model, where it has one
  (`nascell.search.trained_models`, which also reads the trained models a run kept);
* `export_sizes`: the `export_spec` sizes the run trained it at (the kind reads the run's
  records, `nascell.kinds.SpecKind.sizes_from_run`; the evaluator may declare more; a kept
  trained model's build arguments win);
* `trained_weights`: for a run that kept no trained model, a file the evaluator kept
  (`RunDir.trial_weights`) or what the evaluator rebuilds (its ``trained_weights`` hook: ENAS
  cuts a derived cell out of the last supernet checkpoint);
* `export_best` / `export_final`: then `nascell.export.export_spec`, with the trained layer,
  the whole model beside it (``model/``, a ``serving_default`` SavedModel) and how it was
  trained (``metadata.json``): what nascell-search / nascell-train do at their end;
* `load_model`: the whole trained model of an export folder with its exported layer put back.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from absl import logging

from nascell import _io, kinds
from nascell.search import trained_models
from nascell.search.run_dir import RunDir, RunDirError
from nascell.spec import SpecError, spec_from_dict


class RunExportError(ValueError):
    """The run directory cannot give what export needs; the message says what to pass."""


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
    raise RunExportError(f"{where} holds no exportable spec (got {raw!r}); the exportable kinds "
                         f"are {', '.join(kinds.available_kinds())}")


def trial_for_export(run_dir: str, trial: Optional[int] = None,
                     final: Optional[bool] = None) -> Dict[str, Any]:
    """``{"trial_id", "spec", "reward", "metrics", "config", "weights", "stage", "model"}`` of
    the best trial of ``run_dir`` (or of trial ``trial``); ``weights`` is its kept weights (a
    folder of `nascell.search.rundir.weights`, or a file) or None; ``model`` the kept trained
    model's ``model.json`` or None. ``final`` (None: when the run has a finished final stage
    and no ``trial`` is given): the final stage's model instead (``stage`` "final")."""
    if final and trial is not None:
        raise RunExportError("pass a trial or the final stage (final=True), not both")
    run = _open(run_dir)
    try:
        if trial is None and final is not False:
            try:
                info = trained_models.final_of_run(run, required=bool(final))
            except ValueError as e:
                raise RunExportError(str(e)) from None
            if info is not None:
                return info
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
        info = dict(entry)
        info["spec"] = _as_spec(entry.get("spec"), where)
        info["metrics"] = dict(entry.get("metrics") or {})
        info["config"] = run.config
        info["run_dir"] = run.path
        info["weights"] = run.trial_weights(info["trial_id"], info["metrics"])
        info["stage"] = "search"
        try:
            info["model"] = trained_models.describe_model(info)
        except ValueError as e:  # a corrupt kept model: the export says it is untrained
            logging.warning("%s; exporting without it", e)
            info["model"], info["weights"] = None, None
        return info
    finally:
        run.close()


def export_sizes(info: Dict[str, Any]) -> Dict[str, Any]:
    """The `export_spec` keyword arguments a run trained a trial's spec at (may be {}): what
    its kind reads from the run's records, then what the evaluator declared under ``export``
    in its config (it wins)."""
    config = info.get("config") or {}
    sizes = kinds.kind_of(info["spec"]).sizes_from_run(config, info.get("metrics") or {})
    declared = (config.get("evaluator") or {}).get("export") or {}
    for key, value in declared.items():
        if key == "layer_config":
            sizes["layer_config"] = {**sizes.get("layer_config", {}), **value}
        else:
            sizes[key] = tuple(value) if key == "input_shape" else value
    if info.get("model"):  # the trained model's own sizes: what its weights have
        sizes.update(trained_models.model_sizes(info["spec"], info["model"]["model_args"]))
    return sizes


def trained_weights(info: Dict[str, Any]):
    """``(weights source, provenance facts)`` of a trial: a kept file, or what the run's
    evaluator class rebuilds (``trained_weights(run_dir, config, info)`` returning a built
    Keras layer or a path, or None), or ``(None, {})`` for a fresh initialization."""
    if info.get("weights") is not None:
        return info["weights"], {}
    name = (info.get("config", {}).get("evaluator") or {}).get("name")
    if not name:
        return None, {}
    from nascell.search.evaluators import evaluator_class
    try:
        cls = evaluator_class(name)
    except (ValueError, ImportError):  # a custom evaluator this process does not know
        return None, {}
    hook = getattr(cls, "trained_weights", None)
    if hook is None:
        return None, {}
    found = hook(info["run_dir"], info["config"], info)
    return found if found is not None else (None, {})


def export_best(run_dir: str, trial: Optional[int] = None, directory: Optional[str] = None,
                final: Optional[bool] = None, **kwargs: Any) -> str:
    """Export the best trial of a search run (or trial ``trial``, or its final stage's model)
    into ``<run_dir>/export/``.

    The folder is ``<run_dir>/export/best`` (``.../trial_<id>``, ``.../final``) unless
    ``directory`` is given. ``final`` (None: if the run has a finished final stage and no
    ``trial`` is given) exports the final stage's model. Sizes not in ``kwargs`` come from the
    run (`export_sizes`). The weights are the trained ones the run kept (the whole model goes
    to the export's ``model/``) or rebuilds (`trained_weights`), else (or with
    ``weights_from=False``) a fresh initialization; ``metadata.json``'s ``weights.trained``
    says which. Other keyword arguments go to `nascell.export.export_spec`."""
    info = trial_for_export(run_dir, trial, final)
    if directory is None:
        sub = ("final" if info["stage"] == "final" else "best" if trial is None
               else f"trial_{info['trial_id']}")
        directory = os.path.join(run_dir, "export", sub)
    return _export(info, directory, kwargs)


def export_final(final_dir: str, directory: Optional[str] = None, overwrite: bool = True,
                 **kwargs: Any) -> str:
    """Export a finished final stage (``nascell-train``'s ``final_dir``): the found cell with
    its final weights and the whole model (``model/saved_model``, ``serving_default``), into
    ``<final_dir>/export`` unless ``directory`` is given."""
    try:
        info = trained_models.final_of_folder(final_dir)
    except ValueError as e:
        raise RunExportError(str(e)) from None
    return _export(info, directory or os.path.join(final_dir, "export"),
                   dict(kwargs, overwrite=overwrite))


def _export(info: Dict[str, Any], directory: str, kwargs: Dict[str, Any]) -> str:
    from nascell.export.exporter import export_spec  # the one place search meets export
    from nascell.export.serving import TrainedModel
    for key, value in export_sizes(info).items():
        if key == "layer_config":  # the run's layer settings, under the caller's own
            kwargs["layer_config"] = {**value, **(kwargs.get("layer_config") or {})}
        elif kwargs.get(key) is None:
            kwargs[key] = value
    provenance = {"run_dir": info.get("run_dir"), "trial_id": info["trial_id"],
                  "reward": info.get("reward"), "metrics": info.get("metrics", {}),
                  "stage": info.get("stage", "search")}
    if info.get("final_dir"):
        provenance["final_dir"] = info["final_dir"]
    training = None
    if kwargs.get("weights_from") is False:  # asked for a fresh initialization
        kwargs["weights_from"] = None
    elif kwargs.get("weights_from") is None and info.get("model"):
        found = trained_models.trained_source(info)
        kwargs["weights_from"] = found["core"]
        kwargs["model"] = TrainedModel(found["model"], found["modality"], found["files"],
                                       found["preprocessing"], found["description"])
        training = found["training"]
    elif kwargs.get("weights_from") is None:
        source, facts = trained_weights({**info, "sizes": kwargs})
        kwargs["weights_from"] = source
        provenance.update(facts)
        if source is None:
            logging.info("trial %s of %s kept no weights; exporting a fresh initialization",
                         info["trial_id"], info.get("run_dir"))
        else:
            training = trained_models.training_facts(info, None, facts or source)
    provenance.update(trained_models.own_data(info), **(kwargs.pop("provenance", None) or {}))
    return trained_models.carry_vocabulary(info, export_spec(
        info["spec"], directory, provenance=provenance, training=training, **kwargs))


def load_model(export_dir: str, return_state: bool = False):
    """The whole trained model of an export folder (its ``model/``), with the exported layer
    (``weights.npz``) put back in as its first recurrent layer or its conv features: the
    model that scored the validation figure in ``metadata.json``. Language models come back
    as ``ids -> logits`` (``return_state``: ``[ids, *states] -> [logits, *states]``)."""
    from nascell.export.artifacts import WEIGHTS_FILE, assign_weights, read_weights
    from nascell.export.serving import MODEL_DIR
    from nascell.search.rundir import weights as run_weights
    folder = os.path.join(export_dir, MODEL_DIR)
    if not run_weights.is_model_folder(folder):
        raise FileNotFoundError(f"{export_dir} holds no trained model ({folder}/"
                                f"{run_weights.MODEL_FILE}); it was exported without one")
    model = run_weights.rebuild(folder, return_state=return_state)
    weights = os.path.join(export_dir, WEIGHTS_FILE)
    assign_weights(kinds.find_core(model, first=True), read_weights(weights), weights)
    return model
