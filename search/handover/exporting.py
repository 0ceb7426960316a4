"""The one module where the search meets `nascell.export`: a run's trained model -> an export.

Dependencies flow one way, ``nascell`` <- ``nascell.search`` and ``nascell`` <-
``nascell.export``; this module is the single exception (tests/test_layering.py walks the
imports to keep it so). It reads nothing of a run directory itself: an `ExportRecord`
(`nascell.search.handover.record`) says what to export, and this module hands it to the
exporter:

* `export_best` / `export_final`: `nascell.export.export_spec` of a run's best trial (or a
  given trial, or its final stage's model), with the trained layer, the whole model beside it
  (``model/``, a ``serving_default`` SavedModel) and how it was trained (``metadata.json``):
  what nascell-search / nascell-train do at their end;
* `load_model`: the whole trained model of an export folder with its exported layer put back;
* `run`: the ``nascell-export`` binary, `nascell.export.bin.export` with ``--run_dir`` served
  by `RUN_SOURCE`.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from absl import logging

from nascell import kinds
from nascell.export.bin import export as export_binary
from nascell.search.handover import record as records
from nascell.search.handover import trained
from nascell.search.handover.record import FINAL, ExportRecord, RunExportError
from nascell.search.rundir import weights as run_weights


def export_best(run_dir: str, trial: Optional[int] = None, directory: Optional[str] = None,
                final: Optional[bool] = None, **kwargs: Any) -> str:
    """Export the best trial of a search run (or trial ``trial``, or its final stage's model)
    into ``<run_dir>/export/``.

    The folder is ``<run_dir>/export/best`` (``.../trial_<id>``, ``.../final``) unless
    ``directory`` is given. ``final`` (None: if the run has a finished final stage and no
    ``trial`` is given) exports the final stage's model. Sizes not in ``kwargs`` come from the
    run (`nascell.search.handover.record.export_sizes`). The weights are the trained ones the
    run kept (the whole model goes to the export's ``model/``) or rebuilds
    (`nascell.search.handover.record.trained_weights`), else (or with ``weights_from=False``)
    a fresh initialization; ``metadata.json``'s ``weights.trained`` says which. Other keyword
    arguments go to `nascell.export.export_spec`."""
    record = records.trial_for_export(run_dir, trial, final)
    if directory is None:
        directory = os.path.join(run_dir, "export", _default_folder(record, trial))
    return _export(record, directory, kwargs)


def export_final(final_dir: str, directory: Optional[str] = None, overwrite: bool = True,
                 **kwargs: Any) -> str:
    """Export a finished final stage (``nascell-train``'s ``final_dir``): the found cell with
    its final weights and the whole model (``model/saved_model``, ``serving_default``), into
    ``<final_dir>/export`` unless ``directory`` is given."""
    record = records.final_of_folder(final_dir)
    return _export(record, directory or os.path.join(final_dir, "export"),
                   dict(kwargs, overwrite=overwrite))


def _default_folder(record: ExportRecord, trial: Optional[int]) -> str:
    return ("final" if record.stage == FINAL else "best" if trial is None
            else f"trial_{record.trial_id}")


def _export(record: ExportRecord, directory: str, kwargs: Dict[str, Any]) -> str:
    from nascell.export.exporter import export_spec
    from nascell.export.serving import TrainedModel
    for key, value in records.export_sizes(record).items():
        if key == "layer_config":  # the run's layer settings, under the caller's own
            kwargs["layer_config"] = {**value, **(kwargs.get("layer_config") or {})}
        elif kwargs.get(key) is None:
            kwargs[key] = value
    provenance = {"run_dir": record.run_dir, "trial_id": record.trial_id,
                  "reward": record.reward, "metrics": record.metrics or {},
                  "stage": record.stage}
    if record.final_dir:
        provenance["final_dir"] = record.final_dir
    training = None
    if kwargs.get("weights_from") is False:  # asked for a fresh initialization
        kwargs["weights_from"] = None
    elif kwargs.get("weights_from") is None and record.model:
        found = trained.trained_source(record)
        kwargs["weights_from"] = found["core"]
        kwargs["model"] = TrainedModel(found["model"], found["modality"], found["files"],
                                       found["preprocessing"], found["description"])
        training = found["training"]
    elif kwargs.get("weights_from") is None:
        source, facts = records.trained_weights(record, kwargs)
        kwargs["weights_from"] = source
        provenance.update(facts)
        if source is None:
            logging.info("trial %s of %s kept no weights; exporting a fresh initialization",
                         record.trial_id, record.run_dir)
        else:
            training = trained.training_facts(record, None, facts or source)
    provenance.update(trained.own_data(record), **(kwargs.pop("provenance", None) or {}))
    return trained.carry_vocabulary(record, export_spec(
        record.spec, directory, provenance=provenance, training=training, **kwargs))


def load_model(export_dir: str, return_state: bool = False):
    """The whole trained model of an export folder (its ``model/``), with the exported layer
    (``weights.npz``) put back in as its first recurrent layer or its conv features: the
    model that scored the validation figure in ``metadata.json``. Language models come back
    as ``ids -> logits`` (``return_state``: ``[ids, *states] -> [logits, *states]``)."""
    from nascell.export.artifacts import WEIGHTS_FILE, assign_weights, read_weights
    from nascell.export.serving import MODEL_DIR
    folder = os.path.join(export_dir, MODEL_DIR)
    if not run_weights.is_model_folder(folder):
        raise FileNotFoundError(f"{export_dir} holds no trained model ({folder}/"
                                f"{run_weights.MODEL_FILE}); it was exported without one")
    model = run_weights.rebuild(folder, return_state=return_state)
    weights = os.path.join(export_dir, WEIGHTS_FILE)
    assign_weights(kinds.find_core(model, first=True), read_weights(weights), weights)
    return model


class _RunSource(export_binary.RunSource):
    """``nascell-export --run_dir``: what the binary needs of a search run."""

    errors = (RunExportError, ValueError)

    def plan(self, run_dir: str, trial: Optional[int],
             final: Optional[bool]) -> export_binary.RunPlan:
        record = records.trial_for_export(run_dir, trial, final)
        return export_binary.RunPlan(spec=record.spec, sizes=records.export_sizes(record),
                                     folder=_default_folder(record, trial))

    def export(self, run_dir: str, trial: Optional[int], directory: str,
               final: Optional[bool], **kwargs: Any) -> str:
        return export_best(run_dir, trial=trial, directory=directory, final=final, **kwargs)


RUN_SOURCE = _RunSource()


def main(argv) -> int:
    """`nascell.export.bin.export.main` with ``--run_dir`` served by `RUN_SOURCE` (flags
    parsed first)."""
    return export_binary.main(argv, run_source=RUN_SOURCE)


def run() -> None:
    """The ``nascell-export`` console script."""
    export_binary.run(run_source=RUN_SOURCE)


if __name__ == "__main__":  # python -m: quiet as the binary, past TensorFlow's import
    import _nascell_launch

    _nascell_launch.start("nascell-export")
    run()
