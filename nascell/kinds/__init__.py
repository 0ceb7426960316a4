"""The registry of spec kinds: everything nascell knows about one kind of architecture, in one
place.

    from nascell import kinds
    kind = kinds.kind_of(spec)                      # or kinds.get_kind("rnn_cell")
    shapes = kind.shapes(spec, {"units": 64, "input_dim": 32})
    layer = kind.build(spec, shapes)                # a built Keras layer

A `SpecKind` entry says, for its kind: the spec class (read from JSON by `nascell.spec`), the
size arguments its layer takes and the shapes an export records, how to build the layer and
find its core (the cell or network that holds the weights), the SavedModel endpoints with
their outputs, the metadata's description of the layer, the diagram, how its weights are keyed
in ``weights.npz``, the sizes a search run trained it at, and the evaluator that trains a child
of the kind from scratch. The exporter, the loader, the search and the binaries look the kind
up here instead of testing types, so a new kind is one subclass and one `register_kind` call
(docs/kinds.md walks through one).

Built in: ``rnn_cell`` and ``enas_rnn_cell`` (`nascell.kinds.recurrent`), ``conv``,
``enas_conv_cell`` and ``enas_macro`` (`nascell.kinds.image`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras

from nascell.spec import SPEC_KINDS, register_spec_kind

# Config keys that describe the Python object, not the architecture; never stored.
NOT_STORED = ("spec", "name", "trainable", "dtype")


class SpecKind:
    """What nascell knows about one spec kind. Subclass it (or `RecurrentKind` / `ImageKind`)
    and `register_kind` an instance; every method has a default but `shapes`, `build`,
    `endpoints`, `endpoint_outputs` and `model_input`.

    Class attributes:
      name: the spec's ``kind`` string.
      spec_class: the spec dataclass (registered for JSON by `register_kind`).
      core_classes: Keras layer classes that are this kind's core (the layer whose variables
        an export holds: a cell, not the RNN around it; a network).
      layer_name: the default name of the layer `build` returns.
      size_arguments: the `export_spec` keyword arguments that size the layer.
      layer_options: constructor options of the core layer that tools may set (flags).
      modality: what the layer reads: "sequence" (a recurrent cell) or "image".
      evaluator: the search evaluator (registry name) that trains a child of this kind from
        scratch (nascell-search's default evaluator and nascell-train's trainer), or None.
    """

    name: str = ""
    spec_class: Optional[type] = None
    core_classes: Tuple[type, ...] = ()
    layer_name: str = ""
    size_arguments: Tuple[str, ...] = ()
    layer_options: Tuple[str, ...] = ()
    modality: str = ""
    evaluator: Optional[str] = None

    # --- sizes -------------------------------------------------------------------------------

    def shapes(self, spec: Any, sizes: Dict[str, Any],
               source: Optional[keras.layers.Layer] = None) -> Dict[str, Any]:
        """Check the size arguments (``None`` values mean "not given") and return the shapes
        an export records in ``metadata.json``. ``source``: a built core layer whose sizes are
        used (and must agree with any given). Raises ValueError naming the argument."""
        raise NotImplementedError

    def complete_shapes(self, spec: Any, layer: keras.layers.Layer,
                        shapes: Dict[str, Any]) -> Dict[str, Any]:
        """Shapes that need the built layer (e.g. an image net's output); default: as given."""
        return shapes

    def sizes_from_run(self, config: Dict[str, Any],
                       metrics: Dict[str, Any]) -> Dict[str, Any]:
        """`export_spec` keyword arguments for a trial of a search run, read from the run's
        ``config.json`` and the trial's metrics (what the evaluator recorded); may be {}."""
        return {}

    # --- the layer ---------------------------------------------------------------------------

    def build(self, spec: Any, shapes: Dict[str, Any], config: Optional[Dict] = None,
              name: Optional[str] = None, **options: Any) -> keras.layers.Layer:
        """The layer of ``spec`` (built, so it has its variables) for ``shapes``; ``config``
        holds extra constructor arguments of the core layer."""
        raise NotImplementedError

    def core_of(self, layer: keras.layers.Layer) -> keras.layers.Layer:
        """The core layer inside what `build` returned."""
        return layer

    def stored_config(self, core: keras.layers.Layer) -> Dict[str, Any]:
        """The core layer's constructor arguments, without the spec and the object's name."""
        return clean_config(core.get_config())

    def model_input(self, shapes: Dict[str, Any]):
        """The ``keras.Input`` of the small functional model saved as ``layer.keras``."""
        raise NotImplementedError

    # --- export ------------------------------------------------------------------------------

    def endpoints(self, layer: keras.layers.Layer,
                  shapes: Dict[str, Any]) -> Dict[str, Tuple[Any, list]]:
        """The SavedModel endpoints: ``{name: (function, input_signature)}``, the first being
        the serving default. Each function returns a dict of named tensors."""
        raise NotImplementedError

    def endpoint_outputs(self, shapes: Dict[str, Any]) -> Dict[str, Dict[str, list]]:
        """``{endpoint: {output: shape}}`` for ``metadata.json``."""
        raise NotImplementedError

    def layer_doc(self, shapes: Dict[str, Any]) -> Dict[str, Any]:
        """The metadata's description of the layer (class, name, how to call it)."""
        return {"class": ", ".join(f"{c.__module__}.{c.__name__}" for c in self.core_classes),
                "name": self.layer_name}

    def picture(self, spec: Any, shapes: Dict[str, Any]):
        """The architecture as a `nascell.pictures.Picture`, built once: an export writes it as
        Graphviz source and draws it to PNG and SVG, with ``dot`` where it is installed and
        with matplotlib otherwise (None: no picture)."""
        return None

    def diagram(self, spec: Any, shapes: Dict[str, Any]):
        """The architecture as a ``graphviz.Digraph``. Default: the Graphviz rendering of
        `picture` (None when there is none); a kind without a `picture` may return its own
        graph (the export then writes the ``.dot`` and renders it where ``dot`` exists)."""
        picture = self.picture(spec, shapes)
        if picture is None:
            return None
        from nascell.pictures.dot import to_dot
        return to_dot(picture)

    def weight_items(self, core: keras.layers.Layer) -> List[Tuple[str, Any]]:
        """``(key, variable)`` for every variable of the core layer: the keys of
        ``weights.npz``. Default: the variable's path inside the core layer."""
        return path_items(core, depth=1)


_KINDS: Dict[str, SpecKind] = {}


def register_kind(kind: SpecKind) -> SpecKind:
    """Make ``kind`` known to export, the loader and the binaries (and its spec class to
    `nascell.spec.spec_from_json`). Registering a name again replaces its entry."""
    if not kind.name or kind.spec_class is None:
        raise ValueError("Argument `kind` must set `name` and `spec_class`. Received: "
                         f"kind={kind!r}")
    if getattr(kind.spec_class, "kind", None) != kind.name:
        raise ValueError(f"Argument `kind` must name its spec class's kind: {kind.name!r} != "
                         f"{getattr(kind.spec_class, 'kind', None)!r}")
    if SPEC_KINDS.get(kind.name) is not kind.spec_class:
        register_spec_kind(kind.spec_class)
    _KINDS[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Forget a kind (its spec class stays readable from JSON); for tests and plugins."""
    _KINDS.pop(name, None)


def available_kinds() -> List[str]:
    return sorted(_KINDS)


def get_kind(name: str) -> SpecKind:
    """The entry of kind ``name``; ValueError naming the known kinds otherwise."""
    if name not in _KINDS:
        raise ValueError(f"Argument `kind` must be a registered spec kind, one of "
                         f"{available_kinds()}. Received: kind={name!r}")
    return _KINDS[name]


def kind_of(spec: Any) -> SpecKind:
    """The entry of a spec object's kind; ValueError for anything that is not one."""
    name = getattr(spec, "kind", None)
    if not isinstance(name, str) or name not in _KINDS or not isinstance(
            spec, _KINDS[name].spec_class):
        raise ValueError(f"Argument `spec` must be a spec of a registered kind "
                         f"({', '.join(available_kinds())}). Received: spec={spec!r}")
    return _KINDS[name]


def find_kind(spec: Any) -> Optional[SpecKind]:
    """`kind_of`, or None for something that is not a spec of a registered kind (e.g. the
    architecture string of a tabular benchmark)."""
    try:
        return kind_of(spec)
    except ValueError:
        return None


def kind_of_core(core: keras.layers.Layer) -> SpecKind:
    """The entry whose core classes include ``core``'s class."""
    for kind in _KINDS.values():
        if isinstance(core, kind.core_classes):
            return kind
    raise ValueError(f"{type(core).__name__} {getattr(core, 'name', '')!r} is not the core "
                     f"layer of any registered spec kind")


def core_classes() -> Tuple[type, ...]:
    return tuple(c for kind in _KINDS.values() for c in kind.core_classes)


def find_core(obj: Any, first: bool = False) -> keras.layers.Layer:
    """The core layer (a cell or a network of a registered kind) inside a cell, an RNN layer,
    a layer or a model.

    Exactly one must be found (or, with ``first=True``, at least one: the first is taken, e.g.
    the bottom layer of a stacked language model); otherwise ValueError says what was found.
    """
    cores = core_classes()
    names = ", ".join(c.__name__ for c in cores)
    if isinstance(obj, cores):
        return obj
    if isinstance(obj, keras.layers.RNN) and isinstance(obj.cell, cores):
        return obj.cell
    if not isinstance(obj, keras.layers.Layer):
        raise ValueError(f"Argument `obj` must be a Keras layer or model holding one of {names}. "
                         f"Received: obj of type {type(obj).__name__}")
    found, seen = [], set()
    for layer in obj._flatten_layers(include_self=True, recursive=True):
        candidates = [layer] + ([layer.cell] if isinstance(layer, keras.layers.RNN) else [])
        for c in candidates:
            if isinstance(c, cores) and id(c) not in seen:
                seen.add(id(c))
                found.append(c)
    if found and first:
        return found[0]
    if len(found) != 1:
        listed = [f"{type(c).__name__} {c.name!r}" for c in found] or ["none"]
        raise ValueError(f"expected exactly one exportable layer ({names}) inside "
                         f"{type(obj).__name__} {obj.name!r}; found {', '.join(listed)}. "
                         "Pass that layer itself.")
    return found[0]


# --- helpers the built-in kinds share --------------------------------------------------------


def clean_config(config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """A layer config without the keys that describe the Python object (`NOT_STORED`)."""
    return {k: v for k, v in dict(config or {}).items() if k not in NOT_STORED}


def path_items(core: keras.layers.Layer, depth: int) -> List[Tuple[str, Any]]:
    """``(key, variable)`` keyed by the last ``depth`` parts of each variable's path (a
    cell's variables sit on it: depth 1; a `ConvNet`'s on named sublayers: depth 2)."""
    items = [("/".join(v.path.split("/")[-depth:]), v) for v in core.weights]
    _check_unique(core, items)
    return items


def attribute_items(core: keras.layers.Layer) -> List[Tuple[str, Any]]:
    """``(key, variable)`` keyed by Python attribute names (list items as ``name.i``) down to
    the layer that owns the variable, then its name: for networks whose sublayers have no
    fixed names (Keras numbers them per session)."""
    keys: Dict[int, str] = {}
    seen = set()

    def visit(layer, prefix):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        for v in list(layer._trainable_variables) + list(layer._non_trainable_variables):
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
    missing = [v.path for v in core.weights if id(v) not in keys]
    if missing:  # a guard: every variable of the built-in nets sits on an attribute
        raise ValueError(f"variables of {core.name!r} not reachable by attribute: {missing}")
    items = [(keys[id(v)], v) for v in core.weights]
    _check_unique(core, items)
    return items


def _check_unique(core, items: Sequence[Tuple[str, Any]]) -> None:
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):  # a guard; the built-in layers never produce this
        raise ValueError(f"variable names inside {core.name!r} are not unique: {keys}")


def find_config_value(config: Dict[str, Any], keys: Sequence[str]) -> Optional[Any]:
    """The first value of one of ``keys`` in a run config: the evaluator's settings first
    (they describe the trained network), then anywhere else, depth first."""
    evaluator = config.get("evaluator") if isinstance(config, dict) else None
    for scope in (evaluator, config):
        found = _find_key(scope, tuple(keys))
        if found is not None:
            return found
    return None


def _find_key(obj: Any, keys: Tuple[str, ...]) -> Optional[Any]:
    if isinstance(obj, dict):
        for k in keys:
            if obj.get(k) is not None:
                return obj[k]
        for v in obj.values():
            found = _find_key(v, keys)
            if found is not None:
                return found
    return None


# The built-in kinds register themselves (after the definitions above, which they use).
from nascell.kinds import image as _image  # noqa: E402,F401
from nascell.kinds import recurrent as _recurrent  # noqa: E402,F401
from nascell.kinds.image import ImageKind  # noqa: E402
from nascell.kinds.recurrent import RecurrentKind  # noqa: E402

__all__ = ["ImageKind", "RecurrentKind", "SpecKind", "attribute_items", "available_kinds",
           "clean_config", "core_classes", "find_config_value", "find_core", "find_kind",
           "get_kind", "kind_of", "kind_of_core", "path_items", "register_kind",
           "unregister_kind"]
