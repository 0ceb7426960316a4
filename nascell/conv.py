"""The conv child builder: a `ConvSpec` compiled into a Keras feature extractor.

`ConvNet` is the convolutional network that a conv spec describes (Zoph & Le 2017, sections
3.1-3.3 and 4.1), as one serializable Keras layer; `build_conv_classifier` puts the paper's
classifier head on it. The building rules, the paper's answer to "compilation failures", are
applied here and nowhere else:

* A layer with no inputs reads the image.
* A layer with several inputs reads their concatenation along channels (in increasing layer
  index). Smaller feature maps are first zero-padded to the largest height and width among
  them; the zeros go at the bottom and on the right, so a map keeps its top-left corner.
* Every layer output that no later layer reads (a "loose end"; the last layer always counts)
  is concatenated, with the same zero padding, into the final feature map: the output of
  `ConvNet`.
* A conv layer is, in this order::

      Conv2D(filters, (filter_height, filter_width), strides, padding="same", use_bias=False)
        -> BatchNormalization -> ReLU

  (no bias: batch normalization's beta takes its place).
* A ``max_pool`` layer is ``MaxPooling2D(pool_size=(filter_height, filter_width), strides,
  padding="same")``; it keeps its input's channels.

Images are channels-last ``(batch, height, width, channels)`` whatever
`keras.config.image_data_format()` says. With ``padding="same"`` a layer of stride ``s`` maps a
side of ``n`` pixels to ``ceil(n / s)``, so no spec shrinks a map below 1x1; the height and
width of every map are fixed when the layer is built, which is what lets the zero padding be a
constant `keras.ops.pad`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras

from nascell.spec import ConvSpec, coerce_spec

SpecLike = Union[ConvSpec, Dict[str, Any], str]

__all__ = ["ConvNet", "ConvPlan", "build_conv_classifier", "plan_conv_shapes"]


def _as_spec(spec: SpecLike) -> ConvSpec:
    """A `ConvSpec` from a spec, its dict form, or its JSON text."""
    return coerce_spec(spec, ConvSpec)


def _same_size(size: int, stride: int) -> int:
    """Output side of a "same"-padded conv or pool: ceil(size / stride)."""
    return -(-size // stride)


@dataclasses.dataclass(frozen=True)
class ConvPlan:
    """Static shapes of every map a `ConvNet` computes for one image size.

    Shapes are ``(height, width, channels)`` without the batch axis. ``input_pads[i]`` lists,
    for each input of layer ``i`` (in ``spec.layers[i].inputs`` order), the ``(bottom, right)``
    zeros added before concatenation; ``output_pads`` does the same for the loose ends.
    """

    image_shape: Tuple[int, int, int]
    input_shapes: Tuple[Tuple[int, int, int], ...]
    output_shapes: Tuple[Tuple[int, int, int], ...]
    input_pads: Tuple[Tuple[Tuple[int, int], ...], ...]
    loose_ends: Tuple[int, ...]
    output_pads: Tuple[Tuple[int, int], ...]
    output_shape: Tuple[int, int, int]


def _merge(shapes: Sequence[Tuple[int, int, int]]):
    """Shape of the padded concatenation of ``shapes`` and each one's (bottom, right) pad."""
    height = max(s[0] for s in shapes)
    width = max(s[1] for s in shapes)
    pads = tuple((height - s[0], width - s[1]) for s in shapes)
    return (height, width, sum(s[2] for s in shapes)), pads


