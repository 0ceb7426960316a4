"""Compile a spec into a standalone export folder: spec, Keras layer, SavedModel, diagram.

    from nascell.export import export_spec, load
    path = export_spec(NAS_CELL_SPEC, "exports/nas", units=256, input_dim=128)
    layer = load(path)                               # a trainable Python Keras layer
    tf.saved_model.load(path + "/saved_model").step(x, h, c)   # TensorFlow alone

Everything that depends on the spec's kind (which size arguments it takes, the layer, the
SavedModel endpoints, the diagram, the weight keys) comes from its `nascell.kinds` entry, so
this module exports any registered kind the same way. The recurrent kinds' endpoints are
``sequence``, ``sequence_with_state`` and ``step`` (`nascell.kinds.recurrent`); the image
kinds' is ``features`` (`nascell.kinds.image`). Every variable stays trainable and is
reachable as ``trainable_variables`` of the loaded SavedModel; every endpoint returns a dict
of named tensors, and ``metadata.json`` lists each endpoint's inputs (in order), outputs and
shapes. The first endpoint is also the SavedModel's ``serving_default`` signature.

Endpoints run as TensorFlow graphs. The graph optimizer may reorder float operations (its
arithmetic rewrites), so an endpoint can differ from the eager Python layer by float rounding
(about 1e-7 for an ENAS micro net); it equals the layer run under ``tf.function`` exactly.

``metadata.json`` says whether the weights are trained (``weights.trained``) and, if so, how
(``weights.training``: the stage, the run and trial, the reward, what they scored). An export
of trained weights may also hold the whole model they were trained in (``model/``: a
SavedModel with a ``serving_default`` signature, `nascell.export.serving`).

The folder is written in one piece (`nascell.export.folder`): a failure, or a crash, never
leaves a half-written export, and an existing folder is replaced only with ``overwrite=True``.
See `nascell.export.artifacts` for the files, `nascell.export.loader` for reading them back,
and docs/export.md for the whole format.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict, Optional, Sequence

import keras
import tensorflow as tf
from absl import logging

import nascell
from nascell import kinds
from nascell.export import artifacts, folder, serving
from nascell.export.artifacts import (
    DOT_FILE,
    KERAS_FILE,
    METADATA_FILE,
    SAVED_MODEL_DIR,
    SPEC_FILE,
    WEIGHTS_FILE,
)
from nascell.kinds.image import conv_endpoints, features_endpoints
from nascell.kinds.recurrent import cell_endpoints, enas_cell_endpoints
from nascell.spec import coerce_spec

__all__ = ["export_spec", "cell_endpoints", "enas_cell_endpoints",
           "conv_endpoints", "features_endpoints"]


# --- the layer to export ------------------------------------------------------------------------


def _source_core(weights_from: Any) -> Optional[keras.layers.Layer]:
    """The core layer (a cell or an image net) whose weights to export, or None."""
    if weights_from is None:
        return None
    if isinstance(weights_from, keras.layers.Layer):
        return kinds.find_core(weights_from)
    path = os.fspath(weights_from)
    if os.path.isdir(path):
        from nascell.export.loader import load
        layer = load(path)
        return kinds.find_core(layer)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Argument `weights_from` must be an export folder, a .keras "
                                f"file, a weights.npz or a Keras layer; {path!r} does not "
                                "exist")
    if path.endswith(".keras"):
        model = keras.saving.load_model(path, compile=False)
        return kinds.find_core(model, first=True)
    if path.endswith(".npz"):
        return None  # read by `_prepare` once the layer is built.
    raise ValueError(f"Argument `weights_from` must be an export folder, a .keras file, a "
                     f"weights.npz written by an export, or a Keras layer. Received: "
                     f"weights_from={path!r}")


def _prepare(spec: Any, sizes: Dict[str, Any], weights_from: Any,
             layer_config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Resolve the arguments into (kind, spec, built layer with its weights, shapes)."""
    if isinstance(spec, keras.layers.Layer):
        if weights_from is not None:
            raise ValueError("Argument `weights_from` must be left out when `spec` is a layer "
                             "(its own weights are exported). Received: "
                             f"weights_from={weights_from!r}")
        source = kinds.find_core(spec)
        spec = source.spec
        weights_desc = f"layer {source.name!r}"
    else:
        spec = coerce_spec(spec)
        source = _source_core(weights_from)
        weights_desc = ("random initialization" if weights_from is None
                        else str(weights_from) if not isinstance(weights_from, keras.layers.Layer)
                        else f"layer {weights_from.name!r}")
    kind = kinds.kind_of(spec)
    if source is not None and not source.built:
        raise ValueError(f"layer {source.name!r} is not built, so it has no weights yet; call it "
                         f"on data (or build it) before exporting")
    if source is not None and source.spec != spec:
        raise ValueError(f"weights_from holds a layer of another spec than the one exported "
                         f"(its spec: {source.spec.to_json()})")
    shapes = kind.shapes(spec, sizes, source)
    config = dict(layer_config or {})
    if source is not None:  # the source layer's settings, under the caller's own
        config = {**kind.stored_config(source), **config}
    try:
        layer = kind.build(spec, shapes, config)
    except (TypeError, ValueError) as e:  # e.g. an argument the layer does not take
        raise ValueError(f"layer_config does not fit this layer: {e}") from None
    shapes = kind.complete_shapes(spec, layer, shapes)
    core = kind.core_of(layer)
    if source is not None:
        artifacts.copy_weights(source, core, weights_desc)
    elif weights_from is not None:
        artifacts.assign_weights(core, artifacts.read_weights(os.fspath(weights_from)),
                                 os.fspath(weights_from))
    return {"kind": kind, "spec": spec, "layer": layer, "core": core, "shapes": shapes,
            "weights_source": weights_desc}


