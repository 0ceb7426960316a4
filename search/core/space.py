"""Search spaces declared from parts: an ordered list of decisions plus decode/encode.

(Over 400 lines, at about 420: the two decision types, the depth schedule and the space that
encodes, decodes, counts and enumerates them are one data format.)

A search space is data: an ordered list of decisions, each of one of two types,

* `Categorical(name, choices)`: pick one item of ``choices``; the value is the item itself.
* `Skips(name, num_candidates)`: pick any subset of the earlier items ``0..k-1``; the value is
  the sorted tuple of chosen indices. The k-th `Skips` decision of a space (counting from 0)
  must have exactly ``k`` candidates: it is item ``k``'s anchor point, and the controller
  attends over the anchors of earlier items to decide which of them feed item ``k``.

plus a ``decode`` function from ``{name: value}`` to a spec (anything: a `nascell.spec`
object, a string, ...) and, optionally, its inverse ``encode``. The paper's spaces are built
from the same parts as a user's own::

    from nascell.search.core.space import Categorical, Skips, SearchSpace

    def decode(d):
        return [(d[f"op{i}"], d[f"in{i}"]) for i in range(3)]

    def encode(layers):
        out = {}
        for i, (op, inputs) in enumerate(layers):
            out[f"op{i}"], out[f"in{i}"] = op, tuple(inputs)
        return out

    space = SearchSpace(
        "my_space",
        [d for i in range(3) for d in (Categorical(f"op{i}", ["conv3", "conv5", "pool"]),
                                       Skips(f"in{i}", num_candidates=i))],
        decode=decode, encode=encode)
    space.decode(space.sample(numpy.random.default_rng(0)))

A space may grow over time (the conv spaces' depth schedule: 6 layers, 2 more every 1,600
sampled architectures). Growth is declared with a `DepthSchedule`: the active decisions after
``n`` samples are always a *prefix* of the full list (`SearchSpace.decisions_at(n)`), so a
controller built on the full list serves every stage, and a spec decoded from an earlier
stage stays valid.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple, Union

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


class SearchSpace:
    """An ordered list of decisions with ``decode`` (decisions -> spec) and ``encode``.

    Args:
      name: a label stored in run configs.
      decisions: the `Categorical` / `Skips` decisions, in the order a controller makes them.
      decode: ``fn({name: value}) -> spec``. Default: the decisions dict itself.
      encode: ``fn(spec) -> {name: value}``, the inverse of ``decode``. Default: only
        available when ``decode`` is the default.
      schedule: an optional `DepthSchedule`; without one every decision is always active.
      options: JSON-serializable settings that recreate this space through its registry
        name (stored by `config`).

    Subclasses may override `_decode` / `_encode` instead of passing functions.
    """

    def __init__(self, name: str, decisions: Sequence[Decision],
                 decode: Optional[Callable[[Dict[str, Any]], Any]] = None,
                 encode: Optional[Callable[[Any], Dict[str, Any]]] = None,
                 schedule: Optional[DepthSchedule] = None,
                 options: Optional[Dict[str, Any]] = None):
        self.name = name
        self._decisions = tuple(decisions)
        self._decode_fn = decode
        self._encode_fn = encode
        self.schedule = schedule
        self.options = dict(options or {})
        self._validate()
        self._by_name = {d.name: i for i, d in enumerate(self._decisions)}

    # --- declaration checks --------------------------------------------------------------------

    def _validate(self) -> None:
        if not self._decisions:
            raise SpaceError(f"search space {self.name!r} has no decisions; give at least one "
                             "Categorical or Skips")
        seen, num_skips = set(), 0
        for i, d in enumerate(self._decisions):
            if not isinstance(d, (Categorical, Skips)):
                raise SpaceError(f"search space {self.name!r}: decision #{i} is a "
                                 f"{type(d).__name__}; expected Categorical or Skips")
            if d.name in seen:
                raise SpaceError(f"search space {self.name!r}: duplicate decision name "
                                 f"{d.name!r}; names must be unique")
            seen.add(d.name)
            if isinstance(d, Skips):
                if d.num_candidates != num_skips:
                    raise SpaceError(
                        f"search space {self.name!r}: Skips {d.name!r} has num_candidates="
                        f"{d.num_candidates}, but it is Skips decision #{num_skips} of the "
                        f"space, so it must have exactly {num_skips} (the earlier anchors)")
                num_skips += 1
        if self._encode_fn is not None and self._decode_fn is None and \
                type(self)._decode is SearchSpace._decode:
            raise SpaceError(f"search space {self.name!r}: encode given without decode")
        if self.schedule is not None:
            for depth in self.schedule.depths():
                n = depth * self.schedule.decisions_per_item
                if n > len(self._decisions):
                    raise SpaceError(
                        f"search space {self.name!r}: the depth schedule reaches {depth} items "
                        f"({n} decisions) but the space declares only {len(self._decisions)}")

    # --- the decision list ---------------------------------------------------------------------

    @property
    def decisions(self) -> Tuple[Decision, ...]:
        """Every decision, at full depth (what a controller is built on)."""
        return self._decisions

    def decisions_at(self, num_samples: int = 0) -> Tuple[Decision, ...]:
        """The decisions active after ``num_samples`` sampled architectures (a prefix)."""
        return self._decisions[:self.num_active(num_samples)]

    def num_active(self, num_samples: Optional[int] = None) -> int:
        """How many leading decisions are active (all of them without a schedule)."""
        if self.schedule is None or num_samples is None:
            return len(self._decisions)
        return self.schedule.num_decisions(num_samples)

    def valid_lengths(self) -> List[int]:
        """The prefix lengths a decisions dict may have."""
        if self.schedule is None:
            return [len(self._decisions)]
        return sorted({d * self.schedule.decisions_per_item for d in self.schedule.depths()} |
                      {len(self._decisions)})

    def __getitem__(self, name: str) -> Decision:
        if name not in self._by_name:
            raise SpaceError(f"search space {self.name!r} has no decision {name!r}")
        return self._decisions[self._by_name[name]]

    def __len__(self) -> int:
        return len(self._decisions)

    def num_architectures(self, num_samples: Optional[int] = None) -> int:
        """How many distinct decision settings the (active part of the) space holds."""
        return math.prod(d.num_values for d in self._decisions[:self.num_active(num_samples)])

    # --- decisions <-> spec --------------------------------------------------------------------

    def check(self, decisions: Dict[str, Any]) -> Dict[str, Any]:
        """Validate a decisions dict; returns it normalized (Skips as sorted tuples)."""
        if not isinstance(decisions, dict):
            raise SpaceError(f"search space {self.name!r}: argument `decisions` must be a dict "
                             f"{{name: value}}. Received: decisions of type "
                             f"{type(decisions).__name__}")
        unknown = [k for k in decisions if k not in self._by_name]
        if unknown:
            raise SpaceError(f"search space {self.name!r}: unknown decision(s) {unknown}; "
                             f"known: {[d.name for d in self._decisions]}")
        n = len(decisions)
        lengths = self.valid_lengths()
        names = [d.name for d in self._decisions[:n]]
        if n not in lengths or set(names) != set(decisions):
            fit = min((length for length in lengths if length >= n), default=lengths[-1])
            want = [d.name for d in self._decisions[:fit]]
            missing = [k for k in want if k not in decisions]
            raise SpaceError(f"search space {self.name!r}: missing decision(s) {missing}"
                             + ("" if len(lengths) == 1 else
                                f" (a valid decisions dict holds the first {lengths} decisions)"))
        out = {}
        for d in self._decisions[:n]:
            v = decisions[d.name]
            if isinstance(d, Categorical):
                out[d.name] = d.choices[d.index(v)]
            else:
                out[d.name] = d.normalize(v)
        return out

    def decode(self, decisions: Dict[str, Any]) -> Any:
        """The spec that ``decisions`` describe (validated first)."""
        return self._decode(self.check(decisions))

    def encode(self, spec: Any) -> Dict[str, Any]:
        """The decisions that decode to ``spec`` (validated)."""
        return self.check(self._encode(spec))

    def _decode(self, decisions: Dict[str, Any]) -> Any:
        if self._decode_fn is None:
            return dict(decisions)
        return self._decode_fn(decisions)

    def _encode(self, spec: Any) -> Dict[str, Any]:
        if self._encode_fn is not None:
            return self._encode_fn(spec)
        if self._decode_fn is None and isinstance(spec, dict):
            return dict(spec)
        raise SpaceError(f"search space {self.name!r} has no encode function; pass "
                         "encode=... to SearchSpace")

    # --- tokens (what a controller reads and writes) -------------------------------------------

    def to_tokens(self, decisions: Dict[str, Any]) -> List[Union[int, List[int]]]:
        """Per active decision: a choice index (Categorical) or a 0/1 list (Skips)."""
        decisions = self.check(decisions)
        return [d.index(decisions[d.name]) if isinstance(d, Categorical) else d.mask(
            decisions[d.name]) for d in self._decisions[:len(decisions)]]

    def from_tokens(self, tokens: Sequence[Union[int, Sequence[int]]]) -> Dict[str, Any]:
        """Inverse of `to_tokens`."""
        if len(tokens) not in self.valid_lengths():
            raise SpaceError(f"search space {self.name!r}: {len(tokens)} tokens; expected one "
                             f"of {self.valid_lengths()}")
        out = {}
        for d, t in zip(self._decisions, tokens):
            out[d.name] = d.value(int(t)) if isinstance(d, Categorical) else d.from_mask(t)
        return out

    # --- sampling and config -------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, num_samples: Optional[int] = None) -> Dict[str, Any]:
        """A uniformly random decisions dict (of the decisions active after ``num_samples``)."""
        return {d.name: d.sample(rng) for d in self._decisions[:self.num_active(num_samples)]}

    def config(self) -> Dict[str, Any]:
        """JSON description: name, options, decisions and schedule."""
        return {"name": self.name, "options": dict(self.options),
                "decisions": [d.config() for d in self._decisions],
                "schedule": None if self.schedule is None else self.schedule.config()}

    def __repr__(self) -> str:
        return (f"SearchSpace({self.name!r}, {len(self._decisions)} decisions, "
                f"{self.num_architectures()} architectures)")


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
