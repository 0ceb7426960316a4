"""How a controller writes architectures down: the token matrix and its padded layout.

Tokens: an int32 matrix with one column per `Categorical` decision (the choice index) and
``k`` columns per `Skips` decision with ``k`` candidates (0/1), in decision order: the
*compact* layout, what strategies store and re-score. A row may cover only a prefix of the
decisions (a growing space).

The compiled programs (`controller_graph`) read a *padded* layout instead: ``[batch, T, pad]``,
one slot row per decision, padded to the widest `Skips` decision, with the batch padded to a
`controller_graph.bucket`. `TokenLayout` converts between the two and between token rows and
the per-decision items a `SearchSpace` reads (`SearchSpace.from_tokens`), and derives the
per-step tables of the program's `controller_graph.Structure`.
"""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple

import numpy as np

from nascell.search.core.space import Categorical, Skips
from nascell.search.strategies.controller import controller_graph


class TokenLayout:
    """The token columns of a list of `Categorical` / `Skips` decisions.

    Args:
      decisions: the decisions, in the order the controller makes them.

    Raises:
      ValueError: ``decisions`` is empty or holds something other than Categorical / Skips.
    """

    def __init__(self, decisions: Sequence[Any]):
        self.decisions: Tuple[Any, ...] = tuple(decisions)
        if not self.decisions:
            raise ValueError("Controller needs at least one decision")
        for d in self.decisions:
            if not isinstance(d, (Categorical, Skips)):
                raise ValueError(f"Argument `space` must hold Categorical and Skips decisions "
                                 f"only. Received: decision {d.name!r} of type "
                                 f"{type(d).__name__}")
        skips = [d for d in self.decisions if isinstance(d, Skips)]
        #: the largest choice count (softmax heads and embedding tables are padded to it).
        self.num_choices = max([d.num_choices for d in self.decisions
                                if isinstance(d, Categorical)] or [1])
        self.num_anchors = max(len(skips), 1)
        #: token slots per step in the padded layout.
        self.pad = max(1, self.num_anchors - 1)
        # Per step: a skip decision?, its choices (Categorical) or candidates (Skips), its
        # anchor slot, and its (first compact column, width).
        num_t = len(self.decisions)
        self.is_skip = np.zeros(num_t, bool)
        self.num_valid = np.zeros(num_t, np.int32)
        self.anchor_slot = np.zeros(num_t, np.int32)
        self.columns: List[Tuple[int, int]] = []
        col, a = 0, 0
        for t, d in enumerate(self.decisions):
            if isinstance(d, Categorical):
                self.num_valid[t] = d.num_choices
                self.columns.append((col, 1))
                col += 1
            else:
                self.is_skip[t], self.num_valid[t], self.anchor_slot[t] = (
                    True, d.num_candidates, a)
                self.columns.append((col, d.num_candidates))
                col += d.num_candidates
                a += 1

    def __len__(self) -> int:
        return len(self.decisions)

    def structure(self, units: int, num_layers: int,
                  jit_compile: bool) -> controller_graph.Structure:
        """The key of the compiled programs for this layout and an LSTM of this size."""
        return controller_graph.Structure(
            is_skip=tuple(bool(x) for x in self.is_skip),
            num_valid=tuple(int(x) for x in self.num_valid),
            anchor_slot=tuple(int(x) for x in self.anchor_slot), num_choices=self.num_choices,
            num_anchors=self.num_anchors, pad=self.pad, units=units, num_layers=num_layers,
            jit_compile=bool(jit_compile))

    def check_n(self, num_decisions: Any) -> int:
        """``num_decisions`` (None: all) as an int in ``[1, len(decisions)]``, or a clear error."""
        n = len(self.decisions) if num_decisions is None else int(num_decisions)
        if not 1 <= n <= len(self.decisions):
            raise ValueError(f"Argument `num_decisions` must be in [1, {len(self.decisions)}]. "
                             f"Received: num_decisions={n}")
        return n

    def width(self, num_decisions: Any = None) -> int:
        """Columns of the token matrix for the first ``num_decisions`` decisions."""
        ds = self.decisions[:num_decisions]
        return sum(1 if isinstance(d, Categorical) else d.num_candidates for d in ds)

    # --- compact tokens <-> per-decision rows --------------------------------------------------

    def to_rows(self, tokens: np.ndarray, num_decisions: int) -> List[List[Any]]:
        """Token matrix -> per architecture a list (an int per Categorical, a 0/1 list per
        Skips)."""
        out = []
        for row in np.asarray(tokens):
            items, col = [], 0
            for d in self.decisions[:num_decisions]:
                if isinstance(d, Categorical):
                    items.append(int(row[col]))
                    col += 1
                else:
                    items.append([int(b) for b in row[col:col + d.num_candidates]])
                    col += d.num_candidates
            out.append(items)
        return out

    def from_rows(self, rows: Sequence[Sequence[Any]]) -> Tuple[np.ndarray, int]:
        """Inverse of `to_rows`; returns the matrix and the number of decisions."""
        n = len(rows[0])
        if any(len(r) != n for r in rows):
            raise ValueError("rows_to_tokens: every row must have the same number of decisions")
        if n > len(self.decisions):
            raise ValueError(f"{n} decisions, but the controller knows "
                             f"{len(self.decisions)}")
        mat = np.zeros((len(rows), self.width(n)), np.int32)
        for i, r in enumerate(rows):
            flat = []
            for d, item in zip(self.decisions, r):
                flat.extend([int(item)] if isinstance(d, Categorical) else [int(b) for b in item])
            mat[i] = flat
        return mat, n

    # --- compact tokens <-> the programs' padded layout ----------------------------------------

    def to_padded(self, tokens: np.ndarray, n: int) -> np.ndarray:
        """Compact rows -> [bucket(rows), T, pad] (rows past the real ones are zeros)."""
        tokens = np.asarray(tokens, np.int32).reshape(-1, self.width(n))
        out = np.zeros((controller_graph.bucket(len(tokens)), len(self.decisions), self.pad),
                       np.int32)
        for t, (col, width) in enumerate(self.columns[:n]):
            out[:len(tokens), t, :width] = tokens[:, col:col + width]
        return out

    def to_compact(self, padded: np.ndarray, n: int) -> np.ndarray:
        """Inverse of `to_padded` for the first ``n`` decisions (all of its rows)."""
        padded = np.asarray(padded)
        out = np.zeros((len(padded), self.width(n)), np.int32)
        for t, (col, width) in enumerate(self.columns[:n]):
            out[:, col:col + width] = padded[:, t, :width]
        return out

    def pack(self, batches: Sequence[Tuple[np.ndarray, int]]) -> Tuple[np.ndarray, np.ndarray]:
        """``(token_row, num_decisions)`` rows of any lengths -> padded tokens, lengths."""
        rows = len(batches)
        padded = np.zeros((controller_graph.bucket(rows), len(self.decisions), self.pad),
                          np.int32)
        lengths = np.ones(len(padded), np.int32)
        for k, (row, n) in enumerate(batches):
            n = self.check_n(n)
            row = np.asarray(row, np.int32).reshape(-1)
            if len(row) != self.width(n):
                raise ValueError(f"A token row of {n} decisions must have {self.width(n)} "
                                 f"columns. Received: a row of {len(row)} columns")
            for t, (col, width) in enumerate(self.columns[:n]):
                padded[k, t, :width] = row[col:col + width]
            lengths[k] = n
        return padded, lengths
