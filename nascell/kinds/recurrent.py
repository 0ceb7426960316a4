"""The recurrent spec kinds: ``rnn_cell`` (the paper's cell tree, `TreeCell`) and
``enas_rnn_cell`` (`ENASRNNCell`).

Both become ``nascell.RNN(cell, return_sequences=True, return_state=True)`` (``keras.layers.RNN``
on the fast path, so a loaded export runs at the speed of its matmuls) built for
``(batch, time, input_dim)``: called, it returns the outputs and then each state. A tree cell
has the states ``[h, c]`` (``h`` of size ``projection or units``, ``c`` of size ``units``); an
ENAS cell has one state, ``h``, which is also its output. The SavedModel endpoints follow:

* ``sequence(inputs)``: ``inputs`` ``[batch, time, input_dim]`` from a zero state ->
  ``{"outputs": [batch, time, h_dim], "h": ..., ("c": ...)}``;
* ``sequence_with_state(inputs, h[, c])``: the same from a given state;
* ``step(x[, h, c])``: one time step, ``x`` ``[batch, input_dim]`` ->
  ``{"output": [batch, h_dim], "h": ..., ("c": ...)}`` (``output`` is the new ``h``).

Size arguments: ``units`` and ``input_dim`` (both required), plus ``projection`` for a tree
cell. A search run's sizes come from the trial's metrics (``units``, as the ``rnn_lm`` child
records it) or the evaluator's config; the input size is the embedding width, which equals
``units`` when the language model ties its embedding (docs/kinds.md).

A recurrent kind also makes the cell of one layer of a language model (`RecurrentKind.cell`,
every weight drawn from one initializer) and counts its weights (`RecurrentKind.cell_params`),
so the ``rnn_lm`` child (`nascell.search.evaluators.lm_parts`) builds and sizes a model of any
recurrent kind through one code path.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import keras
import tensorflow as tf

from nascell import kinds
from nascell._args import argument_error, positive_int
from nascell.enas_cells import ENASRNNCell
from nascell.enas_spec import ENASRNNCellSpec
from nascell.fast_rnn import RNN
from nascell.spec import RNNCellSpec
from nascell.tree_cell import TreeCell

CELL_LAYER_NAME = "tree_rnn"
CELL_NAME = "tree_cell"
ENAS_RNN_LAYER_NAME = "enas_rnn"
ENAS_CELL_NAME = "enas_rnn_cell"


def gate_params(input_dim: int, units: int, gates: int) -> int:
    """Weights of a cell of ``gates`` biased gate matrices, each ``units`` wide, reading
    ``input_dim`` features: ``kernel``, ``recurrent_kernel`` and ``bias`` (a tree cell of
    base ``gates``; the LSTM is 4)."""
    return (int(input_dim) + int(units) + 1) * int(gates) * int(units)


def tensor_spec(shape, name: str) -> tf.TensorSpec:
    return tf.TensorSpec(shape=tuple(shape), dtype=tf.float32, name=name)


def reject_sizes(kind: kinds.SpecKind, sizes: Dict[str, Any], hint: str) -> None:
    """A ValueError for the first size argument given that ``kind`` does not take."""
    for name, value in sizes.items():
        if value is not None and name not in kind.size_arguments:
            raise argument_error(name, f"be left out for a spec of kind {kind.name!r} ({hint})",
                                 value)


def same(name: str, given: Any, found: Any, layer: keras.layers.Layer) -> Any:
    """``found`` (a layer's own size), checked against ``given`` when both are set."""
    if given is not None and found is not None and given != found:
        raise argument_error(name, f"match layer {layer.name!r}, whose {name} is {found!r} "
                             f"(leave {name} out to use the layer's value)", given)
    return found if found is not None else given


class RecurrentKind(kinds.SpecKind):
    """A kind whose layer is ``keras.layers.RNN`` around a cell: sizes, build, the layer.keras
    input and the metadata shared by the recurrent kinds. Subclasses set ``cell_class``,
    ``cell_name``, ``states`` and the endpoints."""

    modality = "sequence"
    size_arguments: Tuple[str, ...] = ("units", "input_dim")
    states: Tuple[str, ...] = ("h",)
    cell_class: type = keras.layers.Layer
    cell_name = ""

    def shapes(self, spec, sizes, source=None):
        reject_sizes(self, sizes, "a recurrent cell takes units and input_dim")
        units, input_dim = sizes.get("units"), sizes.get("input_dim")
        if source is not None:
            units = same("units", units, source.units, source)
            input_dim = same("input_dim", input_dim, int(source.kernel.shape[0]), source)
        required = f"It is required to export a spec of kind {self.name!r}"
        units = positive_int("units", units, hint=required)
        input_dim = positive_int("input_dim", input_dim, hint=required)
        return {"input_dim": input_dim, "units": units, "h_dim": units, "state_size": [units]}

    def _cell(self, spec, shapes, config):
        config = {k: v for k, v in kinds.clean_config(config).items()
                  if k not in ("units", "projection")}
        return self.cell_class(spec, name=self.cell_name, units=shapes["units"], **config)

    def build(self, spec, shapes, config=None, name=None, return_sequences: bool = True,
              return_state: bool = True, **rnn_options):
        """``RNN(cell)`` built for ``shapes["input_dim"]``; ``rnn_options`` are further
        `keras.layers.RNN` arguments."""
        rnn = RNN(self._cell(spec, shapes, config),
                               return_sequences=return_sequences, return_state=return_state,
                               name=name or self.layer_name, **rnn_options)
        rnn.build((None, None, int(shapes["input_dim"])))
        return rnn

    def core_of(self, layer):
        return layer.cell if isinstance(layer, keras.layers.RNN) else layer

    # --- a language model's layer (nascell.search.evaluators.lm_parts) -------------------------

    def cell(self, spec, units: int, initializer: Any = None, dropout: float = 0.0,
             recurrent_dropout: float = 0.0, seed: Optional[int] = None,
             name: Optional[str] = None) -> keras.layers.Layer:
        """The cell of one recurrent layer of a language model (not built): ``units`` wide,
        every weight drawn from ``initializer`` (None: the cell's own defaults), with
        variational ``dropout`` on its inputs and ``recurrent_dropout`` on its state where the
        cell has them (seeded by ``seed``). Subclasses implement it to be trainable as a
        language model's cell."""
        raise NotImplementedError(f"spec kind {self.name!r} does not say how to build a "
                                  "language model's cell (RecurrentKind.cell)")

    def cell_params(self, spec, input_dim: int, units: int) -> int:
        """Weights of `cell` reading ``input_dim`` features (its ``count_params()`` once
        built), so a model can be sized to a parameter count."""
        raise NotImplementedError(f"spec kind {self.name!r} does not count its cell's weights "
                                  "(RecurrentKind.cell_params)")

    def model_input(self, shapes):
        return keras.Input(shape=(None, int(shapes["input_dim"])), name="inputs")

    def _state_shapes(self, shapes) -> Dict[str, list]:
        return {name: [None, size] for name, size in zip(self.states, shapes["state_size"])}

    def endpoint_outputs(self, shapes):
        state = self._state_shapes(shapes)
        h_dim = shapes["h_dim"]
        return {"sequence": {"outputs": [None, None, h_dim], **state},
                "sequence_with_state": {"outputs": [None, None, h_dim], **state},
                "step": {"output": [None, h_dim], **state}}

    def layer_doc(self, shapes):
        names = ", ".join(self.states)
        return {"class": f"nascell.RNN({self.cell_class.__module__}."
                         f"{self.cell_class.__name__})",
                "name": self.layer_name, "return_sequences": True, "return_state": True,
                "states": list(self.states),
                "call": f"outputs, {names} = layer(inputs[, initial_state=[{names}]])"}

    def sizes_from_run(self, config, metrics):
        units = metrics.get("units") or kinds.find_config_value(config, ("units",))
        if not units:
            return {}
        tied = kinds.find_config_value(config, ("tie_weights",))
        embedding = kinds.find_config_value(config, ("embedding_dim",))
        input_dim = int(embedding) if (tied is False and embedding) else int(units)
        return {"units": int(units), "input_dim": input_dim}


class RNNCellKind(RecurrentKind):
    """``rnn_cell``: ``RNN(TreeCell(spec, units, projection, ...))``, states ``[h, c]``."""

    name = "rnn_cell"
    spec_class = RNNCellSpec
    core_classes = (TreeCell,)
    cell_class = TreeCell
    cell_name = CELL_NAME
    layer_name = CELL_LAYER_NAME
    size_arguments = ("units", "input_dim", "projection")
    layer_options = ("use_bias",)
    states = ("h", "c")
    evaluator = "rnn_lm"

    def shapes(self, spec, sizes, source=None):
        base = super().shapes(spec, {k: v for k, v in sizes.items() if k != "projection"},
                              source)
        projection = sizes.get("projection")
        if source is not None:
            projection = same("projection", projection, source.projection, source)
        projection = positive_int("projection", projection, required=False)
        h_dim = projection or base["units"]
        return {**base, "projection": projection, "h_dim": h_dim,
                "state_size": [h_dim, base["units"]]}

    def _cell(self, spec, shapes, config):
        config = {k: v for k, v in kinds.clean_config(config).items()
                  if k not in ("units", "projection")}
        return TreeCell(spec, name=CELL_NAME, units=shapes["units"],
                        projection=shapes.get("projection"), **config)

    def cell(self, spec, units, initializer=None, dropout=0.0, recurrent_dropout=0.0,
             seed=None, name=None):
        inits = ({} if initializer is None
                 else {"kernel_initializer": initializer, "recurrent_initializer": initializer})
        return TreeCell(spec, units, dropout=dropout, recurrent_dropout=recurrent_dropout,
                        seed=seed, name=name, **inits)

    def cell_params(self, spec, input_dim, units):
        """``kernel``, ``recurrent_kernel`` and ``bias`` of ``base`` gates (no projection)."""
        return gate_params(input_dim, units, spec.base)

    def endpoints(self, layer, shapes):
        return cell_endpoints(layer)

    def picture(self, spec, shapes):
        from nascell.pictures import figures
        return figures.cell_picture(spec)


class ENASRNNCellKind(RecurrentKind):
    """``enas_rnn_cell``: ``RNN(ENASRNNCell(spec, units))``, one state ``h``."""

    name = "enas_rnn_cell"
    spec_class = ENASRNNCellSpec
    core_classes = (ENASRNNCell,)
    cell_class = ENASRNNCell
    cell_name = ENAS_CELL_NAME
    layer_name = ENAS_RNN_LAYER_NAME
    states = ("h",)

    def shapes(self, spec, sizes, source=None):
        if sizes.get("projection") is not None:
            raise argument_error("projection", "be left out for a spec of kind "
                                 "'enas_rnn_cell' (projection is for tree cells; an ENAS "
                                 "cell's output is its state h, of size units)",
                                 sizes["projection"])
        return super().shapes(spec, sizes, source)

    def cell(self, spec, units, initializer=None, dropout=0.0, recurrent_dropout=0.0,
             seed=None, name=None):
        """`ENASRNNCell` has no dropout of its own (the paper's regularizers sit outside the
        cell), so ``dropout`` and ``recurrent_dropout`` must be 0; ``seed`` is unused (the
        initializer carries its own)."""
        for option, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if value:
                raise argument_error(option, "be 0 for a cell of kind 'enas_rnn_cell'", value,
                                     "ENASRNNCell drops nothing inside the cell; regularize "
                                     "the language model with embedding_dropout instead")
        return ENASRNNCell(spec, units, kernel_initializer=initializer, name=name)

    def cell_params(self, spec, input_dim, units):
        """``kernel`` [input_dim, 2u], ``recurrent_kernel`` [u, 2u] and one [u, 2u] kernel per
        further node; no biases."""
        u = int(units)
        return 2 * u * (int(input_dim) + spec.num_nodes * u)

    def endpoints(self, layer, shapes):
        return enas_cell_endpoints(layer)

    def layer_doc(self, shapes):
        doc = super().layer_doc(shapes)
        doc["note"] = ("an ENAS cell has one state, h (its output), unlike a tree cell's "
                       "[h, c]: endpoints take and return h only")
        return doc

    def picture(self, spec, shapes):
        from nascell.pictures import figures
        return figures.enas_rnn_picture(spec)


def cell_endpoints(rnn: keras.layers.RNN) -> Dict[str, Any]:
    """``{name: (fn, input_signature)}`` for ``RNN(TreeCell)`` built by `RNNCellKind.build`."""
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

    seq = tensor_spec((None, None, input_dim), "inputs")
    h = tensor_spec((None, h_dim), "h")
    c = tensor_spec((None, units), "c")
    return {
        "sequence": (sequence, [seq]),
        "sequence_with_state": (sequence_with_state, [seq, h, c]),
        "step": (step, [tensor_spec((None, input_dim), "x"), h, c]),
    }


def enas_cell_endpoints(rnn: keras.layers.RNN) -> Dict[str, Any]:
    """The endpoints of `cell_endpoints` for ``RNN(ENASRNNCell)``: one state ``h``, no ``c``."""
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

    seq = tensor_spec((None, None, input_dim), "inputs")
    h = tensor_spec((None, units), "h")
    return {
        "sequence": (sequence, [seq]),
        "sequence_with_state": (sequence_with_state, [seq, h]),
        "step": (step, [tensor_spec((None, input_dim), "x"), h]),
    }


def state_names(spec: Any) -> Optional[Tuple[str, ...]]:
    """The states of a recurrent spec's layer, in order (None for a non-recurrent kind)."""
    kind = kinds.find_kind(spec)
    return tuple(kind.states) if isinstance(kind, RecurrentKind) else None


kinds.register_kind(RNNCellKind())
kinds.register_kind(ENASRNNCellKind())
