"""The architecture figure of every spec kind, built once as a renderer-neutral `Picture`.

Graphviz (`nascell.pictures.dot`) and matplotlib (`nascell.pictures.render`) draw the same
`Picture`; nothing else builds a figure.

* `cell_picture`: a recurrent cell tree like Figure 8 of Zoph & Le (2017), bottom-up: each leaf
  reads ``x_t`` and ``h_{t-1}``, each node shows its combine and activation, the memory
  ``c_{t-1}`` enters through the cell-inject node, ``c_t`` leaves from the output node (before
  its activation) and the root gives ``h_t``.
* `conv_picture`: a conv net like Figure 7, top-down: the image, one box per layer (op, filter
  size, filters, strides, output shape), skip connections as coloured brackets (one colour per
  source layer), and the concatenation of the loose ends.
* `enas_rnn_picture`: an ENAS recurrent cell: ``x_t`` and ``h_{t-1}`` feed node 0, each node
  reads the node it picked, and the loose ends are averaged into ``h_t``.
* `enas_conv_picture`: the normal and reduction cells of an ENAS micro net side by side.
* `enas_macro_picture`: an ENAS macro net: stem, layers in a chain, skips summed in.

Each spec kind picks its picture (`nascell.kinds.SpecKind.picture`); `picture_for(spec,
shapes)` asks the kind.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from nascell.enas_spec import ENASConvCellSpec, ENASMacroSpec, ENASRNNCellSpec, conv_cell_loose_ends
from nascell.pictures.model import (
    INPUT,
    LEAF,
    MEMORY,
    NODE,
    SKIP_COLORS,
    Edge,
    Node,
    Panel,
    Picture,
)
from nascell.spec import ConvSpec, RNNCellSpec

__all__ = ["cell_picture", "conv_picture", "enas_rnn_picture", "enas_conv_picture",
           "enas_macro_picture", "macro_layer_lines", "picture_for"]


def _shape(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def cell_picture(spec: RNNCellSpec, title: Optional[str] = None) -> Picture:
    """The cell tree of an `RNNCellSpec` (paper Figure 8)."""
    levels = spec.levels()
    level_of = {k: depth for depth, level in enumerate(levels) for k in level}
    inject, output, root = spec.cell_index.inject, spec.cell_index.output, spec.root

    def rank(k: int) -> int:  # tree levels on odd ranks; even ranks hold the cell inject
        return 1 + 2 * level_of[k]

    nodes: List[Node] = []
    edges: List[Edge] = []
    for k in levels[0]:
        nodes.append(Node(f"x{k}", "$x_t$", "ellipse", INPUT, rank=0, small=True))
        nodes.append(Node(f"h{k}", "$h_{t-1}$", "ellipse", INPUT, rank=0, small=True))
    for k, op in enumerate(spec.nodes):
        name = f"node {k}" + (" (root)" if k == root else "")
        nodes.append(Node(f"n{k}", f"{name}\n{op.combine}, {op.activation}",
                          fill=LEAF if k < spec.base else NODE, bold=k in (inject, output),
                          rank=rank(k)))
        if k < spec.base:
            edges.append(Edge(f"x{k}", f"n{k}"))
            edges.append(Edge(f"h{k}", f"n{k}"))
        if k == inject:  # listed next to its node, so the layout starts with it there
            nodes.append(Node("c_prev", "$c_{t-1}$", "ellipse", MEMORY, rank=rank(inject)))
    inj = spec.cell_inject
    nodes.append(Node("inject", f"cell inject\n{inj.combine}, {inj.activation}", fill=MEMORY,
                      rank=rank(inject) + 1))
    edges.append(Edge(f"n{inject}", "inject"))
    edges.append(Edge("c_prev", "inject"))
    for k in range(spec.base, spec.num_nodes):
        for child in spec.children(k):
            edges.append(Edge("inject" if child == inject else f"n{child}", f"n{k}"))
    top = rank(root) + (2 if inject == root else 1)
    nodes.append(Node("h_t", "$h_t$", "ellipse", INPUT, rank=top))
    edges.append(Edge("inject" if inject == root else f"n{root}", "h_t"))
    nodes.append(Node("c_t", "$c_t$\nbefore activation", "ellipse", MEMORY,
                      rank=rank(output) + 1, small=True))
    edges.append(Edge(f"n{output}", "c_t", dashed=True))
    note = (f"Leaf $k$: combine($x_t W_k$, $h_{{t-1}} U_k + b_k$), then its activation. The "
            f"cell inject replaces node {inject}'s output, as its parent reads it, with "
            f"{inj.activation}({inj.combine}(node {inject}, $c_{{t-1}}$)).\n"
            f"$c_t$ is node {output} before its activation. Bold boxes: node {inject} (inject) "
            f"and node {output} ($c_t$).")
    return Picture(title or f"recurrent cell (base {spec.base})",
                   [Panel(nodes, edges, "layered", upward=True)], note, name="cell")


def _conv_label(i: int, layer, shape=None) -> str:
    size = f"{layer.filter_height}x{layer.filter_width}"
    if layer.op == "conv":
        lines = [f"layer {i}: conv {size}", f"{layer.filters} filters, BN, ReLU"]
    else:
        lines = [f"layer {i}: max_pool {size}"]
    if (layer.stride_height, layer.stride_width) != (1, 1):
        lines.append(f"stride {layer.stride_height}x{layer.stride_width}")
    if shape is not None:
        lines.append("out " + _shape(shape))
    return "\n".join(lines)


def _skip(j: int, i: int, dashed: bool = False) -> Edge:
    return Edge(f"l{j}", f"l{i}", dashed=dashed, color=SKIP_COLORS[j % len(SKIP_COLORS)],
                bracket=True)


def conv_picture(spec: ConvSpec, image_shape=None, output_shapes: Optional[Sequence] = None,
                 features_shape=None, title: Optional[str] = None) -> Picture:
    """A conv spec's layers and skip connections (paper Figure 7)."""
    nodes = [Node("image", "image" + (f"\n{_shape(image_shape)}" if image_shape else ""),
                  "ellipse", INPUT)]
    edges: List[Edge] = []
    for i, layer in enumerate(spec.layers):
        shape = output_shapes[i] if output_shapes else None
        nodes.append(Node(f"l{i}", _conv_label(i, layer, shape),
                          fill=LEAF if layer.op == "conv" else NODE))
        if not layer.inputs:
            edges.append(Edge("image", f"l{i}", side="left"))
        for j in layer.inputs:
            edges.append(Edge(f"l{j}", f"l{i}") if j == i - 1 else _skip(j, i))
    label = "concat loose ends\n(zero-padded)"
    if features_shape is not None:
        label += f"\nfeatures {_shape(features_shape)}"
    nodes.append(Node("features", label, "ellipse", MEMORY))
    for i in spec.loose_ends():
        edges.append(Edge(f"l{i}", "features", side="left"))
    note = "Solid arrows: a layer reads the one above. Brackets on the right: skip " \
           "connections (colour of the source layer), concatenated on input."
    return Picture(title or f"conv net ({spec.num_layers} layers)",
                   [Panel(nodes, edges, "chain")], note, name="convnet")