def plan_conv_shapes(spec: SpecLike, input_shape: Sequence[Optional[int]]) -> ConvPlan:
    """Apply the building rules to shapes only: every layer's input and output map.

    ``input_shape`` is ``(height, width, channels)`` or ``(batch, height, width, channels)``.
    Raises ValueError naming the problem and the fix when the image shape cannot be built.
    """
    spec = _as_spec(spec)
    shape = tuple(input_shape)
    if len(shape) == 4:
        shape = shape[1:]
    if len(shape) != 3:
        raise ValueError(
            f"ConvNet expects images of shape (batch, height, width, channels), channels last. "
            f"Add a channel axis to grayscale images (e.g. images[..., None]) or pass "
            f"input_shape=(h, w, c). Received: input_shape={tuple(input_shape)} "
            f"(rank {len(tuple(input_shape))})")
    names = ("height", "width", "channels")
    for name, value in zip(names, shape):
        if value is None:
            raise ValueError(
                f"ConvNet needs a known image {name}. The zero padding between layers is fixed "
                f"when the layer is built, so give the input a static size, e.g. "
                f"keras.Input(shape=(32, 32, 3)). Received: input_shape={tuple(input_shape)}")
        if int(value) < 1:
            raise ValueError(
                f"Every side of a ConvNet's images must be at least 1 pixel. Received: "
                f"{name}={value} in input_shape={tuple(input_shape)}")
    image = tuple(int(v) for v in shape)

    inputs, outputs, pads = [], [], []
    for i, layer in enumerate(spec.layers):
        if layer.inputs:
            merged, layer_pads = _merge([outputs[j] for j in layer.inputs])
        else:
            merged, layer_pads = image, ()
        height = _same_size(merged[0], layer.stride_height)
        width = _same_size(merged[1], layer.stride_width)
        if height < 1 or width < 1:  # unreachable with "same" padding; kept as a guard.
            raise ValueError(
                f"spec layer {i} ({layer.op}, strides {layer.stride_height}x{layer.stride_width}) "
                f"shrinks its {merged[0]}x{merged[1]} input below 1x1; use smaller strides in "
                f"layer {i} or larger images.")
        channels = layer.filters if layer.op == "conv" else merged[2]
        inputs.append(merged)
        pads.append(layer_pads)
        outputs.append((height, width, channels))

    loose = tuple(spec.loose_ends())
    final, final_pads = _merge([outputs[i] for i in loose])
    return ConvPlan(image_shape=image, input_shapes=tuple(inputs), output_shapes=tuple(outputs),
                    input_pads=tuple(pads), loose_ends=loose, output_pads=final_pads,
                    output_shape=final)


def _pad_concat(tensors: List[Any], pads: Sequence[Tuple[int, int]]):
    """Zero-pad each map at the bottom/right by its (static) pad, then concatenate channels."""
    padded = []
    for x, (bottom, right) in zip(tensors, pads):
        if bottom or right:
            x = keras.ops.pad(x, [[0, 0], [0, bottom], [0, right], [0, 0]])
        padded.append(x)
    if len(padded) == 1:
        return padded[0]
    return keras.ops.concatenate(padded, axis=-1)


