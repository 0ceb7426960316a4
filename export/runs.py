"""Reading what export needs from a search run directory (`nascell.search.run_dir`).

* the trial: the best one (``best/best.json``, or the store's best if that file is absent), or
  a given trial id from ``trials.sqlite``;
* its sizes: ``units`` (the trial's ``metrics["units"]`` as the rnn_lm child records it, else
  the run config's), the cell's ``input_dim`` (the child's embedding width: ``units`` when the
  weights are tied), a conv net's ``input_shape`` (the config's, else CIFAR-10's 32x32x3 for a
  CIFAR run);
* its trained weights, if the run saved them: a path in the trial's metrics (``weights`` or
  ``weights_path``), or a file in ``<run_dir>/weights/`` or ``<run_dir>/trials/<id>/`` named
  ``trial_<id>.keras``, ``model.keras`` or ``weights.npz`` (an export folder works too).

An ENAS run (`nascell.search.enas.trainer.run_enas`) reads the same way: ``best/best.json``
holds the derived spec (``enas_rnn_cell`` or ``enas_conv_cell``); its ``config.json`` records
``enas.units`` (the cell width; the supernet's embedding is tied, so ``input_dim`` is
``units`` too), and for the micro space ``enas.filters`` and ``enas.num_cells`` (passed as
``layer_config``) and CIFAR-10 images unless the run trained on custom data. A derived
recurrent cell inherits its trained weights from the run's last supernet checkpoint
(``enas/current.json`` -> ``gen-*/supernet.npz``): the subgraph the cell names, exactly what
the supernet scored it with (`enas_cell_from_supernet`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Optional

from nascell.enas_spec import ENASConvCellSpec, ENASMacroSpec, ENASRNNCellSpec
from nascell.spec import ConvSpec, RNNCellSpec, spec_from_dict

_SPEC_TYPES = (RNNCellSpec, ConvSpec, ENASRNNCellSpec, ENASConvCellSpec, ENASMacroSpec)

_WEIGHT_NAMES = ("trial_{id}.keras", "model.keras", "weights.npz", "trial_{id}.npz",
                 "trial_{id}")


class RunExportError(ValueError):
    """The run directory cannot give what export needs; the message says what to pass."""


def _open(run_dir: str):
    from nascell.search.run_dir import RunDir, RunDirError
    if not os.path.isdir(run_dir):
        raise RunExportError(f"--run_dir {run_dir} does not exist (or is not a folder)")
    try:
        return RunDir.open_existing(run_dir, readonly=True)
    except RunDirError as e:
        raise RunExportError(str(e)) from None


def _as_spec(raw: Any, where: str):
    if isinstance(raw, _SPEC_TYPES):
        return raw
    if not isinstance(raw, dict):
        raise RunExportError(f"{where} holds no exportable spec (got {raw!r}); only rnn_cell, "
                             f"conv, enas_rnn_cell, enas_conv_cell and enas_macro specs can be "
                             f"exported")
    return spec_from_dict(raw)


def trial_info(run_dir: str, trial: Optional[int] = None) -> Dict[str, Any]:
    """``{"trial_id", "spec", "reward", "metrics", "weights"}`` of the best or a given trial."""
    run = _open(run_dir)
    try:
        if trial is None:
            best_path = os.path.join(run.path, "best", "best.json")
            entry = None
            if os.path.isfile(best_path):
                try:
                    with open(best_path, "r", encoding="utf-8") as f:
                        entry = json.load(f)
                except json.JSONDecodeError as e:
                    raise RunExportError(f"{best_path} is corrupt ({e}); pass --trial ID to "
                                         f"export a trial from the store instead") from None
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
        info["weights"] = _find_weights(run.path, info["trial_id"], info["metrics"])
        if info["weights"] is None and isinstance(info["spec"], ENASRNNCellSpec):
            info["enas_supernet"] = enas_supernet_path(run.path, run.config)
        return info
    finally:
        run.close()


def _find_weights(run_dir: str, trial_id: int, metrics: Dict[str, Any]) -> Optional[str]:
    for key in ("weights", "weights_path"):
        path = metrics.get(key)
        if isinstance(path, str):
            path = path if os.path.isabs(path) else os.path.join(run_dir, path)
            if os.path.exists(path):
                return path
    for folder in (os.path.join(run_dir, "weights"),
                   os.path.join(run_dir, "trials", str(trial_id))):
        for name in _WEIGHT_NAMES:
            path = os.path.join(folder, name.format(id=trial_id))
            if os.path.exists(path):
                return path
    return None


def _find_key(obj: Any, keys: Iterable[str]) -> Optional[Any]:
    """The first value of one of ``keys`` anywhere in a nested config (depth first)."""
    keys = tuple(keys)
    if isinstance(obj, dict):
        for k in keys:
            if obj.get(k) is not None:
                return obj[k]
        for v in obj.values():
            found = _find_key(v, keys)
            if found is not None:
                return found
    return None


def export_sizes(run_dir: str, spec: Any, info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The sizes the run trained the spec at, as `export_spec` keyword arguments (may be {})."""
    info = info or {}
    config = info.get("config")
    if config is None:
        path = os.path.join(run_dir, "config.json")
        config = {}
        if os.path.isfile(path):
            with open(path, "r", encoding="utf-8") as f:
                config = json.load(f)
    metrics = info.get("metrics") or {}
    enas = config.get("enas") if config.get("strategy") == "enas" else None
    if isinstance(enas, dict):
        return _enas_sizes(spec, config, enas)
    if isinstance(spec, (RNNCellSpec, ENASRNNCellSpec)):
        units = metrics.get("units") or _find_key(config, ("units",))
        out: Dict[str, Any] = {}
        if units:
            out["units"] = int(units)
            tied = _find_key(config, ("tie_weights",))
            embedding = _find_key(config, ("embedding_dim",))
            out["input_dim"] = int(embedding) if (tied is False and embedding) else int(units)
        return out
    shape = _find_key(config, ("input_shape", "image_shape"))
    if shape:
        return {"input_shape": tuple(int(d) for d in shape)}
    dataset = str(_find_key(config, ("dataset",)) or "")
    if "cifar" in dataset.lower():
        return {"input_shape": (32, 32, 3)}
    return {}


