"""The hand-over from a search run to an export: the one module that needs both halves.

Dependencies flow one way, ``nascell`` <- ``nascell.search`` and ``nascell`` <-
``nascell.export``; this module is the single exception. No other module of the search imports
``nascell.export``, and the export reaches a run directory only through here
(tests/test_layering.py walks the imports to keep it so). It holds:

* `trial_for_export`: a run's best trial (``best/best.json``, else the store's best) or a
  given trial, its spec, metrics and run config;
* `export_sizes`: the `export_spec` sizes the run trained it at (its kind reads the run's
  records, `nascell.kinds.SpecKind.sizes_from_run`, and the evaluator may declare more);
* `trained_weights`: where its trained weights are: a file the evaluator kept
  (`RunDir.trial_weights`), or what the evaluator can rebuild (its ``trained_weights`` hook:
  ENAS cuts a derived cell's weights out of the last supernet checkpoint);
* `export_best`: all of the above, then `nascell.export.export_spec` (what ``nascell-search``
  does at the end of a search and ``nascell-export --run_dir`` does on demand).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from absl import logging

from nascell import _io, kinds
from nascell.search.run_dir import RunDir, RunDirError
from nascell.spec import SpecError, spec_from_dict


class RunExportError(ValueError):
    """The run directory cannot give what export needs; the message says what to pass."""


def _open(run_dir: str) -> RunDir:
    if not os.path.isdir(run_dir):
        raise RunExportError(f"--run_dir {run_dir} does not exist (or is not a folder)")
    try:
        return RunDir.open_existing(run_dir, readonly=True)
    except RunDirError as e:
        raise RunExportError(str(e)) from None


def _as_spec(raw: Any, where: str):
    if kinds.find_kind(raw) is not None:
        return raw
    if isinstance(raw, dict):
        try:
            spec = spec_from_dict(raw)
        except SpecError as e:
            raise RunExportError(f"{where} holds a spec that does not validate: {e}") from None
        if kinds.find_kind(spec) is not None:
            return spec
    raise RunExportError(f"{where} holds no exportable spec (got {raw!r}); the exportable kinds "
                         f"are {', '.join(kinds.available_kinds())}")


def trial_for_export(run_dir: str, trial: Optional[int] = None) -> Dict[str, Any]:
    """``{"trial_id", "spec", "reward", "metrics", "config", "weights"}`` of the best trial
    of ``run_dir`` (or of trial ``trial``); ``weights`` is a kept weights file or None."""
    run = _open(run_dir)
    try:
        if trial is None:
            best_path = os.path.join(run.path, "best", "best.json")
            entry = None
            try:
                entry = _io.read_json_or_none(best_path)
            except ValueError as e:
                raise RunExportError(f"{e}; or pass --trial ID to export a trial from the "
                                     "store instead") from None
            if entry is None:
                best = run.store.best(1)
                if not best:
                    raise RunExportError(f"{run_dir} has no finished trial yet; nothing to "
                                         f"export")
                t = best[0]
                entry = {"trial_id": t.trial_id, "reward": t.reward, "spec": t.spec,
                         "metrics": t.metrics}
            where = best_path
        else:
            t = run.store.get(int(trial))
            if t is None:
                raise RunExportError(f"trial {trial} is not in {run_dir} (trial ids 0.."
                                     f"{run.store.max_trial_id()})")
            if t.status.value != "done":
                raise RunExportError(f"trial {trial} of {run_dir} is {t.status.value}, not "
                                     f"done{': ' + t.error if t.error else ''}; pick a "
                                     f"finished trial")
            entry = {"trial_id": t.trial_id, "reward": t.reward, "spec": t.spec,
                     "metrics": t.metrics}
            where = f"trial {trial} of {run_dir}"
        info = dict(entry)
        info["spec"] = _as_spec(entry.get("spec"), where)
        info["metrics"] = dict(entry.get("metrics") or {})
        info["config"] = run.config
        info["run_dir"] = run.path
        info["weights"] = run.trial_weights(info["trial_id"], info["metrics"])
        return info
    finally:
        run.close()


def export_sizes(info: Dict[str, Any]) -> Dict[str, Any]:
    """The `export_spec` keyword arguments a run trained a trial's spec at (may be {}): what
    its kind reads from the run's records, then what the evaluator declared under ``export``
    in its config (it wins)."""
    config = info.get("config") or {}
    sizes = kinds.kind_of(info["spec"]).sizes_from_run(config, info.get("metrics") or {})
    declared = (config.get("evaluator") or {}).get("export") or {}
    for key, value in declared.items():
        if key == "layer_config":
            sizes["layer_config"] = {**sizes.get("layer_config", {}), **value}
        else:
            sizes[key] = tuple(value) if key == "input_shape" else value
    return sizes


def trained_weights(info: Dict[str, Any]):
    """``(weights source, provenance facts)`` of a trial: a kept file, or what the run's
    evaluator class rebuilds (``trained_weights(run_dir, config, info)`` returning a built
    Keras layer or a path, or None), or ``(None, {})`` for a fresh initialization."""
    if info.get("weights") is not None:
        return info["weights"], {}
    name = (info.get("config", {}).get("evaluator") or {}).get("name")
    if not name:
        return None, {}
    from nascell.search.evaluators import evaluator_class
    try:
        cls = evaluator_class(name)
    except (ValueError, ImportError):  # a custom evaluator this process does not know
        return None, {}
    hook = getattr(cls, "trained_weights", None)
    if hook is None:
        return None, {}
    found = hook(info["run_dir"], info["config"], info)
    return found if found is not None else (None, {})


def export_best(run_dir: str, trial: Optional[int] = None, directory: Optional[str] = None,
                **kwargs: Any) -> str:
    """Export the best trial of a search run (or trial ``trial``) into ``<run_dir>/export/``.

    The folder is ``<run_dir>/export/best`` (or ``.../trial_<id>``) unless ``directory`` is
    given. Sizes not passed in ``kwargs`` (``units``, ``input_dim``, ``input_shape``,
    ``layer_config``, ...) come from the run (`export_sizes`). The trial's trained weights are
    exported when the run kept or can rebuild them (`trained_weights`); otherwise, or with
    ``weights_from=False``, the export holds a fresh initialization (and says so in
    ``metadata.json``). Other keyword arguments go to `nascell.export.export_spec`.
    """
    from nascell.export.exporter import export_spec  # the one place search meets export
    info = trial_for_export(run_dir, trial)
    if directory is None:
        sub = "best" if trial is None else f"trial_{info['trial_id']}"
        directory = os.path.join(run_dir, "export", sub)
    for key, value in export_sizes(info).items():
        if key == "layer_config":  # the run's layer settings, under the caller's own
            kwargs["layer_config"] = {**value, **(kwargs.get("layer_config") or {})}
        elif kwargs.get(key) is None:
            kwargs[key] = value
    provenance = {"run_dir": os.path.abspath(run_dir), "trial_id": info["trial_id"],
                  "reward": info.get("reward"), "metrics": info.get("metrics", {})}
    if kwargs.get("weights_from") is False:  # asked for a fresh initialization
        kwargs["weights_from"] = None
    elif kwargs.get("weights_from") is None:
        source, facts = trained_weights({**info, "sizes": kwargs})
        kwargs["weights_from"] = source
        provenance.update(facts)
        if source is None:
            logging.info("trial %s of %s kept no weights; exporting a fresh initialization",
                         info["trial_id"], run_dir)
    data = (info.get("config", {}).get("evaluator") or {}).get("data")
    vocab = os.path.join(run_dir, "data", "vocab.json")
    if isinstance(data, dict):  # the run's own data: what the exported network was searched on
        provenance["data"] = data
        if os.path.isfile(vocab):
            provenance["vocabulary"] = "vocab.json"
    provenance.update(kwargs.pop("provenance", None) or {})
    path = export_spec(info["spec"], directory, provenance=provenance, **kwargs)
    if provenance.get("vocabulary") == "vocab.json":  # the token ids its language model used
        from nascell import _io
        with open(vocab, "rb") as f:
            _io.atomic_write_bytes(os.path.join(path, "vocab.json"), f.read())
    return path
