"""Architecture diagrams as Graphviz source: a cell tree (paper Figure 8), a conv net (Figure 7).

`cell_graph` draws a recurrent cell bottom-up: the inputs ``x_t`` and ``h_{t-1}`` feed every
leaf, each node shows its index, combine and activation, the memory ``c_{t-1}`` enters through
the cell-inject node, and ``c_t`` leaves from the output node (before its activation). The root
gives ``h_t``.

`conv_graph` draws a conv net top-down: the image, one box per layer (op, filter size, filters,
strides and, when known, the output shape), an edge per input (skip connections dashed), and
the final concatenation of the loose ends.

`enas_rnn_graph` draws an ENAS recurrent cell (Pham et al. 2018, Figure 1): ``x_t`` and
``h_{t-1}`` feed node 0, each later node reads the node it picked, every node shows its
activation (each is a highway unit), and the loose ends are averaged into ``h_t``, the cell's
output and only state.

`enas_conv_graph` draws the two cells of the ENAS micro space side by side (Figure 5 style):
the cell inputs ``h[i-2]`` and ``h[i-1]``, one box per op of each node, the node's sum, and the
concatenation of the loose ends. `enas_macro_graph` draws the macro network: stem, the layers
in a chain with their ops, the skip connections (dashed, summed into a layer's output), the
resolution halvings, and the pooled features.

Each spec kind picks its drawing (`nascell.kinds.SpecKind.diagram`); the exporter writes it.
`write_diagram` always writes the ``.dot`` source; it renders PNG and SVG with Graphviz's
``dot`` binary when it is on the PATH, and otherwise draws the kind's `nascell.pictures`
picture with matplotlib (`nascell.kinds.SpecKind.picture`).
"""

from __future__ import annotations

import os
import shutil
from typing import List, Optional

import graphviz
from absl import logging

from nascell.enas_spec import ENASConvCellSpec, ENASMacroSpec, ENASRNNCellSpec, conv_cell_loose_ends
from nascell.spec import ConvSpec, RNNCellSpec

_LEAF_COLOR = "#dbe9f6"
_NODE_COLOR = "#eeeeee"
_CELL_COLOR = "#fde2c8"
_NL = "\\n"  # a line break inside a DOT label (the two characters backslash, n)
_NODE_ATTR = {"fontname": "Helvetica", "shape": "box", "style": "filled,rounded"}


def _graph_attr(rankdir: str, label: str):
    return {"rankdir": rankdir, "fontname": "Helvetica", "label": label, "labelloc": "t"}


def cell_graph(spec: RNNCellSpec, title: Optional[str] = None) -> graphviz.Digraph:
    """The cell tree of an `RNNCellSpec`, like Figure 8 of Zoph & Le (2017)."""
    g = graphviz.Digraph("cell", graph_attr=_graph_attr(
        "BT", title or f"recurrent cell (base {spec.base})"), node_attr=_NODE_ATTR)
    with g.subgraph(name="inputs") as s:
        s.attr(rank="same")
        s.node("x_t", "x_t", shape="ellipse", fillcolor="white")
        s.node("h_prev", "h_{t-1}", shape="ellipse", fillcolor="white")
    inject, output = spec.cell_index.inject, spec.cell_index.output
    for k, op in enumerate(spec.nodes):
        leaf = k < spec.base
        extra = []
        if k == output:
            extra.append("c_t = pre-activation")
        label = _NL.join([f"node {k}" + (" (root)" if k == spec.root else ""),
                           f"{op.combine}, {op.activation}"] + extra)
        g.node(f"n{k}", label, fillcolor=_LEAF_COLOR if leaf else _NODE_COLOR,
               penwidth="2" if k in (inject, output) else "1")
        if leaf:
            g.edge("x_t", f"n{k}", label=f"W_{k}", fontsize="9")
            g.edge("h_prev", f"n{k}", label=f"U_{k}", fontsize="9")

    # The cell inject: node `inject`'s output, combined with c_{t-1}, is what its parent reads.
    inj = spec.cell_inject
    g.node("inject", f"cell inject{_NL}{inj.combine}, {inj.activation}", fillcolor=_CELL_COLOR)
    g.node("c_prev", "c_{t-1}", shape="ellipse", fillcolor=_CELL_COLOR)
    g.edge(f"n{inject}", "inject")
    g.edge("c_prev", "inject")
    for k in range(spec.base, spec.num_nodes):
        for child in spec.children(k):
            g.edge("inject" if child == inject else f"n{child}", f"n{k}")

    g.node("h_t", "h_t", shape="ellipse", fillcolor="white")
    g.edge("inject" if spec.root == inject else f"n{spec.root}", "h_t")
    g.node("c_t", "c_t", shape="ellipse", fillcolor=_CELL_COLOR)
    g.edge(f"n{output}", "c_t", style="dashed", label="before activation", fontsize="9")
    return g


