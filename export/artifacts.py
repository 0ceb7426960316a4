"""What an export folder holds, and reading and writing its weights.

An export folder (written by `nascell.export.export_spec`, read by `nascell.export.load`)::

    spec.json          the spec, exactly as `spec.to_json()` writes it
    metadata.json      versions, shapes, the layer's configuration, weight shapes, endpoints
    weights.npz        every variable of the layer, keyed by its name inside the layer
    layer.keras        the layer in a small functional model (`keras.saving.load_model`)
    saved_model/       a TensorFlow SavedModel with named endpoints (TensorFlow alone runs it)
    architecture.dot   the architecture as Graphviz source (+ .png/.svg when `dot` exists)

The Python layer is rebuilt from ``spec.json`` + ``metadata.json`` by the spec's kind
(`nascell.kinds`: the same `build` the exporter used, so the two never disagree on names or
shapes) and filled from ``weights.npz``. Weight keys are chosen by the kind too: the variable's
path inside the core layer (``kernel``, ``recurrent_kernel``, ``bias`` for a tree cell;
``layer0_conv/kernel``, ``layer0_bn/gamma``, ... for a conv net; ``kernel``, ``node1_kernel``,
... for an ENAS cell), or for the ENAS networks, whose sublayers have no fixed names, the Python
attribute path (``stem_conv/kernel``, ``cells.0/pre0/conv/kernel``, ...). Keys never depend on
the name the layer had when it was saved. docs/export.md describes the folder in full.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

import keras
import numpy as np

from nascell import _io, kinds

SPEC_FILE = "spec.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "weights.npz"
KERAS_FILE = "layer.keras"
SAVED_MODEL_DIR = "saved_model"
DOT_FILE = "architecture.dot"

FORMAT = "nascell-export"
FORMAT_VERSION = 1


class ExportFormatError(ValueError):
    """An export folder (or one of its files) is missing a part, corrupt, or inconsistent."""


class WeightsMismatchError(ExportFormatError):
    """Weights that do not fit the layer the spec describes (a name or a shape differs)."""


# --- weights -----------------------------------------------------------------------------------


def weight_items(core: keras.layers.Layer) -> List[Tuple[str, Any]]:
    """``(key, variable)`` for every variable of the core layer, keyed as its kind says
    (`nascell.kinds.SpecKind.weight_items`)."""
    try:
        return kinds.kind_of_core(core).weight_items(core)
    except ValueError as e:  # not unique / unreachable: a guard the built-in kinds never hit
        raise ExportFormatError(str(e)) from None


def weight_arrays(core: keras.layers.Layer) -> Dict[str, np.ndarray]:
    """Every variable's value as a numpy array, keyed as in `weight_items`."""
    return {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in weight_items(core)}


def assign_weights(core: keras.layers.Layer, arrays: Dict[str, np.ndarray], source: str) -> None:
    """Set every variable of ``core`` from ``arrays``; all checked before any is assigned.

    Raises `WeightsMismatchError` naming the variable and both shapes (or the missing and
    unexpected names), with ``source`` saying where the weights came from.
    """
    items = weight_items(core)
    expected = {k for k, _ in items}
    missing = sorted(expected - set(arrays))
    unexpected = sorted(set(arrays) - expected)
    if missing or unexpected:
        raise WeightsMismatchError(
            f"weights in {source} do not match the spec's layer: missing {missing}, unexpected "
            f"{unexpected} (the layer has {sorted(expected)}). The weights were saved for "
            f"another spec or layer; export again from the matching spec.")
    for key, var in items:
        got, want = tuple(np.shape(arrays[key])), tuple(var.shape)
        if got != want:
            raise WeightsMismatchError(
                f"weights in {source} do not match the spec's layer: variable {key!r} has shape "
                f"{got} in the weights but {want} in the layer built from the spec and "
                f"metadata (units, projection, input size). Export again with matching sizes.")
    for key, var in items:
        var.assign(np.asarray(arrays[key], dtype=var.dtype))


def copy_weights(src_core: keras.layers.Layer, dst_core: keras.layers.Layer,
                 source: str) -> None:
    """Copy all variables from one core layer to another of the same architecture."""
    assign_weights(dst_core, weight_arrays(src_core), source)


def save_weights(core: keras.layers.Layer, path: str) -> Dict[str, List[int]]:
    """Write ``weights.npz``; returns ``{key: shape}`` for the metadata."""
    arrays = weight_arrays(core)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return {k: list(a.shape) for k, a in arrays.items()}


def read_weights(path: str) -> Dict[str, np.ndarray]:
    """The arrays of a ``weights.npz``; ExportFormatError if missing or unreadable."""
    if not os.path.isfile(path):
        raise ExportFormatError(
            f"weights file {path} is missing; the export folder is incomplete. Export the "
            f"spec again (nascell-export ... --overwrite).")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.array(data[k]) for k in data.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, ...
        raise ExportFormatError(f"weights file {path} is unreadable ({type(e).__name__}: {e}); "
                                f"export the spec again.") from None


def parameter_count(core: keras.layers.Layer) -> int:
    return int(sum(int(np.prod(v.shape)) for v in core.trainable_weights))


def read_json_file(path: str, what: str) -> Dict[str, Any]:
    """A JSON object from ``path``; FileNotFoundError / ExportFormatError name the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path} is missing; the export folder is incomplete or "
                                f"not an export folder. Export the spec again.")
    try:
        data = _io.read_json_or_none(path)
    except (ValueError, UnicodeDecodeError) as e:
        raise ExportFormatError(f"{what} {path} is corrupt ({e}); export the spec again, or "
                                f"restore the file.") from None
    if not isinstance(data, dict):
        raise ExportFormatError(f"{what} {path} is corrupt: it must hold a JSON object. Received: "
                                f"a JSON {type(data).__name__}")
    return data
