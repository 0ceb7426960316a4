"""Hypothesis strategies for specs that the paper's search spaces can produce.

    from tests.core.strategies import conv_specs
    @given(conv_specs(max_layers=8))
    def test_something(spec): ...

`conv_specs` draws `ConvSpec`s from the conv spaces of Zoph & Le (sections 3.1-3.3, 4.1):
filter heights and widths in {1, 3, 5, 7}, filters in {24, 36, 48, 64} (or the dense
variant's {6, 12, 24, 36}), strides in {1, 2, 3} per axis, optional max_pool layers, and any
subset of earlier layers as skip connections (the empty subset reads the image).
"""

from __future__ import annotations

from typing import Sequence

from hypothesis import strategies as st

from nascell.spec import ConvLayer, ConvSpec

FILTER_SIZES = (1, 3, 5, 7)
PAPER_FILTERS = (24, 36, 48, 64)
DENSE_FILTERS = (6, 12, 24, 36)
STRIDES = (1, 2, 3)


@st.composite
def conv_layers(draw, index: int, filters: Sequence[int] = PAPER_FILTERS,
                strides: Sequence[int] = STRIDES, pool_probability_weight: int = 1):
    """One `ConvLayer` at position ``index``: a conv (or a max_pool) reading a random subset
    of layers ``0..index-1``."""
    op = draw(st.sampled_from(["conv"] * 4 + ["max_pool"] * pool_probability_weight))
    inputs = draw(st.lists(st.integers(0, index - 1), unique=True, max_size=index)
                  if index else st.just([]))
    return ConvLayer(
        filter_height=draw(st.sampled_from(FILTER_SIZES)),
        filter_width=draw(st.sampled_from(FILTER_SIZES)),
        filters=draw(st.sampled_from(tuple(filters))) if op == "conv" else None,
        stride_height=draw(st.sampled_from(tuple(strides))),
        stride_width=draw(st.sampled_from(tuple(strides))),
        inputs=tuple(inputs), op=op)


@st.composite
def conv_specs(draw, min_layers: int = 1, max_layers: int = 8,
               filters: Sequence[int] | None = None, strides: Sequence[int] = STRIDES,
               pooling: bool = True):
    """A `ConvSpec` of ``min_layers..max_layers`` layers from the paper's conv spaces.

    ``filters=None`` picks, per spec, the paper's filter set or the dense variant's; pass a
    tuple to fix it. ``strides=(1,)`` gives the space without strides; ``pooling=False`` the
    space without max_pool layers.
    """
    if filters is None:
        filters = draw(st.sampled_from([PAPER_FILTERS, DENSE_FILTERS]))
    depth = draw(st.integers(min_layers, max_layers))
    layers = [draw(conv_layers(i, filters=filters, strides=strides,
                               pool_probability_weight=1 if pooling else 0))
              for i in range(depth)]
    return ConvSpec(layers=tuple(layers))
