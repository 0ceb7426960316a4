"""nascell.export: a spec (or a trained layer) -> a standalone export folder, and back.

    from nascell.export import export_spec, load
    path = export_spec(spec, "exports/cell", units=256, input_dim=128)
    layer = load(path)            # nascell.RNN(TreeCell(...)) with the exported weights

Every registered spec kind exports (`nascell.kinds`): tree cells (``rnn_cell``), conv nets
(``conv``) and the three ENAS kinds (``enas_rnn_cell``: ``RNN(ENASRNNCell)``, whose single
state is ``h``; ``enas_conv_cell`` / ``enas_macro``: a feature extractor, ``input_shape``
required), and any kind a user registers.

The folder holds ``spec.json``, ``weights.npz``, ``layer.keras``, a ``saved_model/`` with
named endpoints (TensorFlow alone runs it), ``architecture.dot`` and ``metadata.json``; see
`nascell.export.exporter`, `nascell.export.artifacts` and docs/export.md.

The export imports nothing of `nascell.search`. A search run's best trial is exported, and an
export's whole trained model (``model/``, `nascell.export.serving`) rebuilt, on the search
side: ``nascell.search.handover.export_best`` / ``load_model`` (and the ``nascell-export``
binary's ``--run_dir``). ``nascell.export.export_best`` and ``nascell.export.load_model``
still work in 0.2.x, with a FutureWarning: they forward to `nascell.search.handover` on first
use (`_MOVED`, a lazy import by name, so importing `nascell.export` never imports the search;
tests/test_layering.py allows this one forward and nothing else) and go in 0.3.0.

The names below are imported on first use.
"""

import importlib
import warnings

_EXPORTS = {
    "export_spec": "nascell.export.exporter",
    "load": "nascell.export.loader",
    "load_spec": "nascell.export.loader",
    "load_metadata": "nascell.export.loader",
    "ExportFormatError": "nascell.export.artifacts",
    "WeightsMismatchError": "nascell.export.artifacts",
    "TrainedModel": "nascell.export.serving",
}

# Deprecated names (moved to the search side in 0.2.0, removed in 0.3.0): forwarded lazily.
_MOVED = {
    "export_best": "nascell.search.handover",
    "load_model": "nascell.search.handover",
}
_REMOVED_IN = "0.3.0"

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _MOVED:
        warnings.warn(f"nascell.export.{name} has moved to {_MOVED[name]}.{name} (the search "
                      f"side, which reads run directories); the old name goes in "
                      f"{_REMOVED_IN}. Import it from {_MOVED[name]}.", FutureWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'nascell.export' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
