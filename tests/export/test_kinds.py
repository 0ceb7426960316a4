"""The registry of spec kinds: a kind defined here, in the test, exports and reloads through the
unchanged package (spec JSON, export folder, SavedModel, loader, nascell-export), and the
built-in kinds are all registered."""

import dataclasses
import json
import os
from typing import Any, ClassVar, Dict

import graphviz
import keras
import numpy as np
import pytest
import tensorflow as tf

from nascell import kinds
from nascell.spec import SPEC_KINDS, SpecBase, SpecError, spec_from_json


@dataclasses.dataclass(frozen=True)
class ToySpec(SpecBase):
    """A one-layer "architecture": a dense map of ``width`` outputs and an activation."""

    kind: ClassVar[str] = "toy_dense"
    width: int
    activation: str = "tanh"

    def __post_init__(self):
        if self.activation not in ("tanh", "relu"):
            raise SpecError(f"invalid spec field 'activation': got {self.activation!r}")

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "width": self.width, "activation": self.activation}

    @classmethod
    def from_dict(cls, data):
        return cls(width=int(data["width"]), activation=data.get("activation", "tanh"))


@keras.saving.register_keras_serializable(package="nascell_test_kinds")
class ToyDense(keras.layers.Layer):
    def __init__(self, spec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec if isinstance(spec, ToySpec) else ToySpec.from_dict(spec)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(int(input_shape[-1]), self.spec.width),
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.spec.width,), initializer="zeros", name="bias")

    def call(self, x):
        return getattr(keras.ops, self.spec.activation)(x @ self.kernel + self.bias)

    def get_config(self):
        return {**super().get_config(), "spec": self.spec.to_dict()}


class ToyKind(kinds.SpecKind):
    name = "toy_dense"
    spec_class = ToySpec
    core_classes = (ToyDense,)
    layer_name = "toy"
    size_arguments = ("input_dim",)
    modality = "vector"

    def shapes(self, spec, sizes, source=None):
        for key, value in sizes.items():
            if value is not None and key not in self.size_arguments:
                raise ValueError(f"Argument `{key}` must be left out for a toy_dense spec. "
                                 f"Received: {key}={value!r}")
        input_dim = sizes.get("input_dim")
        if source is not None:
            input_dim = int(source.kernel.shape[0])
        if not isinstance(input_dim, int) or input_dim < 1:
            raise ValueError(f"Argument `input_dim` must be a positive integer. Received: "
                             f"input_dim={input_dim!r}")
        return {"input_dim": input_dim, "width": spec.width}

    def build(self, spec, shapes, config=None, name=None):
        layer = ToyDense(spec, name=name or self.layer_name, **kinds.clean_config(config))
        layer.build((None, shapes["input_dim"]))
        return layer

    def model_input(self, shapes):
        return keras.Input((shapes["input_dim"],), name="x")

    def endpoints(self, layer, shapes):
        def apply(x):
            return {"y": layer(x)}
        return {"apply": (apply, [tf.TensorSpec((None, shapes["input_dim"]), tf.float32,
                                                name="x")])}

    def endpoint_outputs(self, shapes):
        return {"apply": {"y": [None, shapes["width"]]}}

    def diagram(self, spec, shapes):
        g = graphviz.Digraph("toy")
        g.edge("x", f"dense {spec.width}, {spec.activation}")
        return g


@pytest.fixture
def toy_kind():
    kind = kinds.register_kind(ToyKind())
    yield kind
    kinds.unregister_kind("toy_dense")
    SPEC_KINDS.pop("toy_dense", None)


def test_builtin_kinds_are_registered():
    assert kinds.available_kinds() == ["conv", "enas_conv_cell", "enas_macro", "enas_rnn_cell",
                                       "rnn_cell"]
    assert kinds.get_kind("rnn_cell").evaluator == "rnn_lm"
    assert kinds.get_kind("conv").evaluator == "conv_classifier"
    assert kinds.find_kind("|nor_conv_3x3~0|") is None  # a NAS-Bench-201 string is no spec
    with pytest.raises(ValueError, match="Argument `kind` must be a registered spec kind"):
        kinds.get_kind("toy_dense")


def test_a_kind_defined_outside_the_package_exports_and_reloads(toy_kind, tmp_path):
    from nascell.export import export_spec, load, load_metadata
    spec = ToySpec(width=4, activation="relu")
    assert spec_from_json(spec.to_json()) == spec  # registering the kind registered its spec
    source = toy_kind.build(spec, {"input_dim": 3})
    source.kernel.assign(np.arange(12, dtype="float32").reshape(3, 4) / 10 - 0.5)
    path = export_spec(source, str(tmp_path / "toy"))
    assert sorted(os.listdir(path)) == sorted(
        {"spec.json", "weights.npz", "layer.keras", "saved_model", "architecture.dot",
         "metadata.json"} | {f for f in os.listdir(path) if f.startswith("architecture.")})
    meta = load_metadata(path)
    assert meta["kind"] == "toy_dense" and meta["shapes"] == {"input_dim": 3, "width": 4}
    assert meta["endpoints"]["apply"]["outputs"] == {"y": [None, 4]}
    assert meta["weights"]["variables"] == {"kernel": [3, 4], "bias": [4]}
    x = np.random.RandomState(0).randn(5, 3).astype("float32")
    want = np.asarray(source(x))
    back = load(path)
    assert isinstance(back, ToyDense) and back.name == "toy"
    np.testing.assert_allclose(np.asarray(back(x)), want, rtol=1e-6)
    served = tf.saved_model.load(os.path.join(path, "saved_model"))
    np.testing.assert_allclose(served.apply(x)["y"].numpy(), want, rtol=1e-6)
    with open(os.path.join(path, "architecture.dot")) as f:
        assert "dense 4, relu" in f.read()
    # The binary checks the toy kind's sizes through its kind too, and names flags.
    from absl import app

    from nascell.export.bin import export as cli
    spec_file = tmp_path / "toy.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["nascell-export", f"--spec_json={spec_file}", "--units=3",
               f"--out={tmp_path / 'cli'}"])
    with pytest.raises(app.UsageError, match="Argument `--units` must be left out"):
        cli.main(["nascell-export"])
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["nascell-export", f"--spec_json={spec_file}", "--input_dim=2",
               f"--out={tmp_path / 'cli'}"])
    assert cli.main(["nascell-export"]) == 0
    assert load_metadata(str(tmp_path / "cli"))["shapes"]["input_dim"] == 2
    cli.FLAGS.unparse_flags()
