"""The parts a search space is declared from: its two decision types and its depth schedule.

* `Categorical(name, choices)`: pick one item of ``choices``; the value is the item itself.
* `Skips(name, num_candidates)`: pick any subset of the earlier items ``0..k-1``; the value is
  the sorted tuple of chosen indices. The k-th `Skips` decision of a space (counting from 0)
  must have exactly ``k`` candidates: it is item ``k``'s anchor point, and the controller
  attends over the anchors of earlier items to decide which of them feed item ``k``.
* `DepthSchedule`: a space that grows (the conv spaces' 6 layers, 2 more every 1,600 sampled
  architectures), by whole items of consecutive decisions.

A decision checks its own values, maps them to and from the tokens a controller reads and
writes, and samples them; `nascell.search.core.space.SearchSpace` orders them and decodes them
to a spec. Every mistake raises `SpaceError`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Hashable, List, Sequence, Tuple, Union

import numpy as np


class SpaceError(ValueError):
    """A search space was declared wrongly, or decisions do not fit it."""


@dataclasses.dataclass(frozen=True)
class Categorical:
    """Pick one of ``choices``; the decision's value is the chosen item itself.

    Choices must be distinct, hashable and JSON-serializable (numbers, strings, booleans,
    None), so that a trial's decisions can be stored as JSON and read back.
    """

    name: str
    choices: Tuple[Any, ...]

    def __post_init__(self):
        _check_name(self.name)
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Sequence):
            raise SpaceError(f"Categorical {self.name!r}: argument `choices` must be a list or "
                             f"tuple. Received: choices={self.choices!r}")
        choices = tuple(self.choices)
        if not choices:
            raise SpaceError(f"Categorical {self.name!r}: choices are empty; give at least one")
        for c in choices:
            if not isinstance(c, (str, int, float, bool, type(None))):
                raise SpaceError(f"Categorical {self.name!r}: choice {c!r} is a "
                                 f"{type(c).__name__}; use JSON scalars (str, int, float, bool, "
                                 "None) and map them to objects in decode")
        keys = [_key(c) for c in choices]
        if len(set(keys)) != len(keys):
            dup = sorted({repr(c) for c, k in zip(choices, keys) if keys.count(k) > 1})
            raise SpaceError(f"Categorical {self.name!r}: duplicate choices {dup}")
        object.__setattr__(self, "choices", choices)

    @property
    def num_choices(self) -> int:
        return len(self.choices)

    @property
    def num_values(self) -> int:
        return len(self.choices)

    def index(self, value: Any) -> int:
        """The token index of ``value``; a clear error if it is not a choice."""
        k = _key(value)
        for i, c in enumerate(self.choices):
            if _key(c) == k:
                return i
        raise SpaceError(f"decision {self.name!r}: {value!r} is not one of its choices "
                         f"{list(self.choices)}")

    def value(self, index: int) -> Any:
        if not 0 <= int(index) < len(self.choices):
            raise SpaceError(f"decision {self.name!r}: token {index} out of range "
                             f"[0, {len(self.choices) - 1}]")
        return self.choices[int(index)]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def config(self) -> Dict[str, Any]:
        return {"type": "categorical", "name": self.name, "choices": list(self.choices)}


@dataclasses.dataclass(frozen=True)
class Skips:
    """Pick a subset of the earlier items ``0..num_candidates-1`` (skip connections).

    The value is a sorted tuple of the chosen indices. The k-th Skips decision of a space has
    ``num_candidates == k``; it is item k's anchor point (the first has no candidates).
    """

    name: str
    num_candidates: int

    def __post_init__(self):
        _check_name(self.name)
        n = self.num_candidates
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise SpaceError(f"Skips {self.name!r}: argument `num_candidates` must be an integer "
                             f">= 0. Received: num_candidates={n!r}")
        object.__setattr__(self, "num_candidates", int(n))

    @property
    def num_values(self) -> int:
        return 2 ** self.num_candidates

    def normalize(self, value: Any) -> Tuple[int, ...]:
        """``value`` as a sorted tuple of ints, or a clear error."""
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set,
                                                                      frozenset, np.ndarray)):
            raise SpaceError(f"decision {self.name!r}: the value must be a list of earlier item "
                             f"indices in [0, {self.num_candidates - 1}]. "
                             f"Received: value={value!r}")
        out = []
        for j in value:
            if isinstance(j, bool) or not isinstance(j, (int, np.integer)):
                raise SpaceError(f"decision {self.name!r}: index {j!r} is not an integer")
            if not 0 <= j < self.num_candidates:
                raise SpaceError(f"decision {self.name!r}: index {int(j)} out of range; the "
                                 f"candidates are 0..{self.num_candidates - 1}"
                                 if self.num_candidates else
                                 f"decision {self.name!r}: has no candidates (it is the first "
                                 f"anchor). Received: index {int(j)}")
            out.append(int(j))
        if len(set(out)) != len(out):
            raise SpaceError(f"decision {self.name!r}: repeated index in {list(value)}")
        return tuple(sorted(out))

    def mask(self, value: Any) -> List[int]:
        """The 0/1 token vector (one entry per candidate) of ``value``."""
        chosen = set(self.normalize(value))
        return [1 if j in chosen else 0 for j in range(self.num_candidates)]

    def from_mask(self, mask: Sequence[int]) -> Tuple[int, ...]:
        if len(mask) != self.num_candidates:
            raise SpaceError(f"decision {self.name!r}: mask of length {len(mask)}, expected "
                             f"{self.num_candidates}")
        return tuple(j for j, bit in enumerate(mask) if int(bit))

    def sample(self, rng: np.random.Generator) -> Tuple[int, ...]:
        bits = rng.integers(0, 2, size=self.num_candidates)
        return tuple(int(j) for j in np.flatnonzero(bits))

    def config(self) -> Dict[str, Any]:
        return {"type": "skips", "name": self.name, "num_candidates": self.num_candidates}


Decision = Union[Categorical, Skips]


@dataclasses.dataclass(frozen=True)
class DepthSchedule:
    """A space that grows: ``start`` items, ``step`` more every ``every`` samples, at most
    ``maximum``.

    Every item contributes ``decisions_per_item`` consecutive decisions, so after ``n`` samples
    the active decisions are the first ``depth(n) * decisions_per_item`` of the space. The
    paper's conv schedule is ``DepthSchedule(start=6, step=2, every=1600, maximum=15, ...)``.
    """

    start: int
    step: int
    every: int
    maximum: int
    decisions_per_item: int

    def __post_init__(self):
        for f in ("start", "step", "every", "maximum", "decisions_per_item"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if f == "step" else 1):
                raise SpaceError(f"DepthSchedule: argument `{f}` must be a positive integer. "
                                 f"Received: {f}={v!r}")
        if self.start > self.maximum:
            raise SpaceError(f"DepthSchedule: start ({self.start}) exceeds maximum "
                             f"({self.maximum})")

    def depth(self, num_samples: int) -> int:
        return min(self.maximum, self.start + self.step * (max(0, int(num_samples)) // self.every))

    def num_decisions(self, num_samples: int) -> int:
        return self.depth(num_samples) * self.decisions_per_item

    def depths(self) -> List[int]:
        """Every depth the schedule passes through, in order."""
        out, d = [], self.start
        while True:
            out.append(min(d, self.maximum))
            if d >= self.maximum or self.step == 0:
                return out
            d += self.step

    def config(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise SpaceError(f"Argument `name` (a decision's name) must be a non-empty string. "
                         f"Received: name={name!r}")


def _key(value: Any) -> Hashable:
    # 1 == True == 1.0 in Python; keep booleans, numbers and strings apart, and accept numpy
    # scalars for the Python numbers they hold.
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return ("number", value.item() if isinstance(value, np.generic) else value)
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(value))
    return (type(value).__name__, value)
