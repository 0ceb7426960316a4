"""The whole trained model beside the exported layer: ``model/`` in an export folder.

An export of trained weights (a search trial's child, or the final stage's model) holds, beside
the one layer every export has, the whole model that layer was trained in::

    model/saved_model/    a TensorFlow SavedModel with a ``serving_default`` signature
                          (TensorFlow alone loads and serves it; nascell is not needed)
    model/model.json      how nascell rebuilds it: the trainer, its build arguments, what it
                          scored, the image preprocessing (`nascell.search.rundir.weights`)
    model/model.weights.h5  every weight of the model (Keras ``save_weights``)

``serving_default`` takes what a user has and returns what they want:

* language models: ``tokens`` (int32 ``[batch, time]``, token ids) -> ``logits`` (float32
  ``[batch, time, vocab]``, the next-token logits at every position), each sequence run from a
  zero recurrent state;
* image classifiers: ``images`` (float32 ``[batch, height, width, channels]``, raw pixel values
  from 0 to ``pixel_scale``, e.g. 255) -> ``probabilities`` (float32 ``[batch, classes]``); the
  per-channel whitening the model was trained with is done inside, with the training data's
  mean and standard deviation (``model.json``'s ``preprocessing``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Any, Dict, Optional, Union

import keras
import numpy as np
import tensorflow as tf

MODEL_DIR = "model"
SAVED_MODEL_DIR = "saved_model"
MODALITIES = ("sequence", "image")


@dataclasses.dataclass
class TrainedModel:
    """A trained Keras model to export beside its layer.

    Attributes:
      model: ``tokens -> logits`` (``modality="sequence"``) or ``images -> probabilities``
        (``modality="image"``, on preprocessed images).
      modality: "sequence" or "image".
      files: files to store in ``model/``: name -> bytes, or the path of a file to copy
        (``model.json``, ``model.weights.h5``).
      preprocessing: image models: ``{"pixel_scale", "mean", "std"}`` (per channel), done
        inside ``serving_default`` so it takes raw pixels; None: images are fed as they are.
      description: what ``metadata.json`` says about the model (JSON-able).
    """

    model: Any
    modality: str
    files: Dict[str, Union[str, bytes]] = dataclasses.field(default_factory=dict)
    preprocessing: Optional[Dict[str, Any]] = None
    description: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"Argument `modality` must be one of {list(MODALITIES)}. "
                             f"Received: modality={self.modality!r}")
        if not isinstance(self.model, keras.Model):
            raise ValueError(f"Argument `model` must be a Keras model. Received: "
                             f"{type(self.model).__name__}")


def serving_endpoint(trained: TrainedModel):
    """``(function, input_signature, {output: shape})`` of ``serving_default``."""
    model = trained.model
    if trained.modality == "sequence":
        def serve(tokens):
            return {"logits": model(tokens, training=False)}

        vocab = int(model.outputs[0].shape[-1])
        return (serve, [tf.TensorSpec((None, None), tf.int32, name="tokens")],
                {"logits": [None, None, vocab]})
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    prep = trained.preprocessing
    scale, mean, std = 1.0, 0.0, 1.0
    if prep:
        scale = float(prep.get("pixel_scale", 255.0))
        mean = tf.constant(np.asarray(prep["mean"], np.float32))
        std = tf.constant(np.asarray(prep["std"], np.float32))

    def classify(images):
        x = (images / scale - mean) / std if prep else images
        return {"probabilities": model(x, training=False)}

    classes = int(model.outputs[0].shape[-1])
    return (classify, [tf.TensorSpec((None,) + shape, tf.float32, name="images")],
            {"probabilities": [None, classes]})


def write_model(folder: str, trained: TrainedModel) -> Dict[str, Any]:
    """Write ``folder/model/`` (see the module docstring); returns its ``metadata.json`` entry."""
    target = os.path.join(folder, MODEL_DIR)
    os.makedirs(target, exist_ok=True)
    for name, content in trained.files.items():
        if os.path.basename(name) != name or name in ("", SAVED_MODEL_DIR):
            raise ValueError(f"Argument `files` must name plain files. Received: {name!r}")
        path = os.path.join(target, name)
        if isinstance(content, bytes):
            with open(path, "wb") as f:
                f.write(content)
        else:
            shutil.copyfile(os.fspath(content), path)
    fn, signature, outputs = serving_endpoint(trained)
    archive = keras.export.ExportArchive()
    archive.track(trained.model)
    archive.add_endpoint("serving_default", fn, input_signature=signature)
    archive.write_out(os.path.join(target, SAVED_MODEL_DIR), verbose=False)
    inputs = [{"name": s.name, "shape": list(s.shape.as_list()), "dtype": s.dtype.name}
              for s in signature]
    entry = {
        "saved_model": f"{MODEL_DIR}/{SAVED_MODEL_DIR}",
        "modality": trained.modality,
        "serving_default": {
            "inputs": inputs, "outputs": outputs,
            "call": (f'tf.saved_model.load("{MODEL_DIR}/{SAVED_MODEL_DIR}")'
                     f'.signatures["serving_default"]({inputs[0]["name"]}=...) -> '
                     f'{{{", ".join(repr(k) for k in outputs)}}}')},
        "files": sorted(trained.files),
        "parameters": int(trained.model.count_params()),
    }
    if trained.modality == "sequence":
        entry["serving_default"]["note"] = "each sequence starts from a zero recurrent state"
    elif trained.preprocessing:
        entry["serving_default"]["note"] = (
            "images are raw pixel values (0 to pixel_scale); the whitening "
            "(x / pixel_scale - mean) / std is done inside")
        entry["preprocessing"] = trained.preprocessing
    entry.update(trained.description)
    return entry