def _conv_label(i: int, layer, shape=None) -> str:
    if layer.op == "conv":
        lines = [f"layer {i}: conv {layer.filter_height}x{layer.filter_width}",
                 f"{layer.filters} filters, BN, ReLU"]
    else:
        lines = [f"layer {i}: max_pool {layer.filter_height}x{layer.filter_width}"]
    if (layer.stride_height, layer.stride_width) != (1, 1):
        lines.append(f"stride {layer.stride_height}x{layer.stride_width}")
    if shape is not None:
        lines.append("out " + "x".join(str(d) for d in shape))
    return _NL.join(lines)


def conv_graph(spec: ConvSpec, image_shape=None, output_shapes: Optional[List] = None,
               features_shape=None, title: Optional[str] = None) -> graphviz.Digraph:
    """A conv spec's layers and skip connections, like Figure 7 of Zoph & Le (2017)."""
    g = graphviz.Digraph("convnet", graph_attr=_graph_attr(
        "TB", title or f"conv net ({spec.num_layers} layers)"), node_attr=_NODE_ATTR)
    image_label = "image" + (_NL + "x".join(str(d) for d in image_shape) if image_shape else "")
    g.node("image", image_label, shape="ellipse", fillcolor="white")
    for i, layer in enumerate(spec.layers):
        shape = output_shapes[i] if output_shapes else None
        g.node(f"l{i}", _conv_label(i, layer, shape),
               fillcolor=_LEAF_COLOR if layer.op == "conv" else _NODE_COLOR)
        if not layer.inputs:
            g.edge("image", f"l{i}")
        for j in layer.inputs:
            skip = j != i - 1
            g.edge(f"l{j}", f"l{i}", style="dashed" if skip else "solid",
                   color="#c0504d" if skip else "black")
    label = f"concat loose ends{_NL}(zero-padded)"
    if features_shape is not None:
        label += f"{_NL}features " + "x".join(str(d) for d in features_shape)
    g.node("features", label, shape="ellipse", fillcolor=_CELL_COLOR)
    for i in spec.loose_ends():
        g.edge(f"l{i}", "features")
    return g


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def enas_rnn_graph(spec: ENASRNNCellSpec, title: Optional[str] = None) -> graphviz.Digraph:
    """The DAG of an `ENASRNNCellSpec`: nodes with their activations, the loose ends averaged."""
    g = graphviz.Digraph("enas_cell", graph_attr=_graph_attr(
        "BT", title or f"ENAS recurrent cell ({spec.num_nodes} nodes)"), node_attr=_NODE_ATTR)
    with g.subgraph(name="inputs") as s:
        s.attr(rank="same")
        s.node("x_t", "x_t", shape="ellipse", fillcolor="white")
        s.node("h_prev", "h_{t-1}", shape="ellipse", fillcolor="white")
    loose = spec.loose_ends()
    for i, node in enumerate(spec.nodes):
        g.node(f"n{i}", f"node {i}{_NL}{node.activation} (highway)",
               fillcolor=_LEAF_COLOR if i == 0 else _NODE_COLOR,
               penwidth="2" if i in loose else "1")
        if node.input is None:
            g.edge("x_t", "n0")
            g.edge("h_prev", "n0")
        else:
            g.edge(f"n{node.input}", f"n{i}")
    g.node("avg", f"average{_NL}({len(loose)} loose end{'s' if len(loose) != 1 else ''})",
           fillcolor=_CELL_COLOR)
    for i in loose:
        g.edge(f"n{i}", "avg")
    g.node("h_t", "h_t (output and state)", shape="ellipse", fillcolor="white")
    g.edge("avg", "h_t")
    return g


def _enas_cell_cluster(g: graphviz.Digraph, prefix: str, label: str, nodes) -> None:
    with g.subgraph(name=f"cluster_{prefix}") as s:
        s.attr(label=label, style="rounded", color="#999999")
        s.node(f"{prefix}_in0", "h[i-2]", shape="ellipse", fillcolor="white")
        s.node(f"{prefix}_in1", "h[i-1]", shape="ellipse", fillcolor="white")
        for k, node in enumerate(nodes):
            add = f"{prefix}_n{k}"
            s.node(add, f"node {k}{_NL}add", fillcolor=_NODE_COLOR)
            for slot, (index, op) in enumerate(zip(node.inputs, node.ops)):
                box = f"{prefix}_n{k}_op{slot}"
                s.node(box, op, fillcolor=_LEAF_COLOR, fontsize="10")
                src = f"{prefix}_in{index}" if index < 2 else f"{prefix}_n{index - 2}"
                s.edge(src, box)
                s.edge(box, add)
        out = f"{prefix}_out"
        s.node(out, f"concat{_NL}(loose ends)", shape="ellipse", fillcolor=_CELL_COLOR)
        for k in conv_cell_loose_ends(nodes):
            s.edge(f"{prefix}_n{k}", out)


