"""The trained models a run directory holds, described as an export needs them.

A search keeps its best trials' trained children (``<run_dir>/weights/trial_<id>/``, see
`nascell.search.rundir.weights`), and ``nascell-train`` leaves the final stage's model in
``<final_dir>`` (``final.json`` + ``train/best.weights.h5``, by default
``<run_dir>/final``). Both are the files of `nascell.search.rundir.weights` (the final stage's
``model.json`` is made here from its ``final.json``). This module reads them for
`nascell.search.handover` (which alone talks to the exporter):

* `final_info`: the final stage of a run (or a final folder) as an export's ``info``;
* `describe_model`: the ``model.json`` of a trial's kept weights or of a final stage;
* `rebuild`: the trained Keras model and the files to store beside the export;
* `model_sizes`: the sizes of the exported layer, from the model's build arguments (a conv
  child's image shape is there even when the run records none);
* `training_facts`: what ``metadata.json`` says about how the weights were trained;
* `own_data`, `carry_vocabulary`: a run on your own data (`nascell.search.data`): its
  provenance record, and the vocabulary its language models used (``data/vocab.json``).

What an export holds as "the layer" of a trained model: the model's *first* recurrent layer
(the one reading the embedding) for a language model, whose other layers, embedding and
softmax go in the export's ``model/`` folder; the conv features (`nascell.ConvNet`) for an
image classifier, whose pooling and classifier go in ``model/``. Putting the exported layer
back into the model in ``model/`` (`nascell.search.handover.load_model`) gives the model that
scored the recorded validation figure.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

from absl import logging

from nascell import _io, kinds
from nascell.search.rundir import weights as run_weights
from nascell.search.training import final_model

FINAL_DIR = "final"


def final_info(final_dir: str, run: Any = None) -> Optional[Dict[str, Any]]:
    """The finished final stage in ``final_dir`` as an export ``info`` (``stage`` "final"),
    or None when there is none (or it trained a baseline, not an exportable spec). ``run``:
    the open `RunDir` it belongs to, if any (its config; the best trial of the same spec).
    Raises ValueError for an unreadable ``final.json``."""
    from nascell.spec import SpecError, spec_from_dict

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
    return {"trial_id": trial_id, "spec": spec, "reward": record.get("reward"),
            "metrics": dict(record["metrics"]), "config": run.config if run else {},
            "run_dir": run.path if run else None, "final_dir": os.path.abspath(final_dir),
            "record": record, "weights": None, "stage": "final"}


def final_of_run(run: Any, required: bool = False) -> Optional[Dict[str, Any]]:
    """`final_info` of ``<run_dir>/final`` with its ``model``; None if there is none (with
    ``required``: ValueError saying how to make one). ValueError for a corrupt record."""
    final_dir = os.path.join(run.path, FINAL_DIR)
    try:
        info = final_info(final_dir, run)
    except ValueError as e:
        raise ValueError(f"{e}; or export the search's best trial instead (final=False, "
                         "--nofinal)") from None
    if info is None:
        if required:
            raise ValueError(f"{run.path} has no finished final stage ({final_dir}/"
                             f"{final_model.RECORD}); run nascell-train --run_dir={run.path} "
                             "first")
        return None
    info["model"] = describe_model(info)
    return info


def final_of_folder(final_dir: str) -> Dict[str, Any]:
    """`final_info` of a final folder with its ``model`` (and its run, when the folder is
    ``<run_dir>/final``); ValueError when it holds no finished training of a spec."""
    from nascell.search.run_dir import RunDir, RunDirError

    run = None
    parent = os.path.dirname(os.path.abspath(final_dir))
    if os.path.isfile(os.path.join(parent, "config.json")):
        try:
            run = RunDir.open_existing(parent, readonly=True)
        except RunDirError:
            run = None
    try:
        info = final_info(final_dir, run)
    finally:
        if run is not None:
            run.close()
    if info is None:
        raise ValueError(f"{final_dir} holds no finished final training of an exportable spec "
                         f"({final_model.RECORD})")
    info["model"] = describe_model(info)
    return info


def describe_model(info: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The ``model.json`` of ``info``'s trained model: its kept weights' (a search trial) or
    one made from ``final.json`` (the final stage); None when there is no such model."""
    if info.get("stage") == "final":
        record = info["record"]
        metrics = record["metrics"]
        score = {k: metrics[k] for k in ("valid_ppl", "best_valid_acc", "test_ppl",
                                         "test_acc") if metrics.get(k) is not None}
        if "best_valid_acc" in score:
            score["valid_acc"] = score.pop("best_valid_acc")
        score["epoch"] = metrics.get("best_epoch")
        return run_weights.describe(record["kind"], metrics["model_args"], score,
                                      metrics.get("preprocessing"), stage="final")
    folder = info.get("weights")
    if run_weights.is_model_folder(folder):
        return run_weights.read_description(folder)
    return None


