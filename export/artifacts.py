"""What an export folder holds, and the layer every part of it is made from.

An export folder (written by `nascell.export.export_spec`, read by `nascell.export.load`)::

    spec.json          the spec, exactly as `spec.to_json()` writes it
    metadata.json      versions, shapes, the layer's configuration, weight shapes, endpoints
    weights.npz        every variable of the layer, keyed by its name inside the layer
    layer.keras        the layer in a small functional model (`keras.saving.load_model`)
    saved_model/       a TensorFlow SavedModel with named endpoints (TensorFlow alone runs it)
    architecture.dot   the architecture as Graphviz source (+ .png/.svg when `dot` exists)

The Python layer is rebuilt from ``spec.json`` + ``metadata.json`` and filled from
``weights.npz``; this module holds the code both the exporter and the loader use for that, so
the two can never disagree on names or shapes:

* a recurrent spec becomes ``keras.layers.RNN(TreeCell(spec, units, ...),
  return_sequences=True, return_state=True)`` named ``tree_rnn``; calling it on
  ``(batch, time, input_dim)`` returns ``outputs, h, c``;
* a conv spec becomes a `ConvNet` named ``convnet``, built for one image shape;
* an ENAS recurrent cell spec (``enas_rnn_cell``) becomes ``keras.layers.RNN(ENASRNNCell(spec,
  units, ...), return_sequences=True, return_state=True)`` named ``enas_rnn``; the cell has a
  single state ``[h]`` (no memory ``c``), so calling it returns ``outputs, h``;
* an ENAS micro (``enas_conv_cell``) or macro (``enas_macro``) spec becomes an `ENASConvNet` /
  `ENASMacroNet` named ``enas_convnet`` / ``enas_macronet``, built for one image shape and,
  unless ``layer_config`` says otherwise, without its classifier (``include_top=False``: the
  globally pooled features).

Weight keys are the variable's path inside the core layer (the `TreeCell` or the `ConvNet`):
``kernel``, ``recurrent_kernel``, ``bias``, ``projection_kernel`` for a cell;
``layer0_conv/kernel``, ``layer0_bn/gamma``, ... for a conv net; ``kernel``,
``recurrent_kernel``, ``node1_kernel``, ... for an ENAS cell. The sublayers of the ENAS conv
nets have no fixed names (Keras numbers them per session), so their keys are the Python
attribute path instead: ``stem_conv/kernel``, ``cells.0/pre0/conv/kernel``,
``layer_ops.3/bn/moving_mean``, ... They do not depend on the name the layer had when it was
saved.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np

from nascell.conv import ConvNet
from nascell.enas_cells import ENASConvNet, ENASMacroNet, ENASRNNCell
from nascell.enas_spec import ENASConvCellSpec, ENASMacroSpec, ENASRNNCellSpec
from nascell.spec import ConvSpec, RNNCellSpec, spec_from_dict, spec_from_json
from nascell.tree_cell import TreeCell

SPEC_FILE = "spec.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "weights.npz"
KERAS_FILE = "layer.keras"
SAVED_MODEL_DIR = "saved_model"
DOT_FILE = "architecture.dot"

FORMAT = "nascell-export"
FORMAT_VERSION = 1

CELL_LAYER_NAME = "tree_rnn"
CELL_NAME = "tree_cell"
CONV_LAYER_NAME = "convnet"
ENAS_RNN_LAYER_NAME = "enas_rnn"
ENAS_CELL_NAME = "enas_rnn_cell"
ENAS_CONV_LAYER_NAME = "enas_convnet"
ENAS_MACRO_LAYER_NAME = "enas_macronet"

# Config keys that describe the Python object, not the architecture; never stored.
_NOT_STORED = ("spec", "name", "trainable", "dtype")

AnySpec = Union[RNNCellSpec, ConvSpec, ENASRNNCellSpec, ENASConvCellSpec, ENASMacroSpec]
SPEC_TYPES = (RNNCellSpec, ConvSpec, ENASRNNCellSpec, ENASConvCellSpec, ENASMacroSpec)
# Recurrent specs (exported as an RNN layer with sequence / step endpoints) and image specs
# (exported as a feature extractor with a features endpoint).
RECURRENT_SPECS = (RNNCellSpec, ENASRNNCellSpec)
IMAGE_SPECS = (ConvSpec, ENASConvCellSpec, ENASMacroSpec)
ENAS_IMAGE_SPECS = (ENASConvCellSpec, ENASMacroSpec)
# The layers an export is made of (a cell, or a whole image network).
CORE_TYPES = (TreeCell, ConvNet, ENASRNNCell, ENASConvNet, ENASMacroNet)
CELL_TYPES = (TreeCell, ENASRNNCell)


def is_recurrent(spec: Any) -> bool:
    """Whether ``spec`` describes a recurrent cell (exported as a ``keras.layers.RNN``)."""
    return isinstance(spec, RECURRENT_SPECS)


def state_names(spec: Any) -> List[str]:
    """The recurrent state of a cell spec's layer, in order: ``["h", "c"]`` for a tree cell
    (output and memory), ``["h"]`` for an ENAS cell (its output is its only state)."""
    return ["h"] if isinstance(spec, ENASRNNCellSpec) else ["h", "c"]


class ExportFormatError(ValueError):
    """An export folder (or one of its files) is missing a part, corrupt, or inconsistent."""


class WeightsMismatchError(ExportFormatError):
    """Weights that do not fit the layer the spec describes (a name or a shape differs)."""


# --- specs ------------------------------------------------------------------------------------


def coerce_spec(spec: Any) -> AnySpec:
    """A spec object from a spec, its dict, its JSON text, or the path of a JSON file.

    Raises `SpecError` (a field is wrong) or ValueError (not a spec at all).
    """
    if isinstance(spec, SPEC_TYPES):
        return spec
    if isinstance(spec, dict):
        return spec_from_dict(spec)
    if isinstance(spec, (str, bytes, bytearray, os.PathLike)):
        text = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
        if isinstance(text, str) and not text.lstrip().startswith("{"):
            if not os.path.isfile(text):
                raise FileNotFoundError(f"spec {text!r} is neither JSON text nor an existing "
                                        f"JSON file")
            with open(text, "r", encoding="utf-8") as f:
                text = f.read()
        return spec_from_json(text)
    raise ValueError(f"expected a spec (RNNCellSpec, ConvSpec, ENASRNNCellSpec, "
                     f"ENASConvCellSpec, ENASMacroSpec), its dict, its JSON text or a "
                     f"JSON file path; got {type(spec).__name__}")


# --- building the layer ---------------------------------------------------------------------


def _layer_config(config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    return {k: v for k, v in dict(config or {}).items() if k not in _NOT_STORED}


def stored_config(core: keras.layers.Layer) -> Dict[str, Any]:
    """The core layer's constructor arguments, without the spec and the Python object's name."""
    return _layer_config(core.get_config())


def build_cell_layer(spec: RNNCellSpec, units: int, input_dim: int,
                     projection: Optional[int] = None, cell_config: Optional[Dict] = None,
                     name: str = CELL_LAYER_NAME, return_sequences: bool = True,
                     return_state: bool = True, **rnn_kwargs) -> keras.layers.RNN:
    """``RNN(TreeCell(spec, units, projection, **cell_config))``, built for ``input_dim``."""
    config = _layer_config(cell_config)
    config["units"] = units
    config["projection"] = projection
    cell = TreeCell(spec, name=CELL_NAME, **config)
    rnn = keras.layers.RNN(cell, return_sequences=return_sequences, return_state=return_state,
                           name=name, **rnn_kwargs)
    rnn.build((None, None, int(input_dim)))
    return rnn


def build_conv_layer(spec: ConvSpec, input_shape: Sequence[int],
                     conv_config: Optional[Dict] = None,
                     name: str = CONV_LAYER_NAME) -> ConvNet:
    """``ConvNet(spec, **conv_config)``, built for images of ``input_shape`` (h, w, c)."""
    layer = ConvNet(spec, name=name, **_layer_config(conv_config))
    layer.build((None,) + tuple(int(d) for d in input_shape))
    return layer


def build_enas_cell_layer(spec: ENASRNNCellSpec, units: int, input_dim: int,
                          cell_config: Optional[Dict] = None, name: str = ENAS_RNN_LAYER_NAME,
                          return_sequences: bool = True, return_state: bool = True,
                          **rnn_kwargs) -> keras.layers.RNN:
    """``RNN(ENASRNNCell(spec, units, **cell_config))``, built for ``input_dim``.

    The cell's state is ``[h]`` alone, so with ``return_state=True`` the layer returns
    ``outputs, h`` (a tree cell's returns ``outputs, h, c``).
    """
    config = _layer_config(cell_config)
    config["units"] = units
    cell = ENASRNNCell(spec, name=ENAS_CELL_NAME, **config)
    rnn = keras.layers.RNN(cell, return_sequences=return_sequences, return_state=return_state,
                           name=name, **rnn_kwargs)
    rnn.build((None, None, int(input_dim)))
    return rnn


def enas_image_layer_name(spec: Any) -> str:
    return ENAS_MACRO_LAYER_NAME if isinstance(spec, ENASMacroSpec) else ENAS_CONV_LAYER_NAME


def build_enas_image_layer(spec: Union[ENASConvCellSpec, ENASMacroSpec],
                           input_shape: Sequence[int], config: Optional[Dict] = None,
                           name: Optional[str] = None) -> keras.layers.Layer:
    """``ENASConvNet`` / ``ENASMacroNet(spec, include_top=False, **config)``, built for images
    of ``input_shape`` (h, w, c). ``config`` may set ``include_top=True`` (and
    ``num_classes``) to keep the classifier; the default exports the pooled features."""
    config = {"include_top": False, **_layer_config(config)}
    cls = ENASMacroNet if isinstance(spec, ENASMacroSpec) else ENASConvNet
    layer = cls(spec, name=name or enas_image_layer_name(spec), **config)
    layer.build((None,) + tuple(int(d) for d in input_shape))
    return layer


def image_shape_of(core: keras.layers.Layer) -> Tuple[int, ...]:
    """The (height, width, channels) an image core layer was built for."""
    if isinstance(core, ConvNet):
        return tuple(int(d) for d in core.plan.image_shape)
    shape = (core.get_build_config() or {}).get("input_shape")
    if not shape:
        raise ValueError(f"layer {core.name!r} is not built, so its image shape is unknown; "
                         f"call it on images (or build it) before exporting")
    return tuple(int(d) for d in shape[1:])


# --- finding the core layer inside whatever the user hands over -------------------------------


def find_core(obj: Any, first: bool = False) -> keras.layers.Layer:
    """The `TreeCell` or `ConvNet` inside a cell, an RNN layer, a layer or a model.

    Exactly one must be found (or, with ``first=True``, at least one: the first is taken, e.g.
    the bottom layer of a stacked language model); otherwise ValueError says what was found.
    """
    if isinstance(obj, CORE_TYPES):
        return obj
    if isinstance(obj, keras.layers.RNN) and isinstance(obj.cell, CELL_TYPES):
        return obj.cell
    if not isinstance(obj, keras.layers.Layer):
        raise ValueError(f"expected a Keras layer or model holding a TreeCell, an ENASRNNCell, "
                         f"a ConvNet, an ENASConvNet or an ENASMacroNet; got "
                         f"{type(obj).__name__}")
    found, seen = [], set()
    for layer in obj._flatten_layers(include_self=True, recursive=True):
        candidates = [layer]
        if isinstance(layer, keras.layers.RNN):
            candidates.append(layer.cell)
        for c in candidates:
            if isinstance(c, CORE_TYPES) and id(c) not in seen:
                seen.add(id(c))
                found.append(c)
    if found and first:
        return found[0]
    if len(found) != 1:
        names = [f"{type(c).__name__} {c.name!r}" for c in found] or ["none"]
        raise ValueError(f"expected exactly one exportable layer (TreeCell, ENASRNNCell, "
                         f"ConvNet, ENASConvNet, ENASMacroNet) inside {type(obj).__name__} "
                         f"{obj.name!r}; found {', '.join(names)}. Pass that layer itself.")
    return found[0]


def core_of(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The core of a layer that `build_cell_layer` / `build_conv_layer` made."""
    return layer.cell if isinstance(layer, keras.layers.RNN) else layer


# --- weights -----------------------------------------------------------------------------------


def _key_depth(core: keras.layers.Layer) -> int:
    # A cell's variables sit directly on it; a ConvNet's on its named sublayers.
    return 2 if isinstance(core, ConvNet) else 1


def _own_variables(layer: keras.layers.Layer) -> List[Any]:
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def _attribute_keys(core: keras.layers.Layer) -> Dict[int, str]:
    """``{id(variable): key}`` with keys made of Python attribute names (list items as
    ``name.i``) down to the layer that owns the variable, then the variable's own name."""
    keys: Dict[int, str] = {}
    seen = set()

    def visit(layer, prefix):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        for v in _own_variables(layer):
            keys.setdefault(id(v), f"{prefix}{v.name}")
        for attr, value in vars(layer).items():
            if not attr.startswith("_"):
                visit_value(value, f"{prefix}{attr}")

    def visit_value(value, path):
        if isinstance(value, keras.layers.Layer):
            visit(value, path + "/")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                visit_value(item, f"{path}.{i}")

    visit(core, "")
    return keys


def weight_items(core: keras.layers.Layer) -> List[Tuple[str, Any]]:
    """``(key, variable)`` for every variable of the core layer, in the layer's order."""
    if isinstance(core, (ENASConvNet, ENASMacroNet)):
        keys = _attribute_keys(core)
        missing = [v.path for v in core.weights if id(v) not in keys]
        if missing:  # a guard: every variable of these nets sits on an attribute.
            raise ExportFormatError(f"variables of {core.name!r} not reachable by attribute: "
                                    f"{missing}")
        items = [(keys[id(v)], v) for v in core.weights]
    else:
        depth = _key_depth(core)
        items = [("/".join(v.path.split("/")[-depth:]), v) for v in core.weights]
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):  # a guard; the builders above never produce this.
        raise ExportFormatError(f"variable names inside {core.name!r} are not unique: {keys}")
    return items


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
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExportFormatError(f"{what} {path} is corrupt ({e}); export the spec again, or "
                                f"restore the file.") from None
    if not isinstance(data, dict):
        raise ExportFormatError(f"{what} {path} is corrupt: expected a JSON object, got "
                                f"{type(data).__name__}")
    return data
