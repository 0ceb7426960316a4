"""Rank statistics of the discovery benchmarks (`proxy_fidelity`, `enas_fidelity`): how well a
cheap score of recurrent cells orders them as their reference training does.

Scores are perplexities, lower is better; a diverged cell scores +inf and ranks last (ties
among the diverged share their mean rank). `proxy_row` is one row of the benchmarks' proxy
table: Spearman, Kendall tau-b and top-5 overlap of a proxy against the reference, the
divergences on each side and the mean CPU seconds per cell; `proxy_table` and `cell_table`
render a report's two tables from its rows, ``(cell, reference score, lr, {proxy: (score,
CPU s)})``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

# +inf (a diverged cell) becomes this before ranking, so the diverged tie as the worst.
BIG = 1e12

PROXY_TABLE_HEADER = ["| proxy | cells | Spearman | Kendall tau | Kendall tau, cells the "
                      "reference trains | top-5 overlap | diverged (proxy / reference) | "
                      "CPU s per cell |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]


def _ranks(values: List[float]) -> np.ndarray:
    """Average ranks (1 = lowest), ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    vals = np.asarray(values)[order]
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: List[float], b: List[float]) -> float:
    ra, rb = _ranks(a), _ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall_tau(a: List[float], b: List[float]) -> float:
    """Kendall's tau-b (ties in either list handled)."""
    n, concordant, discordant, ties_a, ties_b = len(a), 0, 0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif da == db:
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return (concordant - discordant) / denom if denom else float("nan")


def top_overlap(a: List[float], b: List[float], k: int = 5) -> int:
    return len(set(np.argsort(a, kind="mergesort")[:k]) & set(np.argsort(b, kind="mergesort")[:k]))


def proxy_row(proxy: str, pairs: Sequence[Tuple[float, float, float]]
              ) -> Tuple[str, Tuple[int, float, float]]:
    """The table row of ``proxy`` from ``(proxy score, reference score, proxy CPU s)`` per
    cell, and ``(cells, Kendall tau, mean CPU s)`` (tau NaN under 3 cells, no statistics)."""
    if len(pairs) < 3:
        return f"| {proxy} | {len(pairs)} | | | | | | |", (len(pairs), math.nan, math.nan)
    a = [min(p[0], BIG) for p in pairs]
    b = [min(p[1], BIG) for p in pairs]
    div_p = sum(1 for p in pairs if p[0] == math.inf)
    div_r = sum(1 for p in pairs if p[1] == math.inf)
    tau, cpu = kendall_tau(a, b), float(np.mean([p[2] for p in pairs]))
    # Cells that diverge at every rate of the reference tie at the bottom of both rankings
    # when the proxy sees it too, which lifts tau; among the cells the reference trains, tau
    # says how well the proxy orders the ones a search has to choose between.
    trained = [(x, y) for x, y, p in zip(a, b, pairs) if p[1] != math.inf]
    tau_trained = (f"{kendall_tau([x for x, _ in trained], [y for _, y in trained]):.3f} "
                   f"({len(trained)})" if len(trained) >= 3 else f"({len(trained)})")
    return (f"| {proxy} | {len(pairs)} | {spearman(a, b):.3f} | {tau:.3f} | {tau_trained} | "
            f"{top_overlap(a, b)}/{min(5, len(pairs))} | {div_p} / {div_r} | {cpu:.0f} |",
            (len(pairs), tau, cpu))


# A report row: (cell, reference score, lr, {proxy: (score, CPU s)}, anything else...).
Row = Tuple[Any, ...]


def ppl_text(value: Optional[float]) -> str:
    """A perplexity as the tables print it: blank when not measured, "diverged" for +inf."""
    return "" if value is None else "diverged" if value == math.inf else f"{value:.1f}"


def proxy_table(rows: Sequence[Row], names: Sequence[str]
                ) -> Tuple[List[str], Dict[str, Tuple[int, float, float]]]:
    """The proxy table's lines (header first), and ``{proxy: (cells, tau, CPU s)}`` of the
    proxies measured on 3 cells or more."""
    lines, stats = list(PROXY_TABLE_HEADER), {}
    for proxy in names:
        pairs = [(r[3][proxy][0], r[1], r[3][proxy][1]) for r in rows
                 if proxy in r[3] and r[3][proxy][0] is not None]
        row, stat = proxy_row(proxy, pairs)
        lines.append(row)
        if stat[0] >= 3:
            stats[proxy] = stat
    return lines, stats


def cell_table(rows: Sequence[Row], names: Sequence[str]) -> List[str]:
    """One line per cell: its reference, the rate chosen and every proxy's score."""
    lines = ["| cell | reference valid ppl | lr | " + " | ".join(names) + " |",
             "|---|---:|---:|" + "---:|" * len(names)]
    for name, ref, lr, proxies, *_ in rows:
        lines.append(f"| {name} | {ppl_text(ref)} | {lr or ''} | "
                     + " | ".join(ppl_text(proxies.get(p, (None, None))[0]) for p in names)
                     + " |")
    return lines
