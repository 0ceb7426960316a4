"""What an architecture picture shows, independent of how it is drawn.

A `Picture` is a title, one or more `Panel`s drawn side by side (the two cells of an ENAS micro
net), each a list of `Node`s (a label of one or more lines, a shape, a fill) and `Edge`s (solid
or dashed, a colour, an optional label), with layout hints (ranks, a panel's direction, which
edges are skip connections drawn beside a column). `nascell.pictures.figures` builds each
figure once; two renderers draw it: `nascell.pictures.dot` as Graphviz source (rendered by
``dot`` where it is installed) and `nascell.pictures.render` with matplotlib.

Labels may use matplotlib's mathtext (``$h_{t-1}$``); the Graphviz renderer prints it plainly.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

# Colours (both renderers use them as they are).
INPUT = "#ffffff"
LEAF = "#dbe9f6"
NODE = "#eeeeee"
MEMORY = "#fde2c8"
SKIP_COLORS = ("#c0504d", "#4f81bd", "#9bbb59", "#8064a2", "#f79646", "#4bacc6", "#7f6000",
               "#d16fb1")


@dataclasses.dataclass
class Node:
    """A box (or ellipse) with a label; ``bold`` thickens its border; ``rank`` places it on a
    row of a layered panel (all nodes of a panel have one, or none does)."""

    id: str
    label: str
    shape: str = "box"
    fill: str = NODE
    bold: bool = False
    rank: Optional[int] = None
    small: bool = False


@dataclasses.dataclass
class Edge:
    """An arrow from ``src`` to ``dst``. In a chain panel, an edge between neighbouring boxes
    is a straight arrow unless ``bracket``; any other edge (a skip connection) is a bracket on
    ``side``, and Graphviz draws it dashed."""

    src: str
    dst: str
    dashed: bool = False
    color: str = "#333333"
    label: str = ""
    side: str = "right"
    bracket: bool = False


@dataclasses.dataclass
class Panel:
    """One graph: ``layout`` is "layered" (ranks, ``upward`` puts rank 0 at the bottom) or
    "chain" (nodes top to bottom in order); ``title`` frames the panel when set; ``name``
    keeps the node ids of panels apart where a renderer draws them in one graph (Graphviz:
    cluster ``cluster_<name>``, nodes ``<name>_<id>``)."""

    nodes: List[Node]
    edges: List[Edge]
    layout: str = "layered"
    upward: bool = False
    title: str = ""
    name: str = ""


@dataclasses.dataclass
class Picture:
    """What to draw: a title, panels side by side, an optional footnote, and a ``name`` (the
    Graphviz graph's)."""

    title: str
    panels: List[Panel]
    note: str = ""
    name: str = "architecture"