# --- the writing steps (each one file or folder, in the temporary folder) -------------------------


def _write_spec(tmp: str, spec) -> None:
    with open(os.path.join(tmp, SPEC_FILE), "w", encoding="utf-8") as f:
        f.write(spec.to_json(indent=2) + "\n")


def _write_weights(tmp: str, core) -> Dict[str, Any]:
    return artifacts.save_weights(core, os.path.join(tmp, WEIGHTS_FILE))


def _write_keras(tmp: str, prepared: Dict[str, Any]) -> None:
    inputs = prepared["kind"].model_input(prepared["shapes"])
    model = keras.Model(inputs, prepared["layer"](inputs), name="nascell_export")
    model.save(os.path.join(tmp, KERAS_FILE))


def _write_saved_model(tmp: str, layer, endpoints: Dict[str, Any]) -> None:
    archive = keras.export.ExportArchive()
    archive.track(layer)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(os.path.join(tmp, SAVED_MODEL_DIR), verbose=False)


def _write_diagram(tmp: str, prepared: Dict[str, Any]) -> list:
    kind, spec, shapes = prepared["kind"], prepared["spec"], prepared["shapes"]
    graph, picture = kind.diagram(spec, shapes), kind.picture(spec, shapes)
    if graph is None and picture is None:
        return []
    from nascell import diagram
    return diagram.write_diagram(graph, tmp, stem=os.path.splitext(DOT_FILE)[0],
                                 picture=picture)


def _signature_doc(name: str, fn_and_sig, outputs) -> Dict[str, Any]:
    """An endpoint's positional inputs (in order), its named outputs, and how to call it."""
    _, sig = fn_and_sig
    names = [s.name for s in sig]
    return {"inputs": [{"name": s.name, "shape": list(s.shape.as_list()), "dtype": s.dtype.name}
                       for s in sig],
            "outputs": outputs,
            "call": f"tf.saved_model.load(path).{name}({', '.join(names)}) -> "
                    f"{{{', '.join(repr(k) for k in outputs)}}}"}


def _source_training(weights_from: Any) -> Optional[Dict[str, Any]]:
    """How the weights of an export folder given as ``weights_from`` were trained, if they
    were (so re-exporting a trained export keeps saying so)."""
    if isinstance(weights_from, (str, os.PathLike)) and os.path.isdir(weights_from):
        meta_path = os.path.join(os.fspath(weights_from), METADATA_FILE)
        try:
            weights = artifacts.read_json_file(meta_path, "metadata file").get("weights") or {}
        except (OSError, ValueError):
            return None
        if weights.get("trained"):
            return dict(weights.get("training") or {}, via=os.path.abspath(weights_from))
    return None


def _metadata(prepared: Dict[str, Any], endpoints: Dict[str, Any], weight_shapes,
              files, provenance: Optional[Dict[str, Any]],
              training: Optional[Dict[str, Any]], model_entry) -> Dict[str, Any]:
    kind, spec, core, shapes = (prepared["kind"], prepared["spec"], prepared["core"],
                                prepared["shapes"])
    outputs = kind.endpoint_outputs(shapes)
    layer_doc = dict(kind.layer_doc(shapes))
    layer_doc["config"] = kind.stored_config(core)
    meta = {
        "format": artifacts.FORMAT,
        "format_version": artifacts.FORMAT_VERSION,
        "nascell_version": nascell.__version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kind": spec.kind,
        "shapes": shapes,
        "layer": layer_doc,
        "parameters": artifacts.parameter_count(core),
        "weights": {"file": WEIGHTS_FILE, "source": prepared["weights_source"],
                    "variables": weight_shapes, "trained": training is not None,
                    "training": training},
        "endpoints": {name: _signature_doc(name, endpoints[name], outputs[name])
                      for name in endpoints},
        "serving_default": next(iter(endpoints)),
        "files": sorted(files),
        "provenance": provenance or {},
    }
    if model_entry is not None:
        meta["model"] = model_entry
    return meta