def rebuild(info: Dict[str, Any], description: Dict[str, Any]):
    """``(Keras model, {file name: bytes or path})``: the trained model of ``info`` (language
    models as ``ids -> logits``) and the files of `nascell.search.rundir.weights` to store
    beside its export."""
    if info.get("stage") == "final":
        weights = os.path.join(info["final_dir"],
                               info["record"].get("weights") or final_model.WEIGHTS)
        model = final_model.rebuild_model(description["evaluator"], description["model_args"],
                                          weights, return_state=False)
        text = json.dumps(description, indent=2, sort_keys=True) + "\n"
        return model, {run_weights.MODEL_FILE: text.encode("utf-8"),
                       run_weights.WEIGHTS_FILE: weights}
    folder = info["weights"]
    model = run_weights.rebuild(folder)
    return model, {run_weights.MODEL_FILE: os.path.join(folder, run_weights.MODEL_FILE),
                   run_weights.WEIGHTS_FILE: os.path.join(
                       folder, description.get("weights") or run_weights.WEIGHTS_FILE)}


def model_sizes(spec: Any, model_args: Dict[str, Any]) -> Dict[str, Any]:
    """The `export_spec` sizes of ``spec``'s layer in a model built with ``model_args``."""
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


def training_facts(info: Dict[str, Any], description: Optional[Dict[str, Any]],
                   source: Any = None) -> Dict[str, Any]:
    """``metadata.json``'s ``weights.training``: the stage, the run (or final folder), the
    trial, the reward, what the weights scored and which layer of the model was exported."""
    facts: Dict[str, Any] = {"stage": info.get("stage", "search"),
                             "run_dir": info.get("run_dir"), "trial_id": info.get("trial_id"),
                             "reward": info.get("reward")}
    if info.get("stage") == "final":
        facts["final_dir"] = info.get("final_dir")
        facts["note"] = "trained by the final stage (nascell-train)"
    if description is not None:
        facts["trainer"] = description.get("evaluator")
        facts["score"] = description.get("score")
        facts["layer"] = layer_note(info["spec"], description.get("model_args") or {})
    elif source is not None:
        facts["source"] = source if isinstance(source, (str, dict)) else type(source).__name__
    return facts


def layer_note(spec: Any, model_args: Dict[str, Any]) -> str:
    """Which part of the trained model the exported layer is (see the module docstring)."""
    if kinds.kind_of(spec).modality == "sequence":
        layers = int(model_args.get("num_layers") or 1)
        return (f"the first (input-side) of the model's {layers} recurrent layers; model/ "
                "holds the whole model") if layers > 1 else (
                "the model's recurrent layer; model/ holds the whole model")
    return "the model's convolutional features; model/ holds them with the classifier"


def trained_source(info: Dict[str, Any]) -> Dict[str, Any]:
    """What an export of ``info``'s trained model (``info["model"]``) needs: ``core`` (the
    layer to export: the model's first core, `nascell.kinds.find_core`), ``model``,
    ``modality``, ``files``, ``preprocessing``, ``description`` (for ``metadata.json``'s
    ``model``) and ``training`` (`training_facts`)."""
    description = info["model"]
    model, files = rebuild(info, dict(description))
    return {"core": kinds.find_core(model, first=True), "model": model,
            "modality": kinds.kind_of(info["spec"]).modality, "files": files,
            "preprocessing": description.get("preprocessing"),
            "description": {k: description.get(k) for k in ("evaluator", "model_args",
                                                             "score")},
            "training": training_facts(info, description)}


def own_data(info: Dict[str, Any]) -> Dict[str, Any]:
    """What ``metadata.json``'s provenance says of a run on your own data: its data record
    (``data``: source, shapes, vocabulary size, fingerprint) and, for text, ``vocabulary``."""
    data = ((info.get("config") or {}).get("evaluator") or {}).get("data")
    if not isinstance(data, dict):
        return {}
    out = {"data": data}
    if _run_vocabulary(info) is not None:
        out["vocabulary"] = "vocab.json"
    return out


def carry_vocabulary(info: Dict[str, Any], export_dir: str) -> str:
    """Copy the run's vocabulary (the token ids of its language models) into the export folder
    as ``vocab.json``, when the run has one; returns ``export_dir``."""
    path = _run_vocabulary(info) if own_data(info) else None
    if path is not None:
        with open(path, "rb") as f:
            _io.atomic_write_bytes(os.path.join(export_dir, "vocab.json"), f.read())
    return export_dir


def _run_vocabulary(info: Dict[str, Any]) -> Optional[str]:
    if not info.get("run_dir"):
        return None
    from nascell.search.data.sources import VOCAB_FILE
    path = os.path.join(info["run_dir"], VOCAB_FILE)
    return path if os.path.isfile(path) else None
