"""Architecture pictures without Graphviz: every spec kind draws to a real PNG and SVG, and
the layouts keep boxes apart and edges out of boxes they do not connect."""

import os

import numpy as np
import pytest

from nascell.enas_spec import (
    ENASConvCellSpec,
    ENASConvNode,
    ENASMacroLayer,
    ENASMacroSpec,
    enas_rnn_cell_spec,
)
from nascell.pictures import figures as pictures
from nascell.pictures import layout, render
from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC, ConvLayer, ConvSpec, rnn_cell_spec

# A 15-layer conv net with dense skips, strides and a pool (like the paper's Figure 7).
CONV15 = ConvSpec(layers=tuple(
    ConvLayer(3 + 2 * (i % 3), 1 + 2 * (i % 4), None if i == 7 else 24 + 12 * (i % 3),
              2 if i in (4, 9) else 1, 2 if i in (4, 9) else 1,
              inputs=tuple(j for j in range(i) if j == i - 1 or (i * 7 + j * 3) % 5 == 0),
              op="max_pool" if i == 7 else "conv")
    for i in range(15)))
ENAS_RNN = enas_rnn_cell_spec([0, 0, 1, 1, 2, 3, 0, 4, 6, 2, 9],
                              ["tanh", "relu", "identity", "sigmoid", "tanh", "relu", "relu",
                               "tanh", "sigmoid", "identity", "tanh", "relu"])
MICRO = ENASConvCellSpec(
    normal=(ENASConvNode((0, 1), ("sep_conv_3x3", "identity")),
            ENASConvNode((2, 0), ("max_pool_3x3", "avg_pool_3x3")),
            ENASConvNode((3, 1), ("sep_conv_5x5", "identity"))),
    reduction=(ENASConvNode((1, 0), ("sep_conv_5x5", "max_pool_3x3")),
               ENASConvNode((0, 2), ("identity", "avg_pool_3x3")),
               ENASConvNode((2, 3), ("sep_conv_3x3", "sep_conv_3x3"))))
MACRO = ENASMacroSpec(layers=(
    ENASMacroLayer("conv_3x3"), ENASMacroLayer("sep_conv_3x3", (0,)),
    ENASMacroLayer("max_pool_3x3"), ENASMacroLayer("conv_5x5", (0, 2)),
    ENASMacroLayer("avg_pool_3x3", (1, 3)), ENASMacroLayer("sep_conv_5x5", (0, 2, 4))))

PICTURES = {
    "nas_cell": lambda: pictures.cell_picture(NAS_CELL_SPEC),
    "figure5": lambda: pictures.cell_picture(FIGURE5_SPEC),
    "conv15": lambda: pictures.conv_picture(
        CONV15, (32, 32, 3), [(32, 32, 8)] * 15, (8, 8, 100)),
    "enas_rnn": lambda: pictures.enas_rnn_picture(ENAS_RNN),
    "enas_micro": lambda: pictures.enas_conv_picture(MICRO, (32, 32, 3), (64,)),
    "enas_macro": lambda: pictures.enas_macro_picture(MACRO, (32, 32, 3), (64,)),
}


def _overlaps(a, b) -> bool:
    return abs(a[0] - b[0]) < (a[2] + b[2]) / 2 and abs(a[1] - b[1]) < (a[3] + b[3]) / 2


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_layout_keeps_boxes_apart_and_edges_out_of_other_boxes(name):
    picture = PICTURES[name]()
    for panel in picture.panels:
        lay = render._layout(panel)
        assert set(lay.boxes) == {n.id for n in panel.nodes}
        ids = sorted(lay.boxes)
        for i, a in enumerate(ids):
            x, y, w, h = lay.boxes[a]
            assert 0 <= x - w / 2 and x + w / 2 <= lay.width, a
            assert 0 <= y - h / 2 and y + h / 2 <= lay.height, a
            for b in ids[i + 1:]:
                assert not _overlaps(lay.boxes[a], lay.boxes[b]), (a, b)
        assert len(lay.routes) == len(panel.edges)
        for edge, route in zip(panel.edges, lay.routes):
            assert route, edge
            for seg in route:
                for t in np.linspace(0, 1, 21):
                    px, py = render._bezier(seg, t)
                    for k, (bx, by, bw, bh) in lay.boxes.items():
                        if k not in (edge.src, edge.dst):
                            assert not (abs(px - bx) < bw / 2 - 1 and abs(py - by) < bh / 2 - 1), \
                                f"edge {edge.src}->{edge.dst} crosses box {k}"
            # The arrow ends on the destination's border, not inside or far from it.
            end = route[-1][3]
            bx, by, bw, bh = lay.boxes[edge.dst]
            assert abs(end[0] - bx) <= bw / 2 + 1 and abs(end[1] - by) <= bh / 2 + 1


def test_cell_tree_is_drawn_like_figure_8():
    picture = pictures.cell_picture(NAS_CELL_SPEC)
    panel = picture.panels[0]
    lay = render._layout(panel)
    box = lay.boxes
    # Bottom-up: inputs under the leaves, leaves in index order, the root on top, h_t above.
    leaves = [box[f"n{k}"] for k in range(8)]
    assert [b[0] for b in leaves] == sorted(b[0] for b in leaves)
    assert box["x0"][1] < leaves[0][1] < box["n8"][1] < box["n12"][1] < box["n14"][1] < \
        box["h_t"][1]
    # The inject sits between node 8 and node 12, fed by c_{t-1}; c_t leaves node 12.
    assert box["n8"][1] < box["inject"][1] < box["n12"][1]
    pairs = {(e.src, e.dst) for e in panel.edges}
    assert {("n8", "inject"), ("c_prev", "inject"), ("inject", "n12"), ("n12", "c_t"),
            ("n14", "h_t")} <= pairs
    assert ("n8", "n12") not in pairs
    assert sum(1 for e in panel.edges if e.dst.startswith("n") and e.src[0] in "xh") == 16
    labels = {n.id: n.label for n in panel.nodes}
    assert labels["n12"] == "node 12\nmult, identity"
    assert labels["n14"].startswith("node 14 (root)")