@keras.saving.register_keras_serializable(package="nascell")
class ConvNet(keras.layers.Layer):
    """Feature extractor compiled from a `ConvSpec` (building rules: see the module docstring).

    Args:
        spec: a `ConvSpec`, its dict (``spec.to_dict()``) or its JSON text.
        kernel_regularizer: regularizer for every conv kernel (a Keras regularizer, its name
            or its config). Mutually exclusive with ``weight_decay``.
        weight_decay: shorthand for ``kernel_regularizer=keras.regularizers.L2(weight_decay)``,
            which adds ``weight_decay * sum(kernel**2)`` to the loss (the paper uses 1e-4).
        kernel_initializer: initializer of the conv kernels (default ``"he_normal"``).
        bn_momentum: momentum of the batch normalization moving statistics.
        bn_epsilon: batch normalization epsilon (the paper's final training grids over it).
        **kwargs: base `keras.layers.Layer` arguments (``name``, ``dtype``, ``trainable``).

    Call arguments:
        images: ``(batch, height, width, channels)``; height, width and channels must be
            static (the zero padding is fixed at build time).
        training: batch normalization mode.

    Output: ``(batch, H, W, C)``, the loose ends concatenated; `compute_output_shape` and
    `plan` give the exact sizes.
    """

    def __init__(self, spec: SpecLike, kernel_regularizer: Any = None, weight_decay: float = 0.0,
                 kernel_initializer: Any = "he_normal", bn_momentum: float = 0.9,
                 bn_epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.spec = _as_spec(spec)
        weight_decay = float(weight_decay or 0.0)
        if weight_decay < 0:
            raise ValueError(f"Argument `weight_decay` must be >= 0. "
                             f"Received: weight_decay={weight_decay}")
        if weight_decay and kernel_regularizer is not None:
            raise ValueError("pass either weight_decay or kernel_regularizer, not both "
                             "(weight_decay=w is kernel_regularizer=keras.regularizers.L2(w))")
        self.weight_decay = weight_decay
        self.kernel_regularizer = (keras.regularizers.L2(weight_decay) if weight_decay
                                   else keras.regularizers.get(kernel_regularizer))
        self._regularizer_from_decay = bool(weight_decay)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.plan: Optional[ConvPlan] = None

        # One op per spec layer (Conv2D or MaxPooling2D), one BatchNormalization per conv.
        # Flat lists of layers, so Keras tracks them and `.keras` files restore their weights.
        self.ops: List[keras.layers.Layer] = []
        self.norms: List[keras.layers.Layer] = []
        self._norm_of: Dict[int, int] = {}
        for i, layer in enumerate(self.spec.layers):
            if layer.op == "conv":
                self.ops.append(keras.layers.Conv2D(
                    layer.filters, (layer.filter_height, layer.filter_width),
                    strides=(layer.stride_height, layer.stride_width), padding="same",
                    data_format="channels_last", use_bias=False,
                    kernel_initializer=self.kernel_initializer,
                    kernel_regularizer=self.kernel_regularizer,
                    dtype=self.dtype_policy, name=f"layer{i}_conv"))
                self._norm_of[i] = len(self.norms)
                self.norms.append(keras.layers.BatchNormalization(
                    axis=-1, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                    dtype=self.dtype_policy, name=f"layer{i}_bn"))
            else:
                self.ops.append(keras.layers.MaxPooling2D(
                    pool_size=(layer.filter_height, layer.filter_width),
                    strides=(layer.stride_height, layer.stride_width), padding="same",
                    data_format="channels_last", dtype=self.dtype_policy,
                    name=f"layer{i}_max_pool"))

    # --- shapes ---------------------------------------------------------------------------------

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"ConvNet {self.name!r} expects images of shape (batch, height, width, "
                f"channels), channels last. Add a batch axis (images[None]) or a channel axis "
                f"(images[..., None]) as needed. Received: input_shape={tuple(input_shape)} "
                f"(rank {len(input_shape)})")
        self.plan = plan_conv_shapes(self.spec, input_shape)
        for i, op in enumerate(self.ops):
            op.build((None,) + self.plan.input_shapes[i])
            if i in self._norm_of:
                self.norms[self._norm_of[i]].build((None,) + self.plan.output_shapes[i])

    def compute_output_shape(self, input_shape):
        plan = plan_conv_shapes(self.spec, input_shape)
        batch = input_shape[0] if len(input_shape) == 4 else None
        return (batch,) + plan.output_shape

    # --- forward --------------------------------------------------------------------------------

    def _check_images(self, images):
        shape = tuple(images.shape)
        if len(shape) != 4:
            raise ValueError(
                f"ConvNet {self.name!r} expects images of shape (batch, height, width, "
                f"channels). Add a batch axis (images[None]) or a channel axis "
                f"(images[..., None]) as needed. Received: images of shape {shape}")
        built = self.plan.image_shape
        for axis, name in ((1, "height"), (2, "width"), (3, "channels")):
            if shape[axis] is not None and shape[axis] != built[axis - 1]:
                raise ValueError(
                    f"ConvNet {self.name!r} was built for images of shape {built} (height, "
                    f"width, channels): the {name} differs. The padding between layers is fixed "
                    f"at build time; build a new ConvNet (or model) for this image shape, or "
                    f"resize the images. Received: images of shape {shape[1:]}")

    def _forward(self, images, training):
        plan = self.plan
        assembled, outputs = [], []
        for i, layer in enumerate(self.spec.layers):
            if layer.inputs:
                x = _pad_concat([outputs[j] for j in layer.inputs], plan.input_pads[i])
            else:
                x = images
            assembled.append(x)
            y = self.ops[i](x)
            if i in self._norm_of:
                y = self.norms[self._norm_of[i]](y, training=training)
                y = keras.ops.relu(y)
            outputs.append(y)
        features = _pad_concat([outputs[i] for i in plan.loose_ends], plan.output_pads)
        return assembled, outputs, features

    def call(self, images, training=False):
        self._check_images(images)
        return self._forward(images, training)[2]

    def intermediates(self, images, training=False) -> Dict[str, Any]:
        """Every map of one forward pass, for inspection and tests.

        Returns a dict: ``"inputs"`` (list, layer ``i``'s assembled input: the image, or its
        inputs zero-padded and concatenated), ``"outputs"`` (list, layer ``i``'s output after
        batch normalization and ReLU for conv layers) and ``"features"`` (the layer's output).
        """
        if not self.built:
            self.build(tuple(images.shape))
            self.built = True
        self._check_images(images)
        assembled, outputs, features = self._forward(images, training)
        return {"inputs": assembled, "outputs": outputs, "features": features}

    # --- serialization ----------------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update({
            "spec": self.spec.to_dict(),
            "kernel_regularizer": (None if self._regularizer_from_decay
                                   else keras.regularizers.serialize(self.kernel_regularizer)),
            "weight_decay": self.weight_decay,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("kernel_regularizer") is not None:
            config["kernel_regularizer"] = keras.regularizers.deserialize(
                config["kernel_regularizer"])
        if config.get("kernel_initializer") is not None:
            config["kernel_initializer"] = keras.initializers.deserialize(
                config["kernel_initializer"])
        return cls(**config)


