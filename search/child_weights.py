"""A trained model as files: what a child's `EvalResult` carries home and a run directory keeps.

A child trainer that may run on any node of a cluster cannot write into the search's run
directory (a worker node does not share the driver's file system), so it returns its trained
weights *with its result*: `pack` turns the model into two small files, as bytes
(``EvalResult.weights``), and the search loop on the driver writes the ones worth keeping
under ``<run_dir>/weights/trial_<id>/`` (`nascell.search.weights_keeper`). The final stage
(``nascell-train``) describes its model with the same files, so an export reads both alike:

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
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Optional

from nascell import _io

MODEL_FILE = "model.json"
WEIGHTS_FILE = "model.weights.h5"
FORMAT = "nascell-trained-model"
FORMAT_VERSION = 1


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