def test_inject_at_the_root_and_at_the_output_node():
    spec = rnn_cell_spec(4, [("add", "tanh")] * 7, ("mult", "sigmoid"), 6, 6)
    panel = pictures.cell_picture(spec).panels[0]
    pairs = {(e.src, e.dst) for e in panel.edges}
    assert ("n6", "inject") in pairs and ("inject", "h_t") in pairs and ("n6", "c_t") in pairs
    lay = render._layout(panel)
    assert lay.boxes["n6"][1] < lay.boxes["inject"][1] < lay.boxes["h_t"][1]


def test_conv_net_skips_are_brackets_in_their_own_tracks():
    panel = pictures.conv_picture(CONV15).panels[0]
    lay = render._layout(panel)
    column = {round(b[0], 3) for b in lay.boxes.values()}
    assert len(column) == 1  # one vertical chain
    skips = [(e, r) for e, r in zip(panel.edges, lay.routes)
             if e.src.startswith("l") and e.dst.startswith("l")
             and int(e.dst[1:]) != int(e.src[1:]) + 1]
    assert len(skips) >= 15
    # Each bracket runs down one vertical track; brackets whose spans meet use distinct ones.
    tracks = {}
    for e, route in skips:
        xs = {round(p[0], 3) for p in route[2]}
        assert len(xs) == 1
        tracks[e.src, e.dst] = (xs.pop(), int(e.src[1:]), int(e.dst[1:]))
    items = list(tracks.values())
    for i, (xa, a0, a1) in enumerate(items):
        for xb, b0, b1 in items[i + 1:]:
            if a0 <= b1 and b0 <= a1:
                assert xa != xb


def test_pav_is_exact_when_feasible_and_keeps_separations():
    assert layout._pav([0.0, 10.0, 30.0], [1, 1, 1], [5.0, 5.0]) == [0.0, 10.0, 30.0]
    xs = layout._pav([0.0, 0.0, 0.0], [1, 1, 1], [4.0, 6.0])
    assert xs[1] - xs[0] >= 4.0 - 1e-9 and xs[2] - xs[1] >= 6.0 - 1e-9
    assert abs(sum(xs)) < 1e-9  # centered on the common desired position


@pytest.mark.parametrize("name", ["nas_cell", "conv15", "enas_micro"])
def test_write_picture_png_and_svg(tmp_path, name):
    import matplotlib.image
    paths = render.write_picture(PICTURES[name](), str(tmp_path), stem="architecture")
    assert paths == [str(tmp_path / "architecture.png"), str(tmp_path / "architecture.svg")]
    with open(paths[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(paths[0])
    assert image.shape[0] > 300 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # not a blank page
    with open(paths[1], encoding="utf-8") as f:
        svg = f.read()
    assert "<svg" in svg
    expected = {"nas_cell": "node 14 (root)", "conv15": "layer 14: conv",
                "enas_micro": "reduction cell"}[name]
    assert expected in svg  # labels stay text in the SVG


def test_picture_for_every_kind_and_a_clear_error_otherwise():
    shapes = {"input_shape": [32, 32, 3], "output_shape": [64],
              "layer_output_shapes": [[32, 32, 8]] * 15}
    for spec in (NAS_CELL_SPEC, CONV15, ENAS_RNN, MICRO, MACRO):
        picture = pictures.picture_for(spec, shapes)
        assert picture.panels and picture.title
    assert "32x32x3" in pictures.picture_for(CONV15, shapes).panels[0].nodes[0].label
    with pytest.raises(ValueError, match="Argument `spec` must be a spec of a registered kind"):
        pictures.picture_for({"kind": "conv"})


def test_bad_format_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="Argument `formats`"):
        render.write_picture(PICTURES["figure5"](), str(tmp_path), formats=("png", "gif"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_graphviz_draws_the_same_picture(name):
    """One model, two renderers: the DOT source has every node (label in plain text) and
    every edge of the picture, skip connections dashed, each panel of several in a cluster."""
    import re

    from nascell.pictures import dot

    picture = PICTURES[name]()
    source = dot.to_dot(picture).source
    assert source.startswith(f"digraph {picture.name} {{") and "$" not in source
    several = len(picture.panels) > 1
    edge_lines = [line for line in source.splitlines() if re.match(r"\s*\w+ -> ", line)]
    for panel in picture.panels:
        prefix = f"{panel.name}_" if several else ""
        if several:
            assert f"subgraph cluster_{panel.name} {{" in source
        for node in panel.nodes:
            label = dot.plain(node.label).replace("\n", "\\n")
            assert re.search(rf'^\s*{prefix}{node.id} \[label="?{re.escape(label)}"? ', source,
                             re.M), node.id
        index = {n.id: i for i, n in enumerate(panel.nodes)}
        for edge in panel.edges:  # in order: a skip may join the neighbours a chain joins
            line = edge_lines.pop(0)
            assert re.fullmatch(rf"\s*{prefix}{edge.src} -> {prefix}{edge.dst}( \[.*\])?", line)
            skip = panel.layout == "chain" and (
                edge.bracket or index[edge.dst] != index[edge.src] + 1)
            assert ("style=dashed" in line) == (edge.dashed or skip), line
    assert edge_lines == []
