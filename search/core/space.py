"""Search spaces declared from parts: an ordered list of decisions plus decode/encode.

A search space is data: an ordered list of decisions, each of one of two types
(`nascell.search.core.decisions`, re-exported here),

* `Categorical(name, choices)`: pick one item of ``choices``; the value is the item itself.
* `Skips(name, num_candidates)`: pick any subset of the earlier items ``0..k-1``; the value is
  the sorted tuple of chosen indices, item ``k``'s skip connections.

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

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from nascell.search.core.decisions import Categorical, Decision, DepthSchedule, Skips, SpaceError

__all__ = ["Categorical", "Decision", "DepthSchedule", "SearchSpace", "Skips", "SpaceError"]


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
