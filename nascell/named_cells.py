"""Named recurrent cells, each with a card saying where it came from and how it measured.

    import nascell

    layer = nascell.RNN(nascell.named_cell("nas", units=200), return_sequences=True)
    card = nascell.cell_card("nas")          # the card: source, search budget, results table
    print(card.results)                      # Markdown, as measured by benchmarks/
    card.picture("out")                      # out/architecture.png (+ .svg, .dot)

The registry holds the cells of the paper (``nas``: the cell Zoph & Le found on Penn Treebank,
the same as `NASCell` with biases; ``figure5``: the paper's base-2 example, which only
illustrates the encoding) and every cell nascell's own searches found and measured
(``benchmarks/README.md``, "ptb_search"). A card is a JSON file in ``nascell/cards/``;
`register_cell` adds your own at run time.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

from nascell.spec import RNNCellSpec, spec_from_dict

CARDS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cards")
CARD_SCHEMA = 1


@dataclasses.dataclass(frozen=True)
class CellCard:
    """A named cell and what is known about it.

    Args:
        name: the registry name (lowercase letters, digits, ``_`` and ``-``).
        spec: the cell's `RNNCellSpec`.
        summary: one line: what the cell is.
        source: where it comes from (a paper, or the nascell search that found it).
        space: the search space it was found in (e.g. ``"rnn_cell base=8"``), if searched.
        strategy: the search strategy and preset, if searched.
        trials: children trained by that search.
        proxy: the child budget that scored them.
        cpu_hours: the search's CPU hours (children and controller), if measured.
        results: a Markdown table of how it measured against the LSTM at equal size.
        notes: anything a user should know before picking it.
    """

    name: str
    spec: RNNCellSpec
    summary: str
    source: str
    space: Optional[str] = None
    strategy: Optional[str] = None
    trials: Optional[int] = None
    proxy: Optional[str] = None
    cpu_hours: Optional[float] = None
    results: str = ""
    notes: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or not all(
                c.isalnum() or c in "_-" for c in self.name) or self.name != self.name.lower():
            raise ValueError("Argument `name` must be a non-empty lowercase name of letters, "
                             f"digits, '_' and '-'. Received: name={self.name!r}")
        if not isinstance(self.spec, RNNCellSpec):
            raise ValueError("Argument `spec` must be an RNNCellSpec. "
                             f"Received: spec={self.spec!r}")

    def cell(self, units: int, **kwargs: Any):
        """A `TreeCell` of this spec with ``units`` (other `TreeCell` arguments pass through)."""
        from nascell.tree_cell import TreeCell

        return TreeCell(self.spec, units=units, **kwargs)

    def picture(self, directory: str) -> List[str]:
        """Draw the cell tree into ``directory`` (as an export does); returns the files."""
        from nascell import diagram, kinds

        kind = kinds.kind_of(self.spec)
        return diagram.write_diagram(kind.diagram(self.spec, {}), directory,
                                     stem="architecture", picture=kind.picture(self.spec, {}))

    def to_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out["spec"] = self.spec.to_dict()
        return {"schema": CARD_SCHEMA, **out}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "CellCard":
        data = dict(data)
        schema = data.pop("schema", None)
        if schema != CARD_SCHEMA:
            raise ValueError(f"Argument `data` must be a cell card of schema {CARD_SCHEMA}. "
                             f"Received: schema={schema!r}")
        spec = spec_from_dict(data.pop("spec"))
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"Argument `data` must hold only the card's fields {sorted(fields)}. "
                             f"Received: unknown keys {unknown}")
        return cls(spec=spec, **data)


_CARDS: Dict[str, CellCard] = {}


def _load_builtin() -> None:
    if _CARDS or not os.path.isdir(CARDS_DIR):
        return
    for name in sorted(os.listdir(CARDS_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(CARDS_DIR, name), encoding="utf-8") as f:
                card = CellCard.from_dict(json.load(f))
            _CARDS[card.name] = card


def register_cell(card: CellCard, overwrite: bool = False) -> CellCard:
    """Add ``card`` to the registry (``overwrite=True`` replaces a card of the same name)."""
    _load_builtin()
    if card.name in _CARDS and not overwrite:
        raise ValueError(f"Argument `card` must have a name not yet registered (pass "
                         f"overwrite=True to replace it). Received: card.name={card.name!r}")
    _CARDS[card.name] = card
    return card


def available_cells() -> List[str]:
    """The registered names, sorted."""
    _load_builtin()
    return sorted(_CARDS)


def cell_card(name: str) -> CellCard:
    """The card of a registered cell."""
    _load_builtin()
    if name not in _CARDS:
        raise ValueError(f"Argument `name` must be a registered cell, one of "
                         f"{available_cells()}. Received: name={name!r}")
    return _CARDS[name]


def named_cell(name: str, units: int, **kwargs: Any):
    """``cell_card(name).cell(units, **kwargs)``: a `TreeCell`, for `nascell.RNN`."""
    return cell_card(name).cell(units, **kwargs)
