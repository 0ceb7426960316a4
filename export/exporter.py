"""Compile a spec into a standalone export folder: spec, Keras layer, SavedModel, diagram.

    from nascell.export import export_spec, load
    path = export_spec(NAS_CELL_SPEC, "exports/nas", units=256, input_dim=128)
    layer = load(path)                               # a trainable Python Keras layer
    tf.saved_model.load(path + "/saved_model").step(x, h, c)   # TensorFlow alone

The folder is written in one piece: everything goes into a temporary folder beside the target,
which is renamed into place only once complete, so a failure (or a crash) never leaves a
half-written export behind; an existing folder is replaced only with ``overwrite=True``. See
`nascell.export.artifacts` for the files and `nascell.export.loader` for reading them back.

SavedModel endpoints (every variable stays trainable and is reachable as
``trainable_variables`` of the loaded object):

* recurrent cells (``h_dim`` is ``projection`` or ``units``):
    - ``sequence(inputs)``: ``inputs`` ``[batch, time, input_dim]``, zero initial state ->
      ``{"outputs": [batch, time, h_dim], "h": [batch, h_dim], "c": [batch, units]}``;
    - ``sequence_with_state(inputs, h, c)``: the same from a given initial state;
    - ``step(x, h, c)``: one time step, ``x`` ``[batch, input_dim]`` ->
      ``{"output": [batch, h_dim], "h": ..., "c": ...}`` (``output`` is the new ``h``, as a Keras
      cell returns ``h, [h, c]``);
* ENAS recurrent cells (``enas_rnn_cell``): the same three endpoints, but the cell's state is
  ``h`` alone (of size ``units``; there is no memory ``c``, and the output is the state):
    - ``sequence(inputs)`` -> ``{"outputs": [batch, time, units], "h": [batch, units]}``;
    - ``sequence_with_state(inputs, h)``;
    - ``step(x, h)`` -> ``{"output": [batch, units], "h": [batch, units]}``;
  ``metadata.json`` names the states of every cell export (``layer.states``: ``["h", "c"]``
  for a tree cell, ``["h"]`` for an ENAS cell), so a caller can feed them generically;
* conv nets: ``features(images)``: ``[batch, height, width, channels]`` ->
  ``{"features": [batch, H, W, C]}`` (inference mode: batch normalization uses its moving
  statistics);
* ENAS micro / macro nets (``enas_conv_cell``, ``enas_macro``): ``features(images)`` ->
  ``{"features": [batch, C]}``, the globally pooled features (or the logits, when exported
  with ``layer_config={"include_top": True, "num_classes": K}``), in inference mode.

Endpoints run as TensorFlow graphs. The graph optimizer may reorder float operations (its
arithmetic rewrites), so an endpoint can differ from the eager Python layer by float rounding
(about 1e-7 for an ENAS micro net); it equals the layer run under ``tf.function`` exactly.

Every endpoint returns a dict of named tensors, so its serving signature has named outputs;
``metadata.json`` lists each endpoint's inputs (in order), outputs and shapes.

The first endpoint is also the SavedModel's ``serving_default`` signature.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

import nascell
from nascell import _io
from nascell.conv import ConvNet, plan_conv_shapes
from nascell.export import artifacts, diagram
from nascell.export.artifacts import (CELL_LAYER_NAME, CONV_LAYER_NAME, DOT_FILE,
                                      ENAS_RNN_LAYER_NAME, KERAS_FILE, METADATA_FILE,
                                      SAVED_MODEL_DIR, SPEC_FILE, WEIGHTS_FILE)
from nascell.enas_spec import ENASConvCellSpec, ENASMacroSpec, ENASRNNCellSpec
from nascell.spec import ConvSpec, RNNCellSpec

__all__ = ["export_spec", "export_best", "cell_endpoints", "enas_cell_endpoints",
           "conv_endpoints", "features_endpoints"]


# --- argument checking --------------------------------------------------------------------------


def _positive_int(name: str, value: Any, required: bool = True) -> Optional[int]:
    if value is None:
        if required:
            raise ValueError(f"{name} is required for a recurrent cell export; pass {name}=N "
                             f"(a positive integer)")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _image_shape(value: Any) -> tuple:
    if value is None:
        raise ValueError("input_shape is required for a conv export: the image (height, width, "
                         "channels), e.g. input_shape=(32, 32, 3)")
    if isinstance(value, str):
        value = [v for v in value.replace("x", ",").split(",") if v.strip()]
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (height, width, channels) integers, got "
                         f"{value!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be three positive integers (height, width, "
                         f"channels), e.g. (32, 32, 3); got {value!r}")
    return shape


def _reject_cell_sizes(what: str, units, input_dim, projection) -> None:
    """Image specs take input_shape; recurrent-cell sizes given with one are a caller's error."""
    for name, value in (("units", units), ("input_dim", input_dim), ("projection", projection)):
        if value is not None:
            raise ValueError(f"{name} is for recurrent cell specs; {what} takes "
                             f"input_shape=(height, width, channels)")