# --- the public entry point -----------------------------------------------------------------------


def export_spec(spec: Any, directory: str, units: Optional[int] = None,
                input_dim: Optional[int] = None, projection: Optional[int] = None,
                input_shape: Optional[Sequence[int]] = None, weights_from: Any = None,
                overwrite: bool = False, *, layer_config: Optional[Dict[str, Any]] = None,
                provenance: Optional[Dict[str, Any]] = None,
                training: Optional[Dict[str, Any]] = None,
                model: Optional[serving.TrainedModel] = None) -> str:
    """Write the export folder of a spec (or of a layer) to ``directory``; returns its path.

    Args:
        spec: a spec of any registered kind (`nascell.kinds`: ``RNNCellSpec``, ``ConvSpec``,
            ``ENASRNNCellSpec``, ``ENASConvCellSpec``, ``ENASMacroSpec``, ...), its dict or JSON
            text, the path of a JSON file; or a Keras layer or model holding one core layer
            of a registered kind (`TreeCell`, `ENASRNNCell`, `ConvNet`, `ENASConvNet`,
            `ENASMacroNet`, e.g. what `nascell.export.load` returns), whose spec, sizes,
            configuration and weights are exported.
        directory: the folder to create.
        units, input_dim, projection: sizes of a recurrent cell (``units`` and ``input_dim``
            required unless they come from a layer; ``projection`` for tree cells only).
        input_shape: ``(height, width, channels)`` of an image network's images.
        weights_from: where the weights come from: None (a fresh initialization), another
            export folder, a ``.keras`` file or a Keras layer/model holding the same spec, or a
            ``weights.npz``.
        overwrite: replace an existing ``directory``; otherwise an existing one is an error.
        layer_config: extra constructor arguments of the core layer (e.g.
            ``{"use_bias": False}`` for a `TreeCell`, ``{"filters": 16, "num_cells": 2}`` for
            an `ENASConvNet`), stored with the export.
        provenance: free-form JSON facts stored in ``metadata.json`` (e.g. the run and trial).
        training: how the weights were trained (JSON facts: the stage, run, trial, reward,
            score), stored as ``metadata.json``'s ``weights.training``, with
            ``weights.trained`` true. None: untrained, unless ``weights_from`` is an export
            folder of trained weights (its ``training`` is kept). Give it only for weights
            that were trained.
        model: the whole trained model the layer comes from (`nascell.export.serving.
            TrainedModel`), written to ``model/`` with a ``serving_default`` signature.

    Raises:
        FileExistsError: ``directory`` exists and ``overwrite`` is False.
        SpecError / ValueError: a bad spec or argument (named as Keras does: "Argument
        `units` must be ..."); `WeightsMismatchError`: weights of other shapes. Nothing is
        written in any of these cases.
    """
    directory = folder.check_target(directory, overwrite)
    sizes = {"units": units, "input_dim": input_dim, "projection": projection,
             "input_shape": input_shape}
    prepared = _prepare(spec, sizes, weights_from, layer_config)
    spec, layer, core = prepared["spec"], prepared["layer"], prepared["core"]
    training = training if training is not None else _source_training(weights_from)
    endpoints = prepared["kind"].endpoints(layer, prepared["shapes"])
    with folder.staged_folder(directory, overwrite) as tmp:
        _write_spec(tmp, spec)
        weight_shapes = _write_weights(tmp, core)
        _write_keras(tmp, prepared)
        _write_saved_model(tmp, layer, endpoints)
        _write_diagram(tmp, prepared)
        model_entry = None if model is None else serving.write_model(tmp, model)
        files = [os.path.relpath(os.path.join(d, f), tmp)
                 for d, _, fs in os.walk(tmp) for f in fs] + [METADATA_FILE]
        meta = _metadata(prepared, endpoints, weight_shapes, files, provenance, training,
                         model_entry)
        with open(os.path.join(tmp, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
    logging.info("exported %s spec (%d parameters) to %s", spec.kind, meta["parameters"],
                 directory)
    return directory

