"""Registry of search spaces: ``create_space(name, **options)``.

Built-in spaces (see each module): ``conv_v1``, ``conv_v2``, ``conv_v3`` (the paper's CIFAR-10
spaces, decoding to `nascell.spec.ConvSpec`), ``rnn_cell`` (the paper's recurrent cell tree,
decoding to `nascell.spec.RNNCellSpec`), ``nasbench201`` (the NAS-Bench-201 cell, decoding
to its architecture string), ``synthetic_pairwise`` (a tabular space with strong pairwise
interactions and a known optimum, `nascell.search.spaces.synthetic_pairwise`) and the ENAS
spaces ``enas_rnn``, ``enas_conv``, ``enas_macro`` (`nascell.search.spaces.enas`).
Register your own with `register_space`.

`SPACE_ALIASES` is the one table of other names for a space: ``conv`` is ``conv_v3``.
`create_space` (Python) and ``nascell-search --space`` (`nascell.search.bin.search_flags`
imports the table) accept the same names; the space built is the aliased one, so its
`SearchSpace.config` (what a run directory records) names ``conv_v3`` either way.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from nascell.search.core.space import SearchSpace

_SPACES: Dict[str, Callable[..., SearchSpace]] = {}
# Another name -> the registered space it stands for (the paper's latest conv space).
SPACE_ALIASES: Dict[str, str] = {"conv": "conv_v3"}


def register_space(name: str, factory: Callable[..., SearchSpace]) -> None:
    """Make ``factory(**options) -> SearchSpace`` available as ``create_space(name, ...)``."""
    _SPACES[name] = factory


def available_spaces() -> List[str]:
    return sorted(_SPACES)


def resolve_space_name(name: str) -> str:
    """The registered name ``name`` stands for: itself when registered (a space registered
    under an alias's name wins), else its `SPACE_ALIASES` entry. Raises ValueError naming the
    known names otherwise."""
    if name in _SPACES:
        return name
    if name in SPACE_ALIASES and SPACE_ALIASES[name] in _SPACES:
        return SPACE_ALIASES[name]
    aliases = [f"{a} (= {t})" for a, t in sorted(SPACE_ALIASES.items())]
    raise ValueError(f"Argument `name` must be a registered search space or an alias of one: "
                     f"{available_spaces() + aliases}. Received: name={name!r}")


def create_space(name: str, **options: Any) -> SearchSpace:
    """A registered search space by name (or by an alias in `SPACE_ALIASES`: ``"conv"`` is
    ``"conv_v3"``), built with its keyword options."""
    name = resolve_space_name(name)
    try:
        return _SPACES[name](**options)
    except TypeError as e:
        raise ValueError(f"bad options for search space {name!r}: {e}") from None


def space_from_config(config: Dict[str, Any]) -> SearchSpace:
    """Rebuild a space from `SearchSpace.config()` (its registry name and options)."""
    return create_space(config["name"], **config.get("options", {}))


from nascell.search.spaces import conv as _conv  # noqa: E402
from nascell.search.spaces import nasbench201 as _nasbench201  # noqa: E402
from nascell.search.spaces import rnn_cell as _rnn_cell  # noqa: E402
from nascell.search.spaces import synthetic_pairwise as _synthetic  # noqa: E402

register_space("conv_v1", _conv.conv_v1)
register_space("conv_v2", _conv.conv_v2)
register_space("conv_v3", _conv.conv_v3)
register_space("rnn_cell", _rnn_cell.rnn_cell_space)
register_space("nasbench201", _nasbench201.nasbench201_space)
register_space("synthetic_pairwise", _synthetic.synthetic_pairwise_space)

# The ENAS spaces (enas_rnn, enas_conv, enas_macro) register themselves on import.
from nascell.search.spaces import enas as _enas  # noqa: E402,F401

__all__ = ["SPACE_ALIASES", "available_spaces", "create_space", "register_space",
           "resolve_space_name", "space_from_config"]
