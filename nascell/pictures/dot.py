"""Draw architecture pictures with Graphviz: a `Picture` as DOT source, rendered by ``dot``.

`to_dot` turns the figure `nascell.pictures.figures` built into a ``graphviz.Digraph``, so the
``.dot`` an export writes and its PNG/SVG show the same nodes, labels and edges as the
matplotlib drawing (`nascell.pictures.render`). The layout hints translate as follows:

* a panel's direction: ``rankdir=BT`` for an ``upward`` layered panel, else ``TB``;
* node ranks: nodes of one rank share a ``rank=same`` group (Graphviz places the rest);
* a skip connection (an edge a chain draws as a bracket beside the column) is dashed;
* several panels: one cluster each, ``cluster_<name>``, with node ids ``<name>_<id>``;
* the note: below the title, left-aligned.

Mathtext in labels (``$h_{t-1}$``) is printed plainly (``h_{t-1}``). `render_dot` runs the
``dot`` binary; `dot_binary` says whether it is installed.
"""

from __future__ import annotations

import os
import shutil
from typing import Dict, List, Optional, Sequence

import graphviz
from absl import logging

from nascell.pictures.model import Edge, Node, Panel, Picture

_NL = "\\n"  # a line break inside a DOT label (the two characters backslash, n)
_LEFT = "\\l"  # the same, left-aligning the line before it
_NODE_ATTR = {"fontname": "Helvetica", "shape": "box", "style": "filled,rounded"}
_DEFAULT_EDGE_COLOR = Edge("", "").color
_TEX = {r"\cdot": "·", r"\sigma": "σ"}  # the mathtext commands the figures use


def plain(text: str) -> str:
    """A mathtext label as plain text: ``$`` dropped, the figures' TeX commands as symbols."""
    for command, symbol in _TEX.items():
        text = text.replace(command, symbol)
    return text.replace("$", "")


def _label(text: str) -> str:
    return plain(text).replace("\n", _NL)


def _node_attrs(node: Node) -> Dict[str, str]:
    attrs = {"fillcolor": node.fill}
    if node.shape != "box":
        attrs["shape"] = node.shape
    if node.bold:
        attrs["penwidth"] = "2"
    if node.small:
        attrs["fontsize"] = "10"
    return attrs


def _edge_attrs(edge: Edge, skip: bool) -> Dict[str, str]:
    attrs = {}
    if edge.dashed or skip:
        attrs["style"] = "dashed"
    if edge.color != _DEFAULT_EDGE_COLOR:
        attrs["color"] = edge.color
    if edge.label:
        attrs["label"], attrs["fontsize"] = plain(edge.label), "9"
    return attrs


def _skips(panel: Panel) -> List[bool]:
    """Per edge: is it a chain's bracket (a skip connection) rather than the next-box arrow?"""
    if panel.layout != "chain":
        return [False] * len(panel.edges)
    index = {n.id: i for i, n in enumerate(panel.nodes)}
    return [e.bracket or index[e.dst] != index[e.src] + 1 for e in panel.edges]


def _add_panel(g: graphviz.Digraph, panel: Panel, prefix: str) -> None:
    ranks: Dict[int, List[str]] = {}
    for node in panel.nodes:
        g.node(prefix + node.id, _label(node.label), **_node_attrs(node))
        if node.rank is not None:
            ranks.setdefault(node.rank, []).append(prefix + node.id)
    for r in sorted(ranks):
        if len(ranks[r]) > 1:
            with g.subgraph() as s:
                s.attr(rank="same")
                for node_id in ranks[r]:
                    s.node(node_id)
    for edge, skip in zip(panel.edges, _skips(panel)):
        g.edge(prefix + edge.src, prefix + edge.dst, **_edge_attrs(edge, skip))


def to_dot(picture: Picture) -> graphviz.Digraph:
    """The picture as a ``graphviz.Digraph`` (see the module docstring for the translation)."""
    label = _label(picture.title)
    if picture.note:
        label += _NL + _NL + "".join(plain(line) + _LEFT for line in picture.note.split("\n"))
    first = picture.panels[0]
    rankdir = "BT" if first.layout == "layered" and first.upward else "TB"
    g = graphviz.Digraph(picture.name, graph_attr={
        "rankdir": rankdir, "fontname": "Helvetica", "label": label, "labelloc": "t"},
        node_attr=_NODE_ATTR)
    if len(picture.panels) == 1 and not first.name:
        _add_panel(g, first, "")
        return g
    for k, panel in enumerate(picture.panels):
        name = panel.name or f"panel{k}"
        with g.subgraph(name=f"cluster_{name}") as s:
            s.attr(label=_label(panel.title), style="rounded", color="#999999")
            _add_panel(s, panel, f"{name}_")
    return g


def dot_binary() -> Optional[str]:
    """The path of Graphviz's ``dot``, or None."""
    return shutil.which("dot")


def render_dot(graph: graphviz.Digraph, directory: str, stem: str,
               formats: Sequence[str]) -> List[str]:
    """Render ``graph`` with ``dot`` into ``<directory>/<stem>.<fmt>``; returns the files
    written (a format that fails is a warning, and its partial file is removed)."""
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