def _enas_sizes(spec: Any, config: Dict[str, Any], enas: Dict[str, Any]) -> Dict[str, Any]:
    """Sizes of a `run_enas` run: its ``config.json`` holds the `ENASOptions` under ``enas``."""
    out: Dict[str, Any] = {}
    if isinstance(spec, ENASRNNCellSpec):
        if enas.get("units"):
            # The supernet ties its embedding to the output layer: input_dim == units.
            out["units"] = out["input_dim"] = int(enas["units"])
        return out
    if isinstance(spec, ENASConvCellSpec):
        out["layer_config"] = {k: int(enas[k]) for k in ("filters", "num_cells")
                               if enas.get(k) is not None}
    shape = _find_key(config, ("input_shape", "image_shape"))
    if shape:
        out["input_shape"] = tuple(int(d) for d in shape)
    elif config.get("data") != "custom":  # run_enas trains the micro space on CIFAR-10
        out["input_shape"] = (32, 32, 3)
    return out


def enas_supernet_path(run_dir: str, config: Dict[str, Any]) -> Optional[str]:
    """The last supernet checkpoint of a recurrent `run_enas` run, or None."""
    if config.get("strategy") != "enas":
        return None
    current = os.path.join(run_dir, "enas", "current.json")
    try:
        with open(current, "r", encoding="utf-8") as f:
            folder = json.load(f)["dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = os.path.join(run_dir, "enas", folder, "supernet.npz")
    return path if os.path.isfile(path) else None


def enas_cell_from_supernet(path: str, spec: ENASRNNCellSpec, units: int):
    """A built `ENASRNNCell` named ``enas_supernet`` holding the subgraph of ``spec`` in the
    supernet checkpoint ``path`` (input size ``units``: the supernet's embedding is tied).

    Raises RunExportError when the checkpoint does not fit (another width or node count).
    """
    import numpy as np

    from nascell.enas_cells import ENASRNNCell
    from nascell.search.enas.rnn_supernet import RNNSupernet
    with open(path, "rb") as f:
        data = f.read()
    try:
        import io
        with np.load(io.BytesIO(data)) as arrays:
            vocab_size = int(arrays["w0"].shape[0])  # the embedding, the supernet's first
        supernet = RNNSupernet(vocab_size, spec.num_nodes, int(units))
        supernet.load_state_bytes(data)
        weights = supernet.export_cell_weights(spec)
        cell = ENASRNNCell(spec, int(units), name="enas_supernet")
        cell.build((None, int(units)))
        cell.set_weights(weights)
    except (ValueError, KeyError) as e:
        raise RunExportError(f"the supernet checkpoint {path} does not fit a {spec.num_nodes}-"
                             f"node cell of {units} units ({e}); pass weights_from, or export "
                             f"a fresh initialization with weights_from=False") from None
    return cell