def enas_rnn_picture(spec: ENASRNNCellSpec, title: Optional[str] = None) -> Picture:
    """The DAG of an `ENASRNNCellSpec`: nodes with their activations, the loose ends averaged."""
    loose = spec.loose_ends()
    nodes = [Node("x_t", "$x_t$", "ellipse", INPUT), Node("h_prev", "$h_{t-1}$", "ellipse", INPUT)]
    edges = [Edge("x_t", "n0"), Edge("h_prev", "n0")]
    for i, node in enumerate(spec.nodes):
        nodes.append(Node(f"n{i}", f"node {i}\n{node.activation} (highway)",
                          fill=LEAF if i == 0 else NODE, bold=i in loose))
        if node.input is not None:
            edges.append(Edge(f"n{node.input}", f"n{i}"))
    nodes.append(Node("avg", f"average\n({len(loose)} loose end{'s' if len(loose) != 1 else ''})",
                      fill=MEMORY))
    edges += [Edge(f"n{i}", "avg") for i in loose]
    nodes.append(Node("h_t", "$h_t$ (output and state)", "ellipse", INPUT))
    edges.append(Edge("avg", "h_t"))
    note = (r"Each node is a highway unit $c \cdot f(h_{in} W) + (1 - c) \cdot h_{in}$, "
            r"$c = \sigma(h_{in} W_c)$, $h_{in}$ the node it reads; node 0 projects $x_t$ and "
            "\n"
            r"$h_{t-1}$ together and its $h_{in}$ is $h_{t-1}$. Bold boxes: loose ends.")
    return Picture(title or f"ENAS recurrent cell ({spec.num_nodes} nodes)",
                   [Panel(nodes, edges, "layered", upward=True)], note, name="enas_cell")