def enas_conv_graph(spec: ENASConvCellSpec, image_shape=None, features_shape=None,
                    title: Optional[str] = None) -> graphviz.Digraph:
    """The normal and the reduction cell of an `ENASConvCellSpec`, each node with its ops."""
    suffix = ""
    if image_shape is not None:
        suffix = f", images {_shape_text(image_shape)}"
    if features_shape is not None:
        suffix += f" -> features {_shape_text(features_shape)}"
    g = graphviz.Digraph("enas_conv", graph_attr=_graph_attr(
        "TB", title or f"ENAS micro cells ({spec.num_nodes} nodes each){suffix}"),
        node_attr=_NODE_ATTR)
    _enas_cell_cluster(g, "normal", "normal cell", spec.normal)
    _enas_cell_cluster(g, "reduction", "reduction cell (inputs halved first)", spec.reduction)
    return g


def macro_layer_lines(spec: ENASMacroSpec) -> List[List[str]]:
    """Each layer's label lines in a picture of an ENAS macro network: its op, its skips, and
    whether the network halves after it (the Graphviz and the matplotlib renderers share them)."""
    from nascell.enas_cells import macro_pool_layers

    pools = set(macro_pool_layers(spec.num_layers))
    out = []
    for i, layer in enumerate(spec.layers):
        lines = [f"layer {i}: {layer.op}"]
        if layer.skips:
            lines.append(f"+ skips {', '.join(str(j) for j in layer.skips)}, BN")
        if i in pools:
            lines.append("then halve (avg pool 2x2)")
        out.append(lines)
    return out


def enas_macro_graph(spec: ENASMacroSpec, image_shape=None, features_shape=None,
                     title: Optional[str] = None) -> graphviz.Digraph:
    """The layers of an `ENASMacroSpec` in a chain, with their skip connections."""
    g = graphviz.Digraph("enas_macro", graph_attr=_graph_attr(
        "TB", title or f"ENAS macro network ({spec.num_layers} layers)"), node_attr=_NODE_ATTR)
    label = "image" + (_NL + _shape_text(image_shape) if image_shape else "")
    g.node("image", label, shape="ellipse", fillcolor="white")
    g.node("stem", f"stem{_NL}conv 3x3, BN", fillcolor=_NODE_COLOR)
    g.edge("image", "stem")
    prev = "stem"
    for i, (layer, lines) in enumerate(zip(spec.layers, macro_layer_lines(spec))):
        g.node(f"l{i}", _NL.join(lines),
               fillcolor=_NODE_COLOR if "pool" in layer.op else _LEAF_COLOR)
        g.edge(prev, f"l{i}")
        for j in layer.skips:
            g.edge(f"l{j}", f"l{i}", style="dashed", color="#c0504d")
        prev = f"l{i}"
    label = "global average pool"
    if features_shape is not None:
        label += f"{_NL}features " + _shape_text(features_shape)
    g.node("features", label, shape="ellipse", fillcolor=_CELL_COLOR)
    g.edge(prev, "features")
    return g


def dot_binary() -> Optional[str]:
    """The path of Graphviz's ``dot``, or None."""
    return shutil.which("dot")


def write_diagram(graph: Optional[graphviz.Digraph], directory: str,
                  stem: str = "architecture", formats=("png", "svg"),
                  picture=None) -> List[str]:
    """Write ``<stem>.dot`` (when there is a ``graph``) and ``<stem>.<fmt>``; returns the files.

    The images come from Graphviz' ``dot`` where it is installed, and otherwise from
    ``picture`` (a `nascell.pictures.Picture`, drawn with matplotlib). A picture that cannot be
    drawn is a warning, not an error: the ``.dot`` source is still there to render elsewhere.
    """
    written = []
    if graph is not None:
        dot_path = os.path.join(directory, f"{stem}.dot")
        with open(dot_path, "w", encoding="utf-8") as f:
            f.write(graph.source)
        written.append(dot_path)
    if graph is not None and dot_binary() is not None:
        return written + _render_with_dot(graph, directory, stem, formats)
    if picture is not None:
        from nascell.pictures import write_picture
        try:
            return written + write_picture(picture, directory, stem, formats)
        except Exception as e:  # a drawing problem must not cost the export
            logging.warning("could not draw %s.png/.svg with matplotlib (%s: %s)%s", stem,
                            type(e).__name__, e, "; the .dot source is there" if graph else "")
            for fmt in formats:
                path = os.path.join(directory, f"{stem}.{fmt}")
                if os.path.exists(path):
                    os.remove(path)
            return written
    if graph is not None:
        logging.info("Graphviz 'dot' is not installed, so %s.dot was written but not "
                     "rendered. Render it with: dot -Tpng %s.dot -o %s.png (or -Tsvg), where "
                     "'dot' is installed (the graphviz system package: apt-get install "
                     "graphviz).", stem, stem, stem)
    return written


def _render_with_dot(graph: graphviz.Digraph, directory: str, stem: str, formats) -> List[str]:
    written = []
    for fmt in formats:
        out = os.path.join(directory, f"{stem}.{fmt}")
        try:
            with open(out, "wb") as f:
                f.write(graph.pipe(format=fmt))
            written.append(out)
        except (graphviz.backend.ExecutableNotFound, graphviz.backend.CalledProcessError) as e:
            logging.warning("could not render %s: %s", out, e)
            if os.path.exists(out):
                os.remove(out)
    return written
