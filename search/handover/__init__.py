"""The hand-over from a search run to an export: the one place the search meets the export.

    from nascell.search.handover import export_best, load_model
    path = export_best("runs/ptb")          # -> runs/ptb/export/best (or .../final)
    model = load_model(path)                # the whole trained model, exported layer put back

* `record`: a run's trial (or final stage) as a typed `ExportRecord`; no `nascell.export`;
* `trained`: the trained model of a record and what ``metadata.json`` says of its training;
* `exporting`: the one module that imports `nascell.export` (``export_best``,
  ``export_final``, ``load_model``, the ``nascell-export`` binary).
"""

from nascell.search.handover.exporting import export_best, export_final, load_model
from nascell.search.handover.record import (
    ExportRecord,
    RunExportError,
    export_sizes,
    trial_for_export,
)

__all__ = ["ExportRecord", "RunExportError", "export_best", "export_final", "export_sizes",
           "load_model", "trial_for_export"]