def _enas_cell_panel(name: str, label: str, cell_nodes) -> Panel:
    nodes = [Node("in0", "h[i-2]", "ellipse", INPUT), Node("in1", "h[i-1]", "ellipse", INPUT)]
    edges: List[Edge] = []
    for k, node in enumerate(cell_nodes):
        for slot, (index, op) in enumerate(zip(node.inputs, node.ops)):
            box = f"n{k}_op{slot}"
            nodes.append(Node(box, op, fill=LEAF, small=True))
            edges.append(Edge(f"in{index}" if index < 2 else f"n{index - 2}", box))
            edges.append(Edge(box, f"n{k}"))
        nodes.append(Node(f"n{k}", f"node {k}: add"))
    nodes.append(Node("out", "concat\n(loose ends)", "ellipse", MEMORY))
    edges += [Edge(f"n{k}", "out") for k in conv_cell_loose_ends(cell_nodes)]
    return Panel(nodes, edges, "layered", title=label, name=name)


def enas_conv_picture(spec: ENASConvCellSpec, image_shape=None, features_shape=None,
                      title: Optional[str] = None) -> Picture:
    """The normal and the reduction cell of an `ENASConvCellSpec`, each node with its ops."""
    suffix = f", images {_shape(image_shape)}" if image_shape is not None else ""
    if features_shape is not None:
        suffix += f" -> features {_shape(features_shape)}"
    return Picture(title or f"ENAS micro cells ({spec.num_nodes} nodes each){suffix}",
                   [_enas_cell_panel("normal", "normal cell", spec.normal),
                    _enas_cell_panel("reduction", "reduction cell (inputs halved first)",
                                     spec.reduction)], name="enas_conv")


def enas_macro_picture(spec: ENASMacroSpec, image_shape=None, features_shape=None,
                       title: Optional[str] = None) -> Picture:
    """The layers of an `ENASMacroSpec` in a chain, with their skip connections."""
    nodes = [Node("image", "image" + (f"\n{_shape(image_shape)}" if image_shape else ""),
                  "ellipse", INPUT),
             Node("stem", "stem\nconv 3x3, BN")]
    edges = [Edge("image", "stem"), Edge("stem", "l0")]
    for i, (layer, lines) in enumerate(zip(spec.layers, macro_layer_lines(spec))):
        nodes.append(Node(f"l{i}", "\n".join(lines), fill=NODE if "pool" in layer.op else LEAF))
        if i:
            edges.append(Edge(f"l{i - 1}", f"l{i}"))
        edges += [_skip(j, i, dashed=True) for j in layer.skips]
    label = "global average pool"
    if features_shape is not None:
        label += f"\nfeatures {_shape(features_shape)}"
    nodes.append(Node("features", label, "ellipse", MEMORY))
    edges.append(Edge(f"l{spec.num_layers - 1}", "features"))
    note = "Dashed brackets: skip connections, summed into the layer's output " \
           "(colour of the source layer)."
    return Picture(title or f"ENAS macro network ({spec.num_layers} layers)",
                   [Panel(nodes, edges, "chain")], note, name="enas_macro")


def macro_layer_lines(spec: ENASMacroSpec) -> List[List[str]]:
    """Each layer's label lines in the picture of an ENAS macro network: its op, its skips,
    and whether the network halves after it."""
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


def picture_for(spec: Any, shapes: Optional[Dict[str, Any]] = None) -> Picture:
    """The picture of a spec of any registered kind (`nascell.kinds.SpecKind.picture`);
    ``shapes`` as an export records them (``input_shape``, ``output_shape``,
    ``layer_output_shapes``), all optional."""
    from nascell import kinds
    picture = kinds.kind_of(spec).picture(spec, dict(shapes or {}))
    if picture is None:
        raise ValueError(f"spec kind {spec.kind!r} draws no picture")
    return picture