def _same(name: str, given: Any, found: Any, where: str) -> Any:
    if given is not None and found is not None and given != found:
        raise ValueError(f"{name}={given!r} contradicts the {where}, whose {name} is {found!r}; "
                         f"leave {name} out to use the layer's value")
    return found if found is not None else given


# --- the layer to export ------------------------------------------------------------------------


def _source_core(weights_from: Any) -> Optional[keras.layers.Layer]:
    """The core layer (a cell or an image net) whose weights to export, or None."""
    if weights_from is None:
        return None
    if isinstance(weights_from, keras.layers.Layer):
        return artifacts.find_core(weights_from)
    path = os.fspath(weights_from)
    if os.path.isdir(path):
        from nascell.export.loader import load
        return artifacts.core_of(load(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights_from={path!r} does not exist; pass an export folder, "
                                f"a .keras file, a weights.npz or a Keras layer")
    if path.endswith(".keras"):
        model = keras.saving.load_model(path, compile=False)
        return artifacts.find_core(model, first=True)
    if path.endswith(".npz"):
        return None  # read by `_prepare` once the layer is built.
    raise ValueError(f"weights_from={path!r}: unsupported file; pass an export folder, a "
                     f".keras file, a weights.npz written by an export, or a Keras layer")


def _prepare(spec: Any, units, input_dim, projection, input_shape, weights_from,
             layer_config) -> Dict[str, Any]:
    """Resolve the arguments into (spec, built layer with its weights, shapes, provenance)."""
    source = None
    if isinstance(spec, keras.layers.Layer):
        if weights_from is not None:
            raise ValueError("pass either a layer (its own weights are exported) or "
                             "weights_from, not both")
        source = artifacts.find_core(spec)
        spec = source.spec
        weights_desc = f"layer {source.name!r}"
    else:
        spec = artifacts.coerce_spec(spec)
        source = _source_core(weights_from)
        weights_desc = ("random initialization" if weights_from is None
                        else str(weights_from) if not isinstance(weights_from, keras.layers.Layer)
                        else f"layer {weights_from.name!r}")
    if source is not None and not source.built:
        raise ValueError(f"layer {source.name!r} is not built, so it has no weights yet; call it "
                         f"on data (or build it) before exporting")
    if source is not None and source.spec != spec:
        raise ValueError(f"weights_from holds a layer of another spec than the one exported "
                         f"(its spec: {source.spec.to_json()})")

    config = dict(layer_config or {})
    if isinstance(spec, RNNCellSpec):
        if input_shape is not None:
            raise ValueError("input_shape is for conv specs; a recurrent cell takes input_dim")
        if source is not None:
            units = _same("units", units, source.units, f"layer {source.name!r}")
            projection = _same("projection", projection, source.projection,
                               f"layer {source.name!r}")
            input_dim = _same("input_dim", input_dim, int(source.kernel.shape[0]),
                              f"layer {source.name!r}")
            config = {**artifacts.stored_config(source), **config}
        units = _positive_int("units", units)
        input_dim = _positive_int("input_dim", input_dim)
        projection = _positive_int("projection", projection, required=False)
        config.pop("units", None)
        config.pop("projection", None)
        layer = artifacts.build_cell_layer(spec, units, input_dim, projection, config)
        shapes = {"input_dim": input_dim, "units": units, "projection": projection,
                  "h_dim": projection or units, "state_size": [projection or units, units]}
    elif isinstance(spec, ConvSpec):
        _reject_cell_sizes("a conv spec", units, input_dim, projection)
        if source is not None:
            input_shape = _same("input_shape", None if input_shape is None
                                else _image_shape(input_shape),
                                tuple(source.plan.image_shape), f"layer {source.name!r}")
            config = {**artifacts.stored_config(source), **config}
        input_shape = _image_shape(input_shape)
        plan = plan_conv_shapes(spec, input_shape)
        layer = artifacts.build_conv_layer(spec, input_shape, config)
        shapes = {"input_shape": list(input_shape), "output_shape": list(plan.output_shape),
                  "layer_output_shapes": [list(s) for s in plan.output_shapes]}
    elif isinstance(spec, ENASRNNCellSpec):
        if input_shape is not None:
            raise ValueError("input_shape is for conv specs; a recurrent cell takes input_dim")
        if projection is not None:
            raise ValueError("projection is for tree cells (rnn_cell specs); an ENAS cell's "
                             "output is its state h, of size units: leave projection out")
        if source is not None:
            units = _same("units", units, source.units, f"layer {source.name!r}")
            input_dim = _same("input_dim", input_dim, int(source.kernel.shape[0]),
                              f"layer {source.name!r}")
            config = {**artifacts.stored_config(source), **config}
        units = _positive_int("units", units)
        input_dim = _positive_int("input_dim", input_dim)
        config.pop("units", None)
        layer = _build(artifacts.build_enas_cell_layer, spec, units, input_dim, config)
        shapes = {"input_dim": input_dim, "units": units, "h_dim": units,
                  "state_size": [units]}
    elif isinstance(spec, (ENASConvCellSpec, ENASMacroSpec)):
        _reject_cell_sizes(f"an {spec.kind} spec", units, input_dim, projection)
        if source is not None:
            input_shape = _same("input_shape", None if input_shape is None
                                else _image_shape(input_shape),
                                artifacts.image_shape_of(source), f"layer {source.name!r}")
            config = {**artifacts.stored_config(source), **config}
        input_shape = _image_shape(input_shape)
        layer = _build(artifacts.build_enas_image_layer, spec, input_shape, config)
        out = layer(np.zeros((1,) + input_shape, np.float32), training=False)
        shapes = {"input_shape": list(input_shape),
                  "output_shape": [int(d) for d in out.shape[1:]]}
    else:  # coerce_spec only returns the kinds above
        raise ValueError(f"cannot export a spec of kind {getattr(spec, 'kind', '?')!r}")

    core = artifacts.core_of(layer)
    if source is not None:
        artifacts.copy_weights(source, core, weights_desc)
    elif weights_from is not None:
        artifacts.assign_weights(core, artifacts.read_weights(os.fspath(weights_from)),
                                 os.fspath(weights_from))
    return {"spec": spec, "layer": layer, "core": core, "shapes": shapes,
            "weights_source": weights_desc}


def _build(builder, *args):
    """Call a layer builder; a bad ``layer_config`` key becomes a ValueError naming it."""
    try:
        return builder(*args)
    except (TypeError, ValueError) as e:  # e.g. an argument the layer does not take
        raise ValueError(f"layer_config does not fit this layer: {e}") from None


# --- endpoints ------------------------------------------------------------------------------------


def _tensor_spec(shape, name):
    return tf.TensorSpec(shape=tuple(shape), dtype=tf.float32, name=name)


def cell_endpoints(rnn: keras.layers.RNN) -> Dict[str, Any]:
    """``{name: (fn, input_signature)}`` for a recurrent layer built by `build_cell_layer`."""
    cell = rnn.cell
    input_dim = int(cell.kernel.shape[0])
    h_dim, units = cell.state_size

    def sequence(inputs):
        outputs, h, c = rnn(inputs, training=False)
        return {"outputs": outputs, "h": h, "c": c}

    def sequence_with_state(inputs, h, c):
        outputs, h, c = rnn(inputs, initial_state=[h, c], training=False)
        return {"outputs": outputs, "h": h, "c": c}

    def step(x, h, c):
        output, (h, c) = cell(x, [h, c], training=False)
        return {"output": output, "h": h, "c": c}

    seq = _tensor_spec((None, None, input_dim), "inputs")
    h = _tensor_spec((None, h_dim), "h")
    c = _tensor_spec((None, units), "c")
    return {
        "sequence": (sequence, [seq]),
        "sequence_with_state": (sequence_with_state, [seq, h, c]),
        "step": (step, [_tensor_spec((None, input_dim), "x"), h, c]),
    }


def enas_cell_endpoints(rnn: keras.layers.RNN) -> Dict[str, Any]:
    """``{name: (fn, input_signature)}`` for a layer built by `build_enas_cell_layer`: the
    endpoints of `cell_endpoints` with the single state ``h`` (no ``c``)."""
    cell = rnn.cell
    input_dim = int(cell.kernel.shape[0])
    units = int(cell.units)

    def sequence(inputs):
        outputs, h = rnn(inputs, training=False)
        return {"outputs": outputs, "h": h}

    def sequence_with_state(inputs, h):
        outputs, h = rnn(inputs, initial_state=[h], training=False)
        return {"outputs": outputs, "h": h}

    def step(x, h):
        output, (h,) = cell(x, [h], training=False)
        return {"output": output, "h": h}

    seq = _tensor_spec((None, None, input_dim), "inputs")
    h = _tensor_spec((None, units), "h")
    return {
        "sequence": (sequence, [seq]),
        "sequence_with_state": (sequence_with_state, [seq, h]),
        "step": (step, [_tensor_spec((None, input_dim), "x"), h]),
    }


def features_endpoints(layer: keras.layers.Layer, image_shape: Sequence[int]) -> Dict[str, Any]:
    """``{"features": (fn, input_signature)}`` for an image layer built for one image shape."""
    def features(images):
        return {"features": layer(images, training=False)}

    return {"features": (features,
                         [_tensor_spec((None,) + tuple(int(d) for d in image_shape),
                                       "images")])}


def conv_endpoints(convnet: ConvNet) -> Dict[str, Any]:
    """``{"features": (fn, input_signature)}`` for a `ConvNet` built for one image shape."""
    return features_endpoints(convnet, convnet.plan.image_shape)


def endpoints_for(spec, layer, shapes: Dict[str, Any]) -> Dict[str, Any]:
    """The SavedModel endpoints of an exported layer, by spec kind."""
    if isinstance(spec, RNNCellSpec):
        return cell_endpoints(layer)
    if isinstance(spec, ENASRNNCellSpec):
        return enas_cell_endpoints(layer)
    return features_endpoints(layer, shapes["input_shape"])


def _signature_doc(name: str, fn_and_sig, outputs) -> Dict[str, Any]:
    """An endpoint's positional inputs (in order), its named outputs, and how to call it."""
    _, sig = fn_and_sig
    names = [s.name for s in sig]
    return {"inputs": [{"name": s.name, "shape": list(s.shape.as_list()), "dtype": s.dtype.name}
                       for s in sig],
            "outputs": outputs,
            "call": f"tf.saved_model.load(path).{name}({', '.join(names)}) -> "
                    f"{{{', '.join(repr(k) for k in outputs)}}}"}


# --- the writing steps (each one file or folder, in the temporary folder) -------------------------


def _write_spec(tmp: str, spec) -> None:
    with open(os.path.join(tmp, SPEC_FILE), "w", encoding="utf-8") as f:
        f.write(spec.to_json(indent=2) + "\n")


def _write_weights(tmp: str, core) -> Dict[str, Any]:
    return artifacts.save_weights(core, os.path.join(tmp, WEIGHTS_FILE))


def _write_keras(tmp: str, layer, spec, shapes) -> None:
    if artifacts.is_recurrent(spec):
        inputs = keras.Input(shape=(None, int(shapes["input_dim"])), name="inputs")
        outputs = layer(inputs)
    else:
        inputs = keras.Input(shape=tuple(shapes["input_shape"]), name="images")
        outputs = layer(inputs)
    model = keras.Model(inputs, outputs, name="nascell_export")
    model.save(os.path.join(tmp, KERAS_FILE))


def _write_saved_model(tmp: str, layer, endpoints: Dict[str, Any]) -> None:
    archive = keras.export.ExportArchive()
    archive.track(layer)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(os.path.join(tmp, SAVED_MODEL_DIR), verbose=False)


def _write_diagram(tmp: str, spec, shapes) -> list:
    if isinstance(spec, RNNCellSpec):
        graph = diagram.cell_graph(spec)
    elif isinstance(spec, ENASRNNCellSpec):
        graph = diagram.enas_rnn_graph(spec)
    elif isinstance(spec, ENASConvCellSpec):
        graph = diagram.enas_conv_graph(spec, shapes["input_shape"], shapes["output_shape"])
    elif isinstance(spec, ENASMacroSpec):
        graph = diagram.enas_macro_graph(spec, shapes["input_shape"], shapes["output_shape"])
    else:
        graph = diagram.conv_graph(spec, shapes["input_shape"], shapes["layer_output_shapes"],
                                   shapes["output_shape"])
    return diagram.write_diagram(graph, tmp, stem=os.path.splitext(DOT_FILE)[0])


def _metadata(prepared: Dict[str, Any], endpoints: Dict[str, Any], weight_shapes,
              files, provenance: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    spec, core, shapes = prepared["spec"], prepared["core"], prepared["shapes"]
    if isinstance(spec, RNNCellSpec):
        h_dim, units = shapes["h_dim"], shapes["units"]
        state = {"h": [None, h_dim], "c": [None, units]}
        outs = {"sequence": {"outputs": [None, None, h_dim], **state},
                "sequence_with_state": {"outputs": [None, None, h_dim], **state},
                "step": {"output": [None, h_dim], **state}}
        layer_doc = {"class": "keras.layers.RNN(nascell.tree_cell.TreeCell)",
                     "name": CELL_LAYER_NAME, "return_sequences": True, "return_state": True,
                     "states": ["h", "c"],
                     "call": "outputs, h, c = layer(inputs[, initial_state=[h, c]])"}
    elif isinstance(spec, ENASRNNCellSpec):
        units = shapes["units"]
        state = {"h": [None, units]}
        outs = {"sequence": {"outputs": [None, None, units], **state},
                "sequence_with_state": {"outputs": [None, None, units], **state},
                "step": {"output": [None, units], **state}}
        layer_doc = {"class": "keras.layers.RNN(nascell.enas_cells.ENASRNNCell)",
                     "name": ENAS_RNN_LAYER_NAME, "return_sequences": True,
                     "return_state": True, "states": ["h"],
                     "call": "outputs, h = layer(inputs[, initial_state=[h]])",
                     "note": "an ENAS cell has one state, h (its output), unlike a tree cell's "
                             "[h, c]: endpoints take and return h only"}
    elif isinstance(spec, (ENASConvCellSpec, ENASMacroSpec)):
        outs = {"features": {"features": [None] + shapes["output_shape"]}}
        cls = "ENASMacroNet" if isinstance(spec, ENASMacroSpec) else "ENASConvNet"
        layer_doc = {"class": f"nascell.enas_cells.{cls}",
                     "name": artifacts.enas_image_layer_name(spec),
                     "call": "features = layer(images, training=...)"}
    else:
        outs = {"features": {"features": [None] + shapes["output_shape"]}}
        layer_doc = {"class": "nascell.conv.ConvNet", "name": CONV_LAYER_NAME,
                     "call": "features = layer(images, training=...)"}
    layer_doc["config"] = artifacts.stored_config(core)
    return {
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
                    "variables": weight_shapes},
        "endpoints": {name: _signature_doc(name, endpoints[name], outs[name])
                      for name in endpoints},
        "serving_default": next(iter(endpoints)),
        "files": sorted(files),
        "provenance": provenance or {},
    }


def _fsync_tree(root: str) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())
        _io.fsync_dir(folder)


