"""Draw architecture pictures to PNG and SVG with matplotlib: no Graphviz binary needed.

`write_picture` lays a `Picture` (`nascell.pictures.model`) out (`nascell.pictures.layout`)
and writes ``<stem>.png`` and ``<stem>.svg``; `draw` returns the matplotlib figure.

Labels may use matplotlib's mathtext (``$h_{t-1}$``). Sizes are in points, so the picture is
drawn at its natural size (10 pt labels) and the PNG's resolution is ``dpi`` (lowered for very
large pictures so neither side exceeds `MAX_PIXELS`).
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence

from nascell.pictures import layout as layout_lib
from nascell.pictures.model import Edge, Node, Panel, Picture

FONT_SIZE = 10.0
SMALL_FONT_SIZE = 8.0
TITLE_FONT_SIZE = 12.0
LINE_SPACING = 1.25
PAD_X, PAD_Y = 8.0, 5.0  # inside a box, around its label
PANEL_GAP = 24.0
DPI = 150
MAX_PIXELS = 8000

def _font(size: float):
    from matplotlib.font_manager import FontProperties
    return FontProperties(family="DejaVu Sans", size=size)


def text_size(text: str, size: float = FONT_SIZE) -> tuple:
    """(width, height) in points of a possibly multi-line label, as matplotlib draws it."""
    from matplotlib.textpath import TextToPath
    measure, prop = TextToPath(), _font(size)
    lines = text.split("\n")
    width = 0.0
    for line in lines:
        math = line.count("$") >= 2
        w, _, _ = measure.get_text_width_height_descent(line or " ", prop, ismath=math)
        width = max(width, float(w))
    return width, size * LINE_SPACING * len(lines)


def _node_size(node: Node) -> tuple:
    w, h = text_size(node.label, SMALL_FONT_SIZE if node.small else FONT_SIZE)
    w, h = w + 2 * PAD_X, h + 2 * PAD_Y
    if node.shape == "ellipse":  # an ellipse around a w x h box is sqrt(2) larger
        w, h = w * 1.3, h * 1.25
    return w, h


def _layout(panel: Panel) -> layout_lib.Layout:
    nodes = [layout_lib.LayoutNode(n.id, *_node_size(n), rank=n.rank, shape=n.shape)
             for n in panel.nodes]
    edges = [layout_lib.LayoutEdge(e.src, e.dst, e.side, e.bracket) for e in panel.edges]
    if panel.layout == "chain":
        return layout_lib.chain(nodes, edges)
    if panel.layout == "layered":
        return layout_lib.layered(nodes, edges, upward=panel.upward)
    raise ValueError(f"Argument `layout` must be 'layered' or 'chain'. "
                     f"Received: layout={panel.layout!r}")


def _bezier(seg, t: float):
    p0, c1, c2, p3 = seg
    u = 1 - t
    return tuple(u ** 3 * a + 3 * u * u * t * b + 3 * u * t * t * c + t ** 3 * d
                 for a, b, c, d in zip(p0, c1, c2, p3))


def _draw_edge(ax, route, edge: Edge, dx: float, dy: float) -> None:
    from matplotlib.patches import FancyArrowPatch, PathPatch
    from matplotlib.path import Path
    verts, codes = [], []
    for i, seg in enumerate(route):
        pts = [(p[0] + dx, p[1] + dy) for p in seg]
        if i == 0:
            verts.append(pts[0])
            codes.append(Path.MOVETO)
        verts += pts[1:]
        codes += [Path.CURVE4] * 3
    style = (0, (4, 3)) if edge.dashed else "solid"
    ax.add_patch(PathPatch(Path(verts, codes), fill=False, edgecolor=edge.color, lw=1.0,
                           linestyle=style, capstyle="butt", zorder=1))
    # The arrowhead: along the last segment's final direction.
    p0, c1, c2, p3 = route[-1]
    tail = c2 if (c2[0], c2[1]) != (p3[0], p3[1]) else p0
    ux, uy = p3[0] - tail[0], p3[1] - tail[1]
    norm = max((ux * ux + uy * uy) ** 0.5, 1e-9)
    start = (p3[0] + dx - ux / norm * 6.0, p3[1] + dy - uy / norm * 6.0)
    ax.add_patch(FancyArrowPatch(start, (p3[0] + dx, p3[1] + dy), arrowstyle="-|>",
                                 mutation_scale=9, color=edge.color, lw=0, shrinkA=0,
                                 shrinkB=0, zorder=3))
    if edge.label:
        mid = route[len(route) // 2]
        x, y = _bezier(mid, 0.5)
        ax.text(x + dx + 3, y + dy, edge.label, fontproperties=_font(SMALL_FONT_SIZE),
                ha="left", va="center", color="#555555", zorder=4,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.85})


def _draw_node(ax, node: Node, box, dx: float, dy: float) -> None:
    from matplotlib.patches import Ellipse, FancyBboxPatch
    x, y, w, h = box
    x, y = x + dx, y + dy
    lw = 2.0 if node.bold else 0.8
    if node.shape == "ellipse":
        patch = Ellipse((x, y), w, h, facecolor=node.fill, edgecolor="#333333", lw=lw)
    else:
        r = min(6.0, h / 4)
        patch = FancyBboxPatch((x - w / 2 + r, y - h / 2 + r), w - 2 * r, h - 2 * r,
                               boxstyle=f"round,pad={r}", facecolor=node.fill,
                               edgecolor="#333333", lw=lw)
    patch.set_zorder(2)
    ax.add_patch(patch)
    ax.text(x, y, node.label, fontproperties=_font(SMALL_FONT_SIZE if node.small else FONT_SIZE),
            ha="center", va="center", multialignment="center", linespacing=LINE_SPACING,
            zorder=5)


def draw(picture: Picture):
    """The picture as a matplotlib `Figure` (not attached to pyplot, so thread-safe)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch
    layouts = [_layout(p) for p in picture.panels]
    framed = [bool(p.title) for p in picture.panels]
    head = TITLE_FONT_SIZE * 2.2
    panel_head = FONT_SIZE * 2.0
    widths = [lay.width + (8 if f else 0) for lay, f in zip(layouts, framed)]
    heights = [lay.height + (panel_head if f else 0) for lay, f in zip(layouts, framed)]
    title_w = text_size(picture.title, TITLE_FONT_SIZE)[0] + 20
    note_h = text_size(picture.note, SMALL_FONT_SIZE)[1] + 8 if picture.note else 0.0
    width = max(sum(widths) + PANEL_GAP * (len(layouts) - 1) + 20, title_w,
                text_size(picture.note, SMALL_FONT_SIZE)[0] + 20 if picture.note else 0)
    height = max(heights) + head + note_h + 10
    fig = Figure(figsize=(width / 72.0, height / 72.0))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    ax.text(width / 2, height - head / 2, picture.title,
            fontproperties=_font(TITLE_FONT_SIZE), ha="center", va="center", weight="bold")
    x = (width - sum(widths) - PANEL_GAP * (len(layouts) - 1)) / 2
    top = height - head
    for panel, lay, f, w, h in zip(picture.panels, layouts, framed, widths, heights):
        dx, dy = x + (4 if f else 0), top - h
        if f:
            ax.add_patch(FancyBboxPatch((x, top - h), w, h, boxstyle="round,pad=0,rounding_size=8",
                                        facecolor="none", edgecolor="#999999", lw=0.8))
            ax.text(x + w / 2, top - panel_head / 2, panel.title, fontproperties=_font(FONT_SIZE),
                    ha="center", va="center", style="italic")
        by_id: Dict[str, Node] = {n.id: n for n in panel.nodes}
        for node_id, box in lay.boxes.items():
            _draw_node(ax, by_id[node_id], box, dx, dy)
        for edge, route in zip(panel.edges, lay.routes):
            _draw_edge(ax, route, edge, dx, dy)
        x += w + PANEL_GAP
    if picture.note:
        ax.text(10, 6, picture.note, fontproperties=_font(SMALL_FONT_SIZE), ha="left",
                va="bottom", color="#555555", linespacing=LINE_SPACING)
    return fig


def write_picture(picture: Picture, directory: str, stem: str = "architecture",
                  formats: Sequence[str] = ("png", "svg"), dpi: int = DPI) -> List[str]:
    """Draw ``picture`` into ``<directory>/<stem>.<fmt>`` for each format; returns the paths."""
    import matplotlib
    for fmt in formats:
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"Argument `formats` must hold 'png', 'svg' or 'pdf'. "
                             f"Received: formats={list(formats)!r}")
    fig = draw(picture)
    w, h = fig.get_size_inches()
    dpi = min(dpi, int(MAX_PIXELS / max(w, h, 1e-9)))
    written = []
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "nascell",
                                "path.simplify": False}):
        for fmt in formats:
            path = os.path.join(directory, f"{stem}.{fmt}")
            fig.savefig(path, format=fmt, dpi=dpi, facecolor="white",
                        metadata={"Date": None} if fmt == "svg" else None)
            written.append(path)
    return written