def build_conv_classifier(spec: SpecLike, input_shape: Sequence[int] = (32, 32, 3),
                          num_classes: int = 10, dropout: float = 0.0, weight_decay: float = 0.0,
                          **convnet_kwargs) -> keras.Model:
    """The paper's conv child: images -> `ConvNet` -> global average pooling -> softmax.

    ``Input(input_shape) -> ConvNet(spec) -> GlobalAveragePooling2D -> Dropout(dropout) (if
    > 0) -> Dense(num_classes, softmax)``. ``weight_decay`` is an L2 penalty on every conv
    kernel and on the dense kernel; other keyword arguments go to `ConvNet`. The model is not
    compiled.
    """
    spec = _as_spec(spec)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"Argument `num_classes` must be a positive integer. "
                         f"Received: num_classes={num_classes!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"Argument `dropout` must be in [0, 1). Received: dropout={dropout!r}")
    input_shape = tuple(input_shape)
    plan_conv_shapes(spec, input_shape)  # a clear error before any Keras layer complains
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    images = keras.Input(shape=input_shape, name="images")
    features = ConvNet(spec, weight_decay=weight_decay, name="convnet", **convnet_kwargs)(images)
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_last", name="pool")(features)
    if dropout:
        x = keras.layers.Dropout(float(dropout), name="dropout")(x)
    # Under a mixed policy (e.g. "mixed_float16") the softmax still runs in the variable dtype.
    policy = keras.config.dtype_policy()
    head_dtype = policy.variable_dtype if policy.compute_dtype != policy.variable_dtype else None
    probs = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer,
                               dtype=head_dtype, name="classifier")(x)
    return keras.Model(images, probs, name="conv_child")
