"""nascell.export: a spec (or a trained layer) -> a standalone export folder, and back.

    from nascell.export import export_spec, export_best, load
    path = export_spec(spec, "exports/cell", units=256, input_dim=128)
    layer = load(path)            # nascell.RNN(TreeCell(...)) with the exported weights

Every registered spec kind exports (`nascell.kinds`): tree cells (``rnn_cell``), conv nets
(``conv``) and the three ENAS kinds (``enas_rnn_cell``: ``RNN(ENASRNNCell)``, whose single
state is ``h``; ``enas_conv_cell`` / ``enas_macro``: a feature extractor, ``input_shape``
required), and any kind a user registers.

The folder holds ``spec.json``, ``weights.npz``, ``layer.keras``, a ``saved_model/`` with
named endpoints (TensorFlow alone runs it), ``architecture.dot`` and ``metadata.json``; see
`nascell.export.exporter`, `nascell.export.artifacts` and docs/export.md. ``export_best``
exports a search run's best trial through `nascell.search.handover`, the one module that joins
search and export. The binary ``nascell-export`` does the same from the command line.

An export of trained weights (from a search or ``nascell-train``) also holds the whole model
they were trained in (``model/``, `nascell.export.serving`); ``load_model(folder)`` rebuilds
it with the exported layer put back.

The names below are imported on first use.
"""

import importlib

_EXPORTS = {
    "export_spec": "nascell.export.exporter",
    "export_best": "nascell.export.exporter",
    "load": "nascell.export.loader",
    "load_spec": "nascell.export.loader",
    "load_metadata": "nascell.export.loader",
    "ExportFormatError": "nascell.export.artifacts",
    "WeightsMismatchError": "nascell.export.artifacts",
    "TrainedModel": "nascell.export.serving",
    "load_model": "nascell.search.handover",  # the whole trained model (needs nascell.search)
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nascell.export' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
