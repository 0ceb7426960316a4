"""Where the boxes and edges of an architecture picture go: pure geometry, no drawing.

Two layouts, both in points (1/72 inch) with y growing upward, so a renderer can draw them
one to one at any resolution:

* `layered`: a Sugiyama-style layout for trees and small DAGs (a recurrent cell tree, an ENAS
  cell). Every node sits on a rank (given, or its longest path from a source); an edge that
  skips ranks runs through one invisible waypoint per rank it crosses; the order within a rank
  is chosen by barycenter sweeps that keep the ordering with the fewest crossings (the caller's
  order wins ties, so a tree stays as drawn); x positions are pulled toward the neighbours'
  mean by repeated sweeps, each solved exactly under the no-overlap constraints (a weighted
  isotonic regression, pool-adjacent-violators). Edges are smooth curves through the
  waypoints, leaving and entering boxes vertically.
* `chain`: a column of equally wide boxes for a layer sequence (a conv net, an ENAS macro
  net). An edge to the next box is a short vertical arrow; every other edge is a bracket on
  the left or right of the column, in its own vertical track (tracks are shared only by edges
  whose spans do not touch), entering and leaving boxes at ports spread along their sides.

An edge's route is a list of cubic Bezier segments ``(p0, c1, c2, p3)``; the arrowhead goes at
the end of the last one.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

Point = Tuple[float, float]
Segment = Tuple[Point, Point, Point, Point]

RANK_GAP = 30.0  # vertical space between ranks (and between boxes of a chain)
NODE_GAP = 16.0  # horizontal space between neighbouring boxes of a rank
WAYPOINT_GAP = 10.0  # horizontal space next to an edge's waypoint
TRACK_GAP = 9.0  # horizontal distance between the tracks of a chain's brackets
PORT_GAP = 7.0  # vertical distance between ports on a box side
_SWEEPS = 12


@dataclasses.dataclass
class LayoutNode:
    """A box to place: its id, size in points, optional rank, and shape (box or ellipse)."""

    id: str
    width: float
    height: float
    rank: Optional[int] = None
    shape: str = "box"


@dataclasses.dataclass
class LayoutEdge:
    """An edge between two node ids; ``side`` ("left"/"right") routes a chain's bracket, and
    ``bracket`` makes an edge between neighbouring boxes of a chain a bracket too."""

    src: str
    dst: str
    side: str = "right"
    bracket: bool = False


@dataclasses.dataclass
class Layout:
    """Node boxes ``{id: (center_x, center_y, width, height)}``, one route per edge (in the
    order given), and the extent (all coordinates lie in ``[0, width] x [0, height]``)."""

    boxes: Dict[str, Tuple[float, float, float, float]]
    routes: List[List[Segment]]
    width: float
    height: float


# --- shared geometry ------------------------------------------------------------------------


def _line(p: Point, q: Point) -> Segment:
    return (p, (p[0] + (q[0] - p[0]) / 3, p[1] + (q[1] - p[1]) / 3),
            (p[0] + 2 * (q[0] - p[0]) / 3, p[1] + 2 * (q[1] - p[1]) / 3), q)


def _vertical_curve(p: Point, q: Point) -> Segment:
    """A curve from p to q, vertical at both ends (an S when p and q are offset)."""
    mid = (q[1] - p[1]) / 2
    return (p, (p[0], p[1] + mid), (q[0], q[1] - mid), q)


def _port(box, toward: Point, shape: str) -> Point:
    """Where an edge heading for ``toward`` leaves (or enters) a box: on its top or bottom,
    at most 35% of the width off centre, so edges to different sides stay apart."""
    x, y, w, h = box
    dx = max(-0.35 * w, min(0.35 * w, toward[0] - x))
    half = h / 2
    if shape == "ellipse":
        half *= max(0.0, 1 - (dx / (w / 2)) ** 2) ** 0.5
    return (x + dx, y + half if toward[1] > y else y - half)


def _shift(layout: Layout, margin: float) -> Layout:
    """Translate everything so the drawing starts at ``margin`` on both axes."""
    xs, ys = [], []
    for x, y, w, h in layout.boxes.values():
        xs += [x - w / 2, x + w / 2]
        ys += [y - h / 2, y + h / 2]
    for route in layout.routes:
        for seg in route:
            xs += [p[0] for p in seg]
            ys += [p[1] for p in seg]
    dx, dy = margin - min(xs), margin - min(ys)

    def move(p):
        return (p[0] + dx, p[1] + dy)

    boxes = {k: (x + dx, y + dy, w, h) for k, (x, y, w, h) in layout.boxes.items()}
    routes = [[tuple(move(p) for p in seg) for seg in route] for route in layout.routes]
    return Layout(boxes, routes, max(xs) - min(xs) + 2 * margin,
                  max(ys) - min(ys) + 2 * margin)


# --- layered layout -------------------------------------------------------------------------


def _ranks(nodes: Sequence[LayoutNode], edges: Sequence[LayoutEdge]) -> Dict[str, int]:
    if all(n.rank is not None for n in nodes):
        return {n.id: int(n.rank) for n in nodes}
    preds = defaultdict(list)
    for e in edges:
        preds[e.dst].append(e.src)
    rank: Dict[str, int] = {}

    def visit(v: str, path: frozenset) -> int:
        if v not in rank:
            if v in path:
                raise ValueError(f"the graph has a cycle through node {v!r}; a layered "
                                 f"picture needs explicit ranks for it")
            rank[v] = max((visit(u, path | {v}) + 1 for u in preds[v]), default=0)
        return rank[v]

    for n in nodes:
        visit(n.id, frozenset())
    return rank


def _pav(desired: List[float], weights: List[float], seps: List[float]) -> List[float]:
    """Positions closest (weighted least squares) to ``desired`` with ``x[i+1] - x[i] >=
    seps[i]``: substitute ``y = x - offset`` and fit a non-decreasing ``y`` (isotonic)."""
    offsets = [0.0]
    for s in seps:
        offsets.append(offsets[-1] + s)
    blocks: List[List[float]] = []  # [weighted mean, weight, count]
    for d, w, o in zip(desired, weights, offsets):
        blocks.append([d - o, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    ys = [m for m, _, n in blocks for _ in range(n)]
    return [y + o for y, o in zip(ys, offsets)]


def _crossings(order: List[List[str]], down: Dict[str, List[str]]) -> int:
    total = 0
    for upper, lower in zip(order, order[1:]):
        pos = {v: i for i, v in enumerate(lower)}
        pairs = [(i, pos[w]) for i, v in enumerate(upper) for w in down[v] if w in pos]
        total += sum(1 for (a, b), (c, d) in itertools.combinations(pairs, 2)
                     if (a - c) * (b - d) < 0)
    return total


def _order(order: List[List[str]], up: Dict[str, List[str]],
           down: Dict[str, List[str]]) -> List[List[str]]:
    """Barycenter sweeps; the ordering with the fewest crossings (earliest on ties)."""
    best, best_cross = [list(r) for r in order], _crossings(order, down)
    current = [list(r) for r in order]
    for sweep in range(_SWEEPS):
        downward = sweep % 2 == 0
        indices = range(1, len(current)) if downward else range(len(current) - 2, -1, -1)
        for r in indices:
            ref = current[r - 1] if downward else current[r + 1]
            pos = {v: i for i, v in enumerate(ref)}
            nbrs = up if downward else down
            scale = len(ref) / max(1, len(current[r]))  # where a node without neighbours stays

            def key(item, pos=pos, nbrs=nbrs, scale=scale):
                i, v = item
                ps = [pos[u] for u in nbrs[v] if u in pos]
                return sum(ps) / len(ps) if ps else i * scale

            current[r] = [v for _, v in sorted(enumerate(current[r]), key=key)]
        cross = _crossings(current, down)
        if cross < best_cross:
            best, best_cross = [list(r) for r in current], cross
    return best


def layered(nodes: Sequence[LayoutNode], edges: Sequence[LayoutEdge], upward: bool = False,
            margin: float = 10.0) -> Layout:
    """Lay out a DAG rank by rank (rank 0 at the top, or at the bottom when ``upward``)."""
    size = {n.id: (n.width, n.height) for n in nodes}
    shape = {n.id: n.shape for n in nodes}
    rank = _ranks(nodes, edges)
    order: Dict[int, List[str]] = defaultdict(list)
    for n in nodes:
        order[rank[n.id]].append(n.id)
    up, down = defaultdict(list), defaultdict(list)  # neighbours one rank above / below
    weight: Dict[Tuple[str, str], float] = {}
    chains: List[List[str]] = []  # per edge: src, waypoints..., dst (in rank order)
    for k, e in enumerate(edges):
        a, b = (e.src, e.dst) if rank[e.src] <= rank[e.dst] else (e.dst, e.src)
        chain = [a] + [f"\0{k}.{r}" for r in range(rank[a] + 1, rank[b])] + [b]
        for r, v in enumerate(chain[1:-1], start=rank[a] + 1):
            rank[v], size[v], shape[v] = r, (0.0, 0.0), "point"
            order[r].append(v)
        if rank[a] != rank[b]:
            for u, v in zip(chain, chain[1:]):
                up[v].append(u)
                down[u].append(v)
                weight[u, v] = 1.0 + 3.0 * (u[0] == "\0") + 3.0 * (v[0] == "\0")
        chains.append(chain)
    ranks = sorted(order)
    rows = _order([order[r] for r in range(ranks[0], ranks[-1] + 1)], up, down)

    def sep(a: str, b: str) -> float:
        gap = NODE_GAP if a[0] != "\0" and b[0] != "\0" else WAYPOINT_GAP
        return (size[a][0] + size[b][0]) / 2 + gap

    x: Dict[str, float] = {}
    for row in rows:
        pos = 0.0
        for i, v in enumerate(row):
            pos += sep(row[i - 1], v) if i else 0.0
            x[v] = pos
    for sweep in range(2 * _SWEEPS + 1):
        final = sweep == 2 * _SWEEPS
        downward = sweep % 2 == 0
        for row in (rows if downward else rows[::-1]):
            desired, weights = [], []
            for v in row:
                nbrs = ([(u, weight[u, v]) for u in up[v]] if downward or final else []) + \
                       ([(w, weight[v, w]) for w in down[v]] if not downward or final else [])
                total = sum(w for _, w in nbrs)
                desired.append(sum(x[u] * w for u, w in nbrs) / total if total else x[v])
                weights.append(total if total else 1e-3)
            seps = [sep(a, b) for a, b in zip(row, row[1:])]
            for v, xv in zip(row, _pav(desired, weights, seps)):
                x[v] = xv

    y: Dict[str, float] = {}
    band: Dict[str, float] = {}  # half the height of a node's rank: edges cross it straight
    level, prev_h = 0.0, None
    for row in rows:
        h = max((size[v][1] for v in row), default=0.0)
        level = 0.0 if prev_h is None else level + prev_h / 2 + RANK_GAP + h / 2
        prev_h = h
        for v in row:
            y[v], band[v] = (level if upward else -level), h / 2
    boxes = {n.id: (x[n.id], y[n.id]) + size[n.id] for n in nodes}
    routes = []
    for e, chain in zip(edges, chains):
        a, b = chain[0], chain[-1]
        if rank[a] == rank[b]:  # same rank: a horizontal line
            sa, sb = (1, -1) if x[a] < x[b] else (-1, 1)
            route = [_line((x[a] + sa * size[a][0] / 2, y[a]), (x[b] + sb * size[b][0] / 2, y[b]))]
        else:
            route = _through_bands(chain, x, y, band, boxes, shape)
        if e.src != a:  # drawn from dst to src: reverse so the arrow ends at e.dst
            route = [(s[3], s[2], s[1], s[0]) for s in reversed(route)]
        routes.append(route)
    return _shift(Layout(boxes, routes, 0, 0), margin)


def _through_bands(chain: List[str], x, y, band, boxes, shape) -> List[Segment]:
    """An edge's route: straight up or down through every rank's band (a box's column, or its
    waypoint's), an S-curve across each gap between ranks, so it never crosses a box."""
    a, b = chain[0], chain[-1]
    sgn = 1.0 if y[b] > y[a] else -1.0
    start = _port(boxes[a], (x[chain[1]], y[chain[1]]), shape[a])
    end = _port(boxes[b], (x[chain[-2]], y[chain[-2]]), shape[b])
    pts = [start, (start[0], y[a] + sgn * band[a])]
    for v in chain[1:-1]:
        pts += [(x[v], y[v] - sgn * band[v]), (x[v], y[v] + sgn * band[v])]
    pts += [(end[0], y[b] - sgn * band[b]), end]
    route = []
    for i, (p, q) in enumerate(zip(pts, pts[1:])):
        if i % 2:
            route.append(_vertical_curve(p, q))
        elif abs(q[1] - p[1]) > 1e-6:
            route.append(_line(p, q))
    return route


# --- chain layout ---------------------------------------------------------------------------


def _tracks(spans: List[Tuple[int, int, int]]) -> Dict[int, int]:
    """Track per edge index: shorter spans inside; spans that overlap or touch never share."""
    taken: Dict[int, List[Tuple[int, int]]] = defaultdict(list)
    out = {}
    for lo, hi, k in sorted(spans, key=lambda s: (s[1] - s[0], s[0])):
        t = 0
        while any(lo <= b and a <= hi for a, b in taken[t]):
            t += 1
        taken[t].append((lo, hi))
        out[k] = t
    return out


def chain(nodes: Sequence[LayoutNode], edges: Sequence[LayoutEdge],
          margin: float = 10.0) -> Layout:
    """Lay out ``nodes`` top to bottom in the given order (see the module docstring)."""
    index = {n.id: i for i, n in enumerate(nodes)}
    width = max(n.width for n in nodes)
    brackets = [k for k, e in enumerate(edges)
                if e.bracket or index[e.dst] != index[e.src] + 1]
    ports: Dict[Tuple[str, str], List[Tuple[Tuple[int, int], int, str]]] = defaultdict(list)
    for k in brackets:
        e = edges[k]
        span = abs(index[e.dst] - index[e.src])
        lo_end, hi_end = sorted((e.src, e.dst), key=index.get)
        # Top to bottom along a side: arcs coming from above (longest first), then arcs
        # leaving downward (shortest first), so nested brackets do not cross at their ends.
        ports[hi_end, e.side].append(((0, -span), k, "lower"))
        ports[lo_end, e.side].append(((1, span), k, "upper"))
    heights = {n.id: n.height for n in nodes}
    for (v, _), items in ports.items():
        heights[v] = max(heights[v], (len(items) + 1) * PORT_GAP)
    y, level = {}, 0.0
    for i, n in enumerate(nodes):
        if i:
            level -= heights[nodes[i - 1].id] / 2 + RANK_GAP + heights[n.id] / 2
        y[n.id] = level
    boxes = {n.id: (0.0, y[n.id], width, heights[n.id]) for n in nodes}
    port_y: Dict[Tuple[int, str], float] = {}
    for (v, _), items in ports.items():
        items.sort()
        top, h = y[v] + heights[v] / 2, heights[v]
        for j, (_, k, end) in enumerate(items):
            port_y[k, end] = top - h * (j + 1) / (len(items) + 1)
    routes: List[List[Segment]] = [[] for _ in edges]
    for side in ("left", "right"):
        ks = [k for k in brackets if edges[k].side == side]
        tracks = _tracks([tuple(sorted((index[edges[k].src], index[edges[k].dst]))) + (k,)
                          for k in ks])
        sign = 1.0 if side == "right" else -1.0
        for k in ks:
            x0 = sign * width / 2
            xt = x0 + sign * TRACK_GAP * (tracks[k] + 1)
            ya, yb = port_y[k, "upper"], port_y[k, "lower"]
            r = min(5.0, TRACK_GAP * 0.6, (ya - yb) / 2)
            path = [_line((x0, ya), (xt - sign * r, ya)),
                    ((xt - sign * r, ya), (xt, ya), (xt, ya), (xt, ya - r)),
                    _line((xt, ya - r), (xt, yb + r)),
                    ((xt, yb + r), (xt, yb), (xt, yb), (xt - sign * r, yb)),
                    _line((xt - sign * r, yb), (x0, yb))]
            if index[edges[k].src] > index[edges[k].dst]:  # an upward edge: arrow at the top
                path = [(s[3], s[2], s[1], s[0]) for s in reversed(path)]
            routes[k] = path
    for k, e in enumerate(edges):
        if k not in brackets:
            a, b = boxes[e.src], boxes[e.dst]
            routes[k] = [_line((0.0, a[1] - a[3] / 2), (0.0, b[1] + b[3] / 2))]
    return _shift(Layout(boxes, routes, 0, 0), margin)
