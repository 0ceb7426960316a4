"""The trained model of an `ExportRecord`, and what an export says about how it was trained.

What an export holds as "the layer" of a trained model: the model's *first* recurrent layer
(the one reading the embedding) for a language model, whose other layers, embedding and
softmax go in the export's ``model/`` folder; the conv features (`nascell.ConvNet`) for an
image classifier, whose pooling and classifier go in ``model/``. Putting the exported layer
back into the model in ``model/`` (`nascell.search.handover.load_model`) gives the model that
scored the recorded validation figure.

* `trained_source`: the trained Keras model, the layer to export and the files to store
  beside the export (`nascell.search.rundir.weights`);
* `training_facts`: what ``metadata.json`` says about how the weights were trained;
* `own_data`, `carry_vocabulary`: a run on your own data (`nascell.search.data`): its
  provenance record, and the vocabulary its language models used (``data/vocab.json``).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

from nascell import _io, kinds
from nascell.search.handover.record import FINAL, SEARCH, ExportRecord
from nascell.search.rundir import weights as run_weights
from nascell.search.training import final_model


def rebuild(record: ExportRecord, description: Dict[str, Any]):
    """``(Keras model, {file name: bytes or path})``: the trained model of ``record``
    (language models as ``ids -> logits``) and the files of `nascell.search.rundir.weights`
    to store beside its export."""
    if record.stage == FINAL:
        weights = os.path.join(record.final_dir,
                               record.final_record.get("weights") or final_model.WEIGHTS)
        model = final_model.rebuild_model(description["evaluator"], description["model_args"],
                                          weights, return_state=False)
        text = json.dumps(description, indent=2, sort_keys=True) + "\n"
        return model, {run_weights.MODEL_FILE: text.encode("utf-8"),
                       run_weights.WEIGHTS_FILE: weights}
    folder = record.weights
    model = run_weights.rebuild(folder)
    return model, {run_weights.MODEL_FILE: os.path.join(folder, run_weights.MODEL_FILE),
                   run_weights.WEIGHTS_FILE: os.path.join(
                       folder, description.get("weights") or run_weights.WEIGHTS_FILE)}


def training_facts(record: ExportRecord, description: Optional[Dict[str, Any]],
                   source: Any = None) -> Dict[str, Any]:
    """``metadata.json``'s ``weights.training``: the stage, the run (or final folder), the
    trial, the reward, what the weights scored and which layer of the model was exported."""
    facts: Dict[str, Any] = {"stage": record.stage or SEARCH, "run_dir": record.run_dir,
                             "trial_id": record.trial_id, "reward": record.reward}
    if record.stage == FINAL:
        facts["final_dir"] = record.final_dir
        facts["note"] = "trained by the final stage (nascell-train)"
    if description is not None:
        facts["trainer"] = description.get("evaluator")
        facts["score"] = description.get("score")
        facts["layer"] = layer_note(record.spec, description.get("model_args") or {})
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


def trained_source(record: ExportRecord) -> Dict[str, Any]:
    """What an export of ``record``'s trained model (``record.model``) needs: ``core`` (the
    layer to export: the model's first core, `nascell.kinds.find_core`), ``model``,
    ``modality``, ``files``, ``preprocessing``, ``description`` (for ``metadata.json``'s
    ``model``) and ``training`` (`training_facts`)."""
    description = record.model
    model, files = rebuild(record, dict(description))
    return {"core": kinds.find_core(model, first=True), "model": model,
            "modality": kinds.kind_of(record.spec).modality, "files": files,
            "preprocessing": description.get("preprocessing"),
            "description": {k: description.get(k) for k in ("evaluator", "model_args",
                                                             "score")},
            "training": training_facts(record, description)}


def own_data(record: ExportRecord) -> Dict[str, Any]:
    """What ``metadata.json``'s provenance says of a run on your own data: its data record
    (``data``: source, shapes, vocabulary size, fingerprint) and, for text, ``vocabulary``."""
    data = ((record.config or {}).get("evaluator") or {}).get("data")
    if not isinstance(data, dict):
        return {}
    out = {"data": data}
    if _run_vocabulary(record) is not None:
        out["vocabulary"] = "vocab.json"
    return out


def carry_vocabulary(record: ExportRecord, export_dir: str) -> str:
    """Copy the run's vocabulary (the token ids of its language models) into the export folder
    as ``vocab.json``, when the run has one; returns ``export_dir``."""
    path = _run_vocabulary(record) if own_data(record) else None
    if path is not None:
        with open(path, "rb") as f:
            _io.atomic_write_bytes(os.path.join(export_dir, "vocab.json"), f.read())
    return export_dir


def _run_vocabulary(record: ExportRecord) -> Optional[str]:
    if not record.run_dir:
        return None
    from nascell.search.data.sources import VOCAB_FILE
    path = os.path.join(record.run_dir, VOCAB_FILE)
    return path if os.path.isfile(path) else None
