"""Load an export folder back as a Python Keras layer: trainable, fine-tunable, re-exportable.

    layer = nascell.export.load("exports/nas")
    outputs, h, c = layer(inputs)                    # a nascell.RNN(TreeCell(...))
    layer = nascell.export.load("exports/nas", return_state=False)   # outputs only
    layer = nascell.export.load("exports/enas_cell")
    outputs, h = layer(inputs)                       # RNN(ENASRNNCell(...)): one state, h

The layer is rebuilt from ``spec.json`` and ``metadata.json`` and its variables are set from
``weights.npz``; it is not a `keras.layers.TFSMLayer`, so any optimizer (Adam included) trains
it and `nascell.export.export_spec` exports it again. To run the SavedModel without nascell,
use ``tf.saved_model.load(path + "/saved_model")`` instead.

Every problem is reported before a layer is returned, naming the file and what is wrong:
a missing folder or file (FileNotFoundError), a corrupt file (`ExportFormatError`), a spec
with a bad field (`SpecError`, with the spec file's path), or weights that do not fit the spec
(`WeightsMismatchError`, naming the variable and both shapes).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import keras

from nascell import kinds
from nascell.export import artifacts
from nascell.export.artifacts import (
    METADATA_FILE,
    SPEC_FILE,
    WEIGHTS_FILE,
    ExportFormatError,
    WeightsMismatchError,
)
from nascell.spec import SpecError, spec_from_dict

__all__ = ["load", "load_spec", "load_metadata", "ExportFormatError", "WeightsMismatchError"]


def _check_folder(path: str) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no export folder at {path}; write one with "
                                f"nascell.export.export_spec(...) or nascell-export")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} is a file, not an export folder (pass the folder that "
                                f"holds {SPEC_FILE}, {METADATA_FILE} and {WEIGHTS_FILE})")
    return path


def load_spec(path: str):
    """The spec of an export folder (``spec.json``), validated."""
    path = _check_folder(path)
    spec_path = os.path.join(path, SPEC_FILE)
    data = artifacts.read_json_file(spec_path, "spec file")
    try:
        return spec_from_dict(data)
    except SpecError as e:
        raise SpecError(f"{spec_path}: {e}") from None


def load_metadata(path: str) -> Dict[str, Any]:
    """The ``metadata.json`` of an export folder, checked to be one this nascell can read."""
    path = _check_folder(path)
    meta_path = os.path.join(path, METADATA_FILE)
    meta = artifacts.read_json_file(meta_path, "metadata file")
    if meta.get("format") != artifacts.FORMAT:
        raise ExportFormatError(f"{meta_path} is not nascell export metadata (format "
                                f"{meta.get('format')!r}, expected {artifacts.FORMAT!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > artifacts.FORMAT_VERSION:
        raise ExportFormatError(f"{meta_path} has format version {version!r}; this nascell "
                                f"reads versions up to {artifacts.FORMAT_VERSION}. Upgrade "
                                f"nascell or export again.")
    for key in ("kind", "shapes", "layer"):
        if not isinstance(meta.get(key), (str, dict)):
            raise ExportFormatError(f"{meta_path} is corrupt: field {key!r} is missing")
    return meta


def load(path: str, name: Optional[str] = None, **rnn_kwargs) -> keras.layers.Layer:
    """Rebuild the exported layer with its weights.

    Args:
        path: an export folder.
        name: the layer's name (default: the kind's, e.g. ``tree_rnn`` for tree cells,
            ``enas_rnn`` for ENAS cells, ``convnet`` / ``enas_convnet`` / ``enas_macronet``
            for image nets).
        **rnn_kwargs: for cells, `nascell.RNN` arguments overriding the exported
            wrapper's (``return_sequences=True, return_state=True``), e.g.
            ``return_state=False`` for a drop-in replacement of ``RNN(LSTMCell(...))``.

    Returns:
        The layer its kind builds (`nascell.kinds`): for cells a built `nascell.RNN` (the
        fast path of ``keras.layers.RNN``) around a `TreeCell` (returning ``outputs, h, c``)
        or an `ENASRNNCell` (returning ``outputs, h``), input ``(batch, time, input_dim)``;
        for image specs a built `ConvNet`, `ENASConvNet` or `ENASMacroNet` for the exported
        image shape.
    """
    path = _check_folder(path)
    spec = load_spec(path)
    meta = load_metadata(path)
    meta_path = os.path.join(path, METADATA_FILE)
    if meta["kind"] != spec.kind:
        raise ExportFormatError(f"{meta_path} describes a {meta['kind']!r} export but "
                                f"{os.path.join(path, SPEC_FILE)} holds a {spec.kind!r} spec; "
                                f"the folder mixes two exports. Export again.")
    kind = kinds.find_kind(spec)
    if kind is None:
        raise ExportFormatError(f"{path}: no registered kind builds a {spec.kind!r} spec "
                                f"(known: {kinds.available_kinds()})")
    # Read (and check) the weights before building anything.
    weights_path = os.path.join(path, WEIGHTS_FILE)
    arrays = artifacts.read_weights(weights_path)
    config = dict(meta["layer"].get("config") or {})
    shapes = meta["shapes"]
    for key in kind.size_arguments:
        if key != "projection" and shapes.get(key) is None:
            raise ExportFormatError(f"{meta_path} is corrupt: shapes.{key} is missing")
    try:
        layer = kind.build(spec, shapes, config, name=name, **rnn_kwargs)
    except TypeError:
        raise
    except (ValueError, KeyError) as e:
        raise ExportFormatError(f"{meta_path} does not describe a layer this spec can build "
                                f"({type(e).__name__}: {e}); export again.") from None
    artifacts.assign_weights(kind.core_of(layer), arrays, weights_path)
    return layer
