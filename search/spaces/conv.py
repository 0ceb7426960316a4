"""The paper's convolutional search spaces (Zoph & Le, sections 3.1-3.3, 4.1), decoding to
`ConvSpec`.

Per layer ``i``, in the controller's order (the paper's Figure 2/4):

* ``layer{i}/filters``: number of filters {24, 36, 48, 64} ({6, 12, 24, 36} with ``dense=True``);
  in v3 the same decision may also be ``"max_pool"``, a pooling layer that keeps its input's
  channels (so every token sequence decodes to exactly one spec and back);
* ``layer{i}/filter_height``, ``layer{i}/filter_width``: {1, 3, 5, 7} (the pooling window for
  a max_pool layer);
* v2 and v3: ``layer{i}/stride_height``, ``layer{i}/stride_width``: {1, 2, 3};
* ``layer{i}/inputs``: the anchor point, a `Skips` decision over layers ``0..i-1``.

v1 is the 15-layer space without strides or pooling (5.50% error in the paper), v2 adds
strides, v3 adds max pooling. The search grows the network (`DepthSchedule`): 6 layers at
first, 2 more every 1,600 sampled architectures, up to ``num_layers``; pass
``depth_schedule=False`` to search at full depth from the start.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from nascell.search.core.space import Categorical, DepthSchedule, SearchSpace, Skips, SpaceError
from nascell.spec import ConvLayer, ConvSpec

FILTER_SIZES = (1, 3, 5, 7)
FILTERS = (24, 36, 48, 64)
DENSE_FILTERS = (6, 12, 24, 36)
STRIDES = (1, 2, 3)
MAX_POOL = "max_pool"


def conv_space(version: int = 1, num_layers: int = 15, dense: bool = False,
               depth_schedule: bool = True, start_layers: int = 6, layers_step: int = 2,
               every: int = 1600, name: Optional[str] = None) -> SearchSpace:
    """A conv space: v1 (sizes, filters, skips), v2 (+ strides), v3 (+ max pooling)."""
    if version not in (1, 2, 3):
        raise SpaceError(f"conv space: argument `version` must be 1, 2 or 3. "
                         f"Received: version={version!r}")
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise SpaceError(f"conv space: argument `num_layers` must be an integer >= 1. "
                         f"Received: num_layers={num_layers!r}")
    strides = version >= 2
    pooling = version >= 3
    filters = tuple(DENSE_FILTERS if dense else FILTERS) + ((MAX_POOL,) if pooling else ())
    decisions: List[Any] = []
    for i in range(num_layers):
        decisions += [Categorical(f"layer{i}/filters", filters),
                      Categorical(f"layer{i}/filter_height", FILTER_SIZES),
                      Categorical(f"layer{i}/filter_width", FILTER_SIZES)]
        if strides:
            decisions += [Categorical(f"layer{i}/stride_height", STRIDES),
                          Categorical(f"layer{i}/stride_width", STRIDES)]
        decisions.append(Skips(f"layer{i}/inputs", num_candidates=i))
    per_layer = 6 if strides else 4
    schedule = None
    if depth_schedule:
        schedule = DepthSchedule(start=min(start_layers, num_layers), step=layers_step,
                                 every=every, maximum=num_layers, decisions_per_item=per_layer)

    def decode(d: Dict[str, Any]) -> ConvSpec:
        layers = []
        for i in range(len(d) // per_layer):
            f = d[f"layer{i}/filters"]
            layers.append(ConvLayer(
                filter_height=d[f"layer{i}/filter_height"],
                filter_width=d[f"layer{i}/filter_width"],
                filters=None if f == MAX_POOL else f,
                stride_height=d.get(f"layer{i}/stride_height", 1),
                stride_width=d.get(f"layer{i}/stride_width", 1),
                inputs=tuple(d[f"layer{i}/inputs"]),
                op=MAX_POOL if f == MAX_POOL else "conv"))
        return ConvSpec(layers=tuple(layers))

    def encode(spec: ConvSpec) -> Dict[str, Any]:
        if not isinstance(spec, ConvSpec):
            raise SpaceError(f"The conv space encodes a ConvSpec. Received: spec of type "
                             f"{type(spec).__name__}")
        out: Dict[str, Any] = {}
        for i, layer in enumerate(spec.layers):
            if layer.op == MAX_POOL and not pooling:
                raise SpaceError(f"layer {i} is a max_pool layer; conv_v{version} has no "
                                 "pooling (use conv_v3)")
            if not strides and (layer.stride_height, layer.stride_width) != (1, 1):
                raise SpaceError(f"layer {i} has strides ({layer.stride_height}, "
                                 f"{layer.stride_width}); conv_v{version} has none (use "
                                 "conv_v2 or conv_v3)")
            out[f"layer{i}/filters"] = MAX_POOL if layer.op == MAX_POOL else layer.filters
            out[f"layer{i}/filter_height"] = layer.filter_height
            out[f"layer{i}/filter_width"] = layer.filter_width
            if strides:
                out[f"layer{i}/stride_height"] = layer.stride_height
                out[f"layer{i}/stride_width"] = layer.stride_width
            out[f"layer{i}/inputs"] = tuple(layer.inputs)
        return out

    options = {"num_layers": num_layers, "dense": dense, "depth_schedule": depth_schedule,
               "start_layers": start_layers, "layers_step": layers_step, "every": every}
    return SearchSpace(name or f"conv_v{version}", decisions, decode=decode, encode=encode,
                       schedule=schedule, options=options)


def conv_v1(**options: Any) -> SearchSpace:
    """Filter sizes, filters and skips (the paper's 15-layer v1)."""
    return conv_space(1, **options)


def conv_v2(**options: Any) -> SearchSpace:
    """v1 + strides {1, 2, 3}."""
    return conv_space(2, **options)


def conv_v3(**options: Any) -> SearchSpace:
    """v2 + max pooling layers."""
    return conv_space(3, **options)
