"""`ConvSpec` (``"kind": "conv"``): a convolutional network with skip connections, Zoph & Le
sections 3.1-3.3.

An ordered list of `ConvLayer`s (a convolution or a max pooling), each reading the image or
earlier layers. docs/specs.md describes the format; `nascell.conv` builds the network.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, List, Optional, Tuple

from nascell.spec_base import SpecError, _check_int, _check_keys, _fail, _SpecBase

CONV_OPS: Tuple[str, ...] = ("conv", "max_pool")


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One layer of a conv child.

    ``op="conv"``: a ``filter_height x filter_width`` convolution with ``filters`` output
    channels and the given strides, followed by batch normalization and ReLU.
    ``op="max_pool"``: a max pooling layer whose window is ``filter_height x filter_width``;
    ``filters`` must be None (it keeps its input's channels).
    ``inputs``: indices of earlier layers this layer reads; empty means it reads the image.
    """

    filter_height: int = 3
    filter_width: int = 3
    filters: Optional[int] = 36
    stride_height: int = 1
    stride_width: int = 1
    inputs: Tuple[int, ...] = ()
    op: str = "conv"

    def __post_init__(self):
        if self.op not in CONV_OPS:
            _fail("op", self.op, f"allowed: {list(CONV_OPS)}")
        for name in ("filter_height", "filter_width", "stride_height", "stride_width"):
            _check_int(name, getattr(self, name), 1)
        if self.op == "conv":
            _check_int("filters", self.filters, 1)
        elif self.filters is not None:
            _fail("filters", self.filters, "a max_pool layer keeps its input's channels: use None")
        inputs = self.inputs
        if isinstance(inputs, (str, bytes)) or not isinstance(inputs, (list, tuple)):
            _fail("inputs", inputs, "expected a list of earlier layer indices")
        inputs = tuple(inputs)
        for j in inputs:
            _check_int("inputs", j, 0)
        if len(set(inputs)) != len(inputs):
            _fail("inputs", list(inputs), "each earlier layer may be listed once")
        object.__setattr__(self, "inputs", tuple(sorted(inputs)))

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["inputs"] = list(self.inputs)
        return d


@dataclasses.dataclass(frozen=True)
class ConvSpec(_SpecBase):
    """An ordered list of conv / max_pool layers with skip connections (see `ConvLayer`)."""

    kind: ClassVar[str] = "conv"

    layers: Tuple[ConvLayer, ...]

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            _fail("layers", [], "a conv spec needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, ConvLayer):
                _fail(f"layers[{i}]", layer, "expected a ConvLayer")
            for j in layer.inputs:
                if j >= i:
                    _fail(f"layers[{i}].inputs", list(layer.inputs),
                                f"a layer may only read earlier layers (indices 0..{i - 1})")
        object.__setattr__(self, "layers", layers)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def loose_ends(self) -> List[int]:
        """Layers whose output no later layer reads (the last layer always counts)."""
        read = {j for layer in self.layers for j in layer.inputs}
        return [i for i in range(len(self.layers)) if i not in read or i == len(self.layers) - 1]

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ConvSpec":
        _check_keys("conv", data, ("layers",), ("kind",))
        if data.get("kind", cls.kind) != cls.kind:
            _fail("kind", data["kind"], f"expected {cls.kind!r}")
        if not isinstance(data["layers"], list):
            _fail("layers", data["layers"], "expected a list of layer objects")
        fields = [f.name for f in dataclasses.fields(ConvLayer)]
        layers = []
        for i, raw in enumerate(data["layers"]):
            if not isinstance(raw, dict):
                _fail(f"layers[{i}]", raw, "expected a JSON object")
            unknown = sorted(set(raw) - set(fields))
            if unknown:
                raise SpecError(f"invalid spec field 'layers[{i}]': unknown key(s) {unknown}; "
                                                f"expected keys {fields}")
            try:
                layers.append(ConvLayer(**raw))
            except SpecError as e:
                raise SpecError(f"layers[{i}]: {e}") from None
        return cls(layers=tuple(layers))
