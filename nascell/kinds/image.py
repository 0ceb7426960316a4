"""The image spec kinds: ``conv`` (the paper's conv net, `ConvNet`), ``enas_conv_cell`` (the
ENAS micro network, `ENASConvNet`) and ``enas_macro`` (`ENASMacroNet`).

Each becomes one network built for images of one shape, ``input_shape = (height, width,
channels)`` (its one size argument). The SavedModel has one endpoint, ``features(images)``
(``[batch, height, width, channels]``) -> ``{"features": ...}``, in inference mode (batch
normalization uses its moving statistics): a `ConvNet`'s concatenated loose ends ``[batch, H,
W, C]``; an ENAS net's globally pooled features ``[batch, C]`` (or its logits, when built with
``layer_config={"include_top": True, "num_classes": K}``; by default the classifier is left
out). A search run's image shape comes from the trial's metrics (``input_shape``), the run
config, or CIFAR-10's 32x32x3 for a run on CIFAR-10 (docs/kinds.md).
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import keras
import numpy as np

from nascell import kinds
from nascell._args import argument_error
from nascell.conv import ConvNet, plan_conv_shapes
from nascell.enas_cells import ENASConvNet, ENASMacroNet
from nascell.enas_spec import ENASConvCellSpec, ENASMacroSpec
from nascell.kinds.recurrent import reject_sizes, same, tensor_spec
from nascell.spec import ConvSpec

CONV_LAYER_NAME = "convnet"
ENAS_CONV_LAYER_NAME = "enas_convnet"
ENAS_MACRO_LAYER_NAME = "enas_macronet"
CIFAR10_SHAPE = (32, 32, 3)


def image_shape(value: Any, name: str = "input_shape") -> Tuple[int, int, int]:
    """``(height, width, channels)`` from a sequence or a ``"32,32,3"`` / ``"32x32x3"`` string."""
    must = "be (height, width, channels): three positive integers, e.g. (32, 32, 3)"
    if value is None:
        raise argument_error(name, must, value, "It is required to export an image network")
    parts = value
    if isinstance(value, str):
        parts = [v for v in value.replace("x", ",").split(",") if v.strip()]
    try:
        shape = tuple(int(v) for v in parts)
    except (TypeError, ValueError):
        raise argument_error(name, must, value) from None
    if len(shape) != 3 or min(shape) < 1:
        raise argument_error(name, must, value)
    return shape


class ImageKind(kinds.SpecKind):
    """A kind whose layer is one network over images of one shape, with a ``features``
    endpoint. Subclasses set ``layer_class`` and may override `source_shape` and
    `complete_shapes`."""

    modality = "image"
    size_arguments = ("input_shape",)
    layer_class: type = keras.layers.Layer
    default_config: Dict[str, Any] = {}

    def source_shape(self, source: keras.layers.Layer) -> Tuple[int, ...]:
        """The image shape a built core layer was built for."""
        shape = (source.get_build_config() or {}).get("input_shape")
        if not shape:
            raise ValueError(f"layer {source.name!r} is not built, so its image shape is "
                             f"unknown; call it on images (or build it) before exporting")
        return tuple(int(d) for d in shape[1:])

    def shapes(self, spec, sizes, source=None):
        reject_sizes(self, sizes, "an image network takes input_shape=(height, width, "
                                  "channels)")
        shape = sizes.get("input_shape")
        if source is not None:
            shape = same("input_shape", None if shape is None else image_shape(shape),
                         self.source_shape(source), source)
        return {"input_shape": list(image_shape(shape))}

    def build(self, spec, shapes, config=None, name=None, **options):
        if options:
            raise TypeError(f"unexpected arguments for a spec of kind {self.name!r}: "
                            f"{sorted(options)}")
        config = {**self.default_config, **kinds.clean_config(config)}
        layer = self.layer_class(spec, name=name or self.layer_name, **config)
        layer.build((None,) + tuple(int(d) for d in shapes["input_shape"]))
        return layer

    def complete_shapes(self, spec, layer, shapes):
        shape = tuple(int(d) for d in shapes["input_shape"])
        out = layer(np.zeros((1,) + shape, np.float32), training=False)
        return {**shapes, "output_shape": [int(d) for d in out.shape[1:]]}

    def model_input(self, shapes):
        return keras.Input(shape=tuple(int(d) for d in shapes["input_shape"]), name="images")

    def endpoints(self, layer, shapes):
        return features_endpoints(layer, shapes["input_shape"])

    def endpoint_outputs(self, shapes):
        return {"features": {"features": [None] + list(shapes["output_shape"])}}

    def layer_doc(self, shapes):
        return {"class": f"{self.layer_class.__module__}.{self.layer_class.__name__}",
                "name": self.layer_name, "call": "features = layer(images, training=...)"}

    def sizes_from_run(self, config, metrics):
        shape = metrics.get("input_shape") or kinds.find_config_value(
            config, ("input_shape", "image_shape"))
        if shape:
            return {"input_shape": tuple(int(d) for d in shape)}
        # No recorded shape: a run of the CIFAR-10 trainers (the default evaluator of this
        # kind, or any evaluator on CIFAR-10) trained on 32x32x3 images.
        dataset = str(kinds.find_config_value(config, ("dataset",)) or "").lower()
        evaluator = (config.get("evaluator") or {}).get("name")
        cifar = ("cifar" in dataset or kinds.find_config_value(config, ("cifar_npz",))
                 or (evaluator is not None and evaluator == self.evaluator))
        return {"input_shape": CIFAR10_SHAPE} if cifar else {}


class ConvKind(ImageKind):
    """``conv``: a `ConvNet` whose features are its concatenated loose ends."""

    name = "conv"
    spec_class = ConvSpec
    core_classes = (ConvNet,)
    layer_class = ConvNet
    layer_name = CONV_LAYER_NAME
    evaluator = "conv_classifier"

    def source_shape(self, source):
        return tuple(int(d) for d in source.plan.image_shape)

    def complete_shapes(self, spec, layer, shapes):
        plan = plan_conv_shapes(spec, tuple(shapes["input_shape"]))
        return {**shapes, "output_shape": list(plan.output_shape),
                "layer_output_shapes": [list(s) for s in plan.output_shapes]}

    def weight_items(self, core):
        return kinds.path_items(core, depth=2)  # a ConvNet's variables sit on named sublayers

    def picture(self, spec, shapes):
        from nascell.pictures import figures
        return figures.conv_picture(spec, shapes.get("input_shape"),
                                    shapes.get("layer_output_shapes"), shapes.get("output_shape"))


class _ENASImageKind(ImageKind):
    """The ENAS networks: no classifier by default; weights keyed by attribute path (their
    sublayers have no fixed names)."""

    default_config = {"include_top": False}

    def weight_items(self, core):
        return kinds.attribute_items(core)

    def sizes_from_run(self, config, metrics):
        sizes = super().sizes_from_run(config, metrics)
        layer_config = {}
        for key in ("filters", "num_cells"):
            value = kinds.find_config_value(config, (key,))
            if key in self.layer_options and value is not None:
                layer_config[key] = int(value)
        if layer_config:
            sizes["layer_config"] = layer_config
        return sizes


class ENASConvCellKind(_ENASImageKind):
    """``enas_conv_cell``: the ENAS micro network (`ENASConvNet`)."""

    name = "enas_conv_cell"
    spec_class = ENASConvCellSpec
    core_classes = (ENASConvNet,)
    layer_class = ENASConvNet
    layer_name = ENAS_CONV_LAYER_NAME
    layer_options = ("filters", "num_cells", "include_top", "num_classes")

    def picture(self, spec, shapes):
        from nascell.pictures import figures
        return figures.enas_conv_picture(spec, shapes.get("input_shape"),
                                         shapes.get("output_shape"))


class ENASMacroKind(_ENASImageKind):
    """``enas_macro``: the ENAS macro network (`ENASMacroNet`)."""

    name = "enas_macro"
    spec_class = ENASMacroSpec
    core_classes = (ENASMacroNet,)
    layer_class = ENASMacroNet
    layer_name = ENAS_MACRO_LAYER_NAME
    layer_options = ("filters", "include_top", "num_classes")

    def picture(self, spec, shapes):
        from nascell.pictures import figures
        return figures.enas_macro_picture(spec, shapes.get("input_shape"),
                                          shapes.get("output_shape"))


def features_endpoints(layer: keras.layers.Layer, input_shape) -> Dict[str, Any]:
    """``{"features": (fn, input_signature)}`` for an image layer built for one image shape."""
    def features(images):
        return {"features": layer(images, training=False)}

    return {"features": (features, [tensor_spec(
        (None,) + tuple(int(d) for d in input_shape), "images")])}


def conv_endpoints(convnet: ConvNet) -> Dict[str, Any]:
    """``{"features": (fn, input_signature)}`` for a `ConvNet` built for one image shape."""
    return features_endpoints(convnet, convnet.plan.image_shape)


kinds.register_kind(ConvKind())
kinds.register_kind(ENASConvCellKind())
kinds.register_kind(ENASMacroKind())
