"""The final training of a found architecture: one model trained to the end, checkpointed every
epoch, kept at its best validation epoch, tested once (``nascell-train``'s last stage).

Where things are, under the final stage's folder ``final_dir``:

* ``train/``: the checkpoint folder (`nascell.search.training.checkpoints`): the last finished
  epoch, the best one, ``progress.json``; a killed training started again resumes after its
  last finished epoch.
* ``train/best.weights.h5``: the best-validation weights once training is over (`WEIGHTS`).
* ``final.json``: the record: spec, kind, settings, metrics (per-epoch history, best epoch,
  test figures), ``model_args`` (how to rebuild the model) and ``weights`` (the path of the
  best weights, relative to ``final_dir``).

`train_final_model` returns a `FinalModel`: the record, the trained Keras model in memory (for
language models the ``[ids, *states] -> [logits, *states]`` model, see
`nascell.search.evaluators.rnn_lm.build_language_model`) and the weights path. `load_final_model`
rebuilds the same from ``final_dir`` in a later process. `export` writes ``<final_dir>/export``:
the found cell with its final weights and the whole model as a SavedModel with a
``serving_default`` signature (`nascell.search.handover.export_final`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Dict, Optional

TRAIN_DIR = "train"
WEIGHTS = os.path.join(TRAIN_DIR, "best.weights.h5")
RECORD = "final.json"


@dataclasses.dataclass
class FinalModel:
    """A trained final model: ``record`` (what ``final.json`` holds), ``model`` (Keras, with
    the best-validation weights) and ``weights_path`` (those weights on disk)."""

    record: Dict[str, Any]
    model: Any
    weights_path: str


def train_final_model(kind: str, evaluator, spec, final_dir: str, on_epoch=None):
    """Train ``spec`` with ``evaluator`` (an ``rnn_lm`` or ``conv_classifier`` evaluator) into
    ``final_dir/train``; returns ``(model, metrics)`` (see the evaluators' ``train_model``)."""
    if kind not in ("rnn_lm", "conv_classifier"):
        raise ValueError(f"Argument `kind` must be 'rnn_lm' or 'conv_classifier'. Received: "
                         f"kind={kind!r}")
    return evaluator.train_model(spec, os.path.join(final_dir, TRAIN_DIR), evaluate_test=True,
                                 on_epoch=on_epoch)


def rebuild_model(kind: str, model_args: Dict[str, Any], weights_path: Optional[str] = None,
                  return_state: bool = True):
    """The model described by ``model_args`` (a ``final.json``'s), with ``weights_path`` loaded.

    Language models come back in their stateful form (``return_state=True``), or with
    ``return_state=False`` in the ``ids -> logits`` form (same weights, same file).
    """
    from nascell.spec import spec_from_dict

    args = dict(model_args)
    if kind == "rnn_lm":
        from nascell.search.evaluators.rnn_lm import LSTM, build_language_model

        spec = args.pop("spec")
        spec = LSTM if spec == LSTM else spec_from_dict(spec)
        model = build_language_model(spec, return_state=return_state, **args)
    elif kind == "conv_classifier":
        from nascell.conv import build_conv_classifier

        spec = spec_from_dict(args.pop("spec"))
        args["input_shape"] = tuple(args["input_shape"])
        model = build_conv_classifier(spec, **args)
    else:
        raise ValueError(f"Argument `kind` must be 'rnn_lm' or 'conv_classifier'. Received: "
                         f"kind={kind!r}")
    if weights_path is not None:
        model.load_weights(weights_path)
    return model


def load_final_model(final_dir: str) -> FinalModel:
    """The final model of a finished ``nascell-train`` run, rebuilt from ``final_dir``."""
    from nascell import _io

    record = _io.read_json_or_none(os.path.join(final_dir, RECORD))
    if record is None or record.get("failed"):
        raise FileNotFoundError(f"{final_dir} has no finished final training ({RECORD}); run "
                                f"nascell-train first")
    weights = os.path.join(final_dir, record["weights"])
    model = rebuild_model(record["kind"], record["metrics"]["model_args"], weights)
    return FinalModel(record=record, model=model, weights_path=weights)


class ExportFailed(RuntimeError):
    """The final training finished but its export did not; the message says how to retry."""


def export(spec, final_dir: str, out=sys.stdout) -> Optional[str]:
    """Export the finished final stage in ``final_dir`` to ``<final_dir>/export`` (replacing an
    earlier export there): the found cell with its trained weights (for a language model its
    first recurrent layer, for a conv net its features) and the whole trained model,
    ``model/saved_model``. Returns the folder, or None for a baseline cell (``"lstm"``: not a
    found spec, nothing to export). Raises `ExportFailed` (the training itself is safe)."""
    from nascell.search import handover  # the one module that joins search and export

    if isinstance(spec, str):
        print(f"the {spec} baseline is not a found spec: no cell export", file=out)
        return None
    try:
        path = handover.export_final(final_dir)
    except Exception as e:  # the trained model is safe in final_dir
        raise ExportFailed(f"the final training finished, but export failed: {e}; run "
                           "nascell-train again with the same flags to retry") from e
    print(f"exported the found cell with its final weights, and the whole trained model "
          f"(model/saved_model, signature serving_default), to {path}", file=out)
    return path
