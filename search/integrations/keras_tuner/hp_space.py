"""KerasTuner `HyperParameters` as a nascell search space (one `Categorical` per tunable hp).

The translation rule, hyperparameter by hyperparameter:

=====================================  ==========================================================
KerasTuner                             nascell decision
=====================================  ==========================================================
``Choice(values)``                     ``Categorical(values)``, in the given order
``Boolean``                            ``Categorical([False, True])``
``Fixed(value)``                       no decision; the value is always ``value``
``Int`` / ``Float`` with ``step``      ``Categorical`` of KerasTuner's own grid: ``min, min+step,
                                       ... <= max`` (``sampling="linear"``) or ``min * step**k
                                       <= max`` (``"log"``; ``"reverse_log"`` mirrored)
``Float`` without ``step``, ``Int``    ``float_points`` values (default 10) evenly spaced in the
without ``step`` (log sampling)        hp's own sampling scale, both ends included: ``linspace``
                                       for ``"linear"``, ``geomspace`` for ``"log"``, mirrored
                                       geomspace for ``"reverse_log"``; an Int's are rounded and
                                       repeats dropped
a grid of more than ``max_choices``    thinned to ``max_choices`` values by the rule above
values (default 100)
=====================================  ==========================================================

Floats are rounded to 12 significant digits (so ``0.1 * 3`` reads ``0.3``) and clipped to
``[min_value, max_value]``. A default that is not on the grid (for a replayed trial or an
inactive conditional hp) maps to the nearest grid value in the hp's sampling scale.

Conditional hyperparameters (``hp.conditional_scope`` or ``parent_name=``) are handled: each
one is a decision like any other, and a trial's values keep only the hps whose conditions hold
(as KerasTuner's own oracles do), so the strategy's value for an inactive hp is ignored. Two hps
of the same name under different conditions become two decisions, ``name`` and ``name#2``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from keras_tuner.engine import hyperparameters as kt_hp

from nascell.search.core.space import Categorical, SearchSpace

#: default number of values a Float without ``step`` (or a log-sampled Int) becomes.
FLOAT_POINTS = 10
#: default largest grid kept whole; larger grids are thinned to this many values.
MAX_CHOICES = 100


@dataclasses.dataclass(frozen=True)
class Entry:
    """One KerasTuner hp: its decision name (None for ``Fixed``) and its values."""

    hp: Any
    decision: Optional[str]
    choices: Tuple[Any, ...]


class HPSpace:
    """The nascell view of a KerasTuner search space, and the maps between the two.

    Attributes:
      entries: one `Entry` per hp of ``hyperparameters.space``, in KerasTuner's order (parents
        before the hps they condition).
      space: the `SearchSpace` of the tunable hps, or None when there is none (all Fixed).
      signature: a JSON-able description; equal signatures mean the same nascell space.
      conditional: whether any hp is conditional.
    """

    def __init__(self, hyperparameters: "kt_hp.HyperParameters",
                 float_points: int = FLOAT_POINTS, max_choices: int = MAX_CHOICES):
        self.float_points = float_points
        self.max_choices = max_choices
        self.entries: List[Entry] = []
        seen: Dict[str, int] = {}
        for hp in hyperparameters.space:
            choices = _choices(hp, float_points, max_choices)
            name = None
            if choices is not None:
                seen[hp.name] = seen.get(hp.name, 0) + 1
                name = hp.name if seen[hp.name] == 1 else f"{hp.name}#{seen[hp.name]}"
            self.entries.append(Entry(hp, name, () if choices is None else tuple(choices)))
        decisions = [Categorical(e.decision, e.choices) for e in self.entries if e.decision]
        self.space = SearchSpace("keras_tuner", decisions) if decisions else None
        self.conditional = any(e.hp.conditions for e in self.entries)
        self.signature = [[e.decision, list(e.choices),
                           [c.get_config() for c in e.hp.conditions]]
                          for e in self.entries if e.decision]

    def num_configurations(self) -> Optional[int]:
        """How many distinct value sets exist; None when conditions make that hard to count."""
        if self.conditional:
            return None
        return 1 if self.space is None else self.space.num_architectures()

    def values(self, decisions: Dict[str, Any]) -> Dict[str, Any]:
        """The KerasTuner values of ``decisions``: active hps only, Fixed hps included."""
        hps = kt_hp.HyperParameters()
        for e in self.entries:
            hps.merge([e.hp])
            if hps.is_active(e.hp):
                hps.values[e.hp.name] = (e.hp.value if e.decision is None
                                         else decisions[e.decision])
        return dict(hps.values)

    def decisions(self, values: Dict[str, Any]) -> Dict[str, Any]:
        """The decisions that give ``values`` (e.g. a finished trial's).

        An hp missing from ``values`` (inactive, or added to the space after that trial ran)
        takes its default; a value off the grid takes the nearest grid value.
        """
        out = {}
        for e in self.entries:
            if e.decision is not None:
                out[e.decision] = _nearest(e.hp, e.choices, values.get(e.hp.name, e.hp.default))
        return out

    def key(self, values: Dict[str, Any]) -> str:
        """`values_key` of ``values`` as this space sees them (snapped to the grid, inactive
        hps dropped, hps added since filled with their defaults): equal keys, same trial."""
        return values_key(self.values(self.decisions(values)))


def values_key(values: Dict[str, Any]) -> str:
    """A canonical string for a set of hp values (what "the same trial" means)."""
    return json.dumps(values, sort_keys=True, default=repr)


def _choices(hp: Any, float_points: int, max_choices: int) -> Optional[List[Any]]:
    """The values of a tunable hp, or None for a Fixed one."""
    if isinstance(hp, kt_hp.Fixed):
        return None
    if isinstance(hp, kt_hp.Boolean):
        return [False, True]
    if isinstance(hp, kt_hp.Choice):
        return list(hp.values)
    if isinstance(hp, (kt_hp.Int, kt_hp.Float)):
        is_int = isinstance(hp, kt_hp.Int)
        grid = _grid(hp, max_choices) if hp.step is not None else None
        if grid is None:
            n = float_points if hp.step is None else max_choices
            grid = [_scale(hp, k / (n - 1)) for k in range(n)] if n > 1 else [hp.min_value]
        return _tidy(grid, hp, is_int)
    raise TypeError(f"Hyperparameter {hp.name!r} is a {type(hp).__name__}; the nascell oracle "
                    "translates Choice, Int, Float, Boolean and Fixed hyperparameters only")


def _grid(hp: Any, max_choices: int) -> Optional[List[float]]:
    """KerasTuner's stepped grid, or None if it has more than ``max_choices`` values."""
    lo, hi, step = hp.min_value, hp.max_value, hp.step
    if hp.sampling == "linear":
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        return [lo + k * step for k in range(n)] if n <= max_choices else None
    n = int(math.log(hi / lo, step) + 1e-8) + 1
    if n > max_choices:
        return None
    grid = [lo * step ** k for k in range(n)]
    return grid if hp.sampling == "log" else [hi + lo - g for g in grid]


def _scale(hp: Any, p: float) -> float:
    """The value at position ``p`` in [0, 1] of the hp's sampling scale."""
    lo, hi = hp.min_value, hp.max_value
    if hp.sampling == "linear" or lo == hi:
        return lo + p * (hi - lo)
    if hp.sampling == "log":
        return lo * (hi / lo) ** p
    return hi + lo - lo * (hi / lo) ** (1 - p)  # reverse_log


def _unit(hp: Any, value: float) -> float:
    """Inverse of `_scale` (position of ``value`` in the sampling scale)."""
    lo, hi = hp.min_value, hp.max_value
    if lo == hi:
        return 0.0
    value = min(max(value, lo), hi)
    if hp.sampling == "linear":
        return (value - lo) / (hi - lo)
    if hp.sampling == "log":
        return math.log(value / lo) / math.log(hi / lo)
    return 1 - math.log((hi + lo - value) / lo) / math.log(hi / lo)


def _tidy(grid: Sequence[float], hp: Any, is_int: bool) -> List[Any]:
    out: List[Any] = []
    for v in grid:
        v = min(max(v, hp.min_value), hp.max_value)
        v = int(round(v)) if is_int else float(f"{v:.12g}")
        if v not in out:
            out.append(v)
    return sorted(out)


def _nearest(hp: Any, choices: Tuple[Any, ...], value: Any) -> Any:
    for c in choices:
        if type(c) is type(value) and c == value:
            return c
    if isinstance(hp, (kt_hp.Int, kt_hp.Float)) and isinstance(value, (int, float)):
        u = _unit(hp, float(value))
        return min(choices, key=lambda c: abs(_unit(hp, float(c)) - u))
    for c in choices:  # e.g. 1 given for a Choice of floats
        if c == value:
            return c
    default = hp.default
    if default is not None and default != value:
        return _nearest(hp, choices, default)
    return choices[0]