def _umask() -> int:
    """The process umask, read without changing it (Linux), else the common 022."""
    try:
        with open("/proc/self/status", "r", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022



# --- the public entry points ----------------------------------------------------------------------


def export_spec(spec: Any, directory: str, units: Optional[int] = None,
                input_dim: Optional[int] = None, projection: Optional[int] = None,
                input_shape: Optional[Sequence[int]] = None, weights_from: Any = None,
                overwrite: bool = False, *, layer_config: Optional[Dict[str, Any]] = None,
                provenance: Optional[Dict[str, Any]] = None) -> str:
    """Write the export folder of a spec (or of a layer) to ``directory``; returns its path.

    Args:
        spec: an `RNNCellSpec` / `ConvSpec` / `ENASRNNCellSpec` / `ENASConvCellSpec` /
            `ENASMacroSpec`, its dict or JSON text, the path of a JSON file; or a Keras layer
            or model holding one `TreeCell`, `ENASRNNCell`, `ConvNet`, `ENASConvNet` or
            `ENASMacroNet` (e.g. what
            `nascell.export.load` returns), whose spec, sizes, configuration and weights are
            exported.
        directory: the folder to create.
        units, input_dim, projection: sizes of a recurrent cell (``units`` and ``input_dim``
            required unless they come from a layer; ``projection`` for tree cells only).
        input_shape: ``(height, width, channels)`` of a conv net's images (conv, ENAS micro
            and macro specs).
        weights_from: where the weights come from: None (a fresh initialization), another
            export folder, a ``.keras`` file or a Keras layer/model holding the same spec, or a
            ``weights.npz``.
        overwrite: replace an existing ``directory``; otherwise an existing one is an error.
        layer_config: extra constructor arguments of the core layer (e.g.
            ``{"use_bias": False}`` for a `TreeCell`, ``{"filters": 16, "num_cells": 2}`` for
            an `ENASConvNet`), stored with the export.
        provenance: free-form JSON facts stored in ``metadata.json`` (e.g. the run and trial).

    Raises:
        FileExistsError: ``directory`` exists and ``overwrite`` is False.
        SpecError / ValueError: a bad spec or argument; `WeightsMismatchError`: weights of
        other shapes. Nothing is written in any of these cases.
    """
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"{directory} already exists; pass overwrite=True (--overwrite) "
                              f"to replace it, or choose another folder")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise FileExistsError(f"{directory} exists and is not a folder; remove it first")

    prepared = _prepare(spec, units, input_dim, projection, input_shape, weights_from,
                        layer_config)
    spec, layer, core = prepared["spec"], prepared["layer"], prepared["core"]
    endpoints = endpoints_for(spec, layer, prepared["shapes"])

    parent, name = os.path.split(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{name}.tmp-")
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; an export is a normal folder
    try:
        _write_spec(tmp, spec)
        weight_shapes = _write_weights(tmp, core)
        _write_keras(tmp, layer, spec, prepared["shapes"])
        _write_saved_model(tmp, layer, endpoints)
        _write_diagram(tmp, spec, prepared["shapes"])
        files = [os.path.relpath(os.path.join(d, f), tmp)
                 for d, _, fs in os.walk(tmp) for f in fs] + [METADATA_FILE]
        meta = _metadata(prepared, endpoints, weight_shapes, files, provenance)
        with open(os.path.join(tmp, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
        _fsync_tree(tmp)
        _move_into_place(tmp, directory, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logging.info("exported %s spec (%d parameters) to %s", spec.kind, meta["parameters"],
                 directory)
    return directory


def _move_into_place(tmp: str, directory: str, overwrite: bool) -> None:
    """Rename the finished folder to ``directory``; an old one is moved aside, then deleted."""
    if not os.path.exists(directory):
        os.rename(tmp, directory)
        _io.fsync_dir(os.path.dirname(directory))
        return
    if not overwrite:
        raise FileExistsError(f"{directory} appeared while exporting; nothing was replaced")
    parent, name = os.path.split(directory)
    old = tempfile.mkdtemp(dir=parent, prefix=f".{name}.old-")
    os.rmdir(old)
    os.rename(directory, old)
    try:
        os.rename(tmp, directory)
    except BaseException:
        os.rename(old, directory)  # put the previous export back
        raise
    _io.fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)


# --- exporting from a run directory -----------------------------------------------------------


def export_best(run_dir: str, trial: Optional[int] = None, directory: Optional[str] = None,
                **kwargs) -> str:
    """Export the best trial of a search run (or trial ``trial``) into ``<run_dir>/export/``.

    The folder is ``<run_dir>/export/best`` (or ``.../trial_<id>``) unless ``directory`` is
    given. Sizes not passed in ``kwargs`` (``units``, ``input_dim``, ``input_shape``, ...) are
    read from the run's config where it records them (for an ENAS run, `run_enas`'s
    ``units``, and ``filters`` / ``num_cells`` of a micro net). The trial's trained weights are
    exported when the run saved them (for an ENAS recurrent run: the derived cell's subgraph
    of the last supernet checkpoint); otherwise, or with ``weights_from=False``, the export
    holds a fresh initialization (and says so in ``metadata.json``). Other keyword arguments
    go to `export_spec`.
    """
    from nascell.export import runs
    info = runs.trial_info(run_dir, trial)
    if directory is None:
        sub = "best" if trial is None else f"trial_{info['trial_id']}"
        directory = os.path.join(run_dir, "export", sub)
    for key, value in runs.export_sizes(run_dir, info["spec"], info).items():
        if key == "layer_config":  # the run's layer settings, under the caller's own
            kwargs["layer_config"] = {**value, **(kwargs.get("layer_config") or {})}
        elif kwargs.get(key) is None:
            kwargs[key] = value
    provenance = {"run_dir": os.path.abspath(run_dir), "trial_id": info["trial_id"],
                  "reward": info.get("reward"), "metrics": info.get("metrics", {})}
    if kwargs.get("weights_from") is False:  # asked for a fresh initialization
        kwargs["weights_from"] = None
    elif kwargs.get("weights_from") is None and info.get("weights") is not None:
        kwargs["weights_from"] = info["weights"]
    elif kwargs.get("weights_from") is None and info.get("enas_supernet") is not None:
        # An ENAS cell: its weights are the supernet's subgraph for it.
        if kwargs.get("units") is None:
            raise ValueError(f"units is required to export the derived cell of {run_dir}; "
                             f"the run config does not record it")
        kwargs["weights_from"] = runs.enas_cell_from_supernet(
            info["enas_supernet"], info["spec"], kwargs["units"])
        provenance["supernet"] = info["enas_supernet"]
    elif info.get("weights") is None:
        logging.info("trial %s of %s saved no weights; exporting a fresh initialization",
                     info["trial_id"], run_dir)
    provenance.update(kwargs.pop("provenance", None) or {})
    return export_spec(info["spec"], directory, provenance=provenance, **kwargs)
