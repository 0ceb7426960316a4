"""What nascell-train trains, and with which settings: the spec, the grid, the options.

`resolve_spec` finds the spec (``--spec_json``, ``--cell`` or the best trial of
``--run_dir``), `grid_points` the grid's combinations of the ``--*_grid`` flags, `point_name`
the file a grid point's result is kept in, and `base_options` the evaluator's arguments (the
paper's full size, then ``--child_*`` flags and your own data). A bad flag raises
`absl.app.UsageError` with one line worded for the command line. `nascell.search.bin.train`
(the binary) runs the stage.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from typing import Any, Dict, List, Optional

from absl import app

from nascell.search.bin import child_flags
from nascell.search.bin.train_flags import FLAGS

__all__ = ["base_options", "grid_points", "point_name", "resolve_spec"]


def _usage(message: str) -> None:
    raise app.UsageError(message)


# --- the spec ------------------------------------------------------------------------------------


def _spec_of(data: Any, where: str):
    from nascell.spec import SpecError, spec_from_dict

    if isinstance(data, dict) and "kind" not in data and isinstance(data.get("spec"), dict):
        data = data["spec"]
    try:
        return spec_from_dict(data)
    except SpecError as e:
        _usage(f"{where} does not hold a usable spec: {e}")


def _best_from_store(path: str):
    """The spec of the highest-reward finished trial in the trial store at ``path``."""
    from nascell.search.core.trial import TrialStatus
    from nascell.search.rundir.store import StoreError, TrialStore

    try:
        store = TrialStore(path, readonly=True)
    except StoreError as e:
        _usage(f"cannot read {path}: {e}")
    try:
        done = [t for t in store.trials([TrialStatus.DONE])
                if t.spec is not None and t.reward is not None]
    finally:
        store.close()
    if not done:
        _usage(f"{path} has no finished trial with a spec yet; run the search longer or pass "
               f"--spec_json")
    best = max(done, key=lambda t: (t.reward, -t.trial_id))
    spec = best.spec.to_dict() if hasattr(best.spec, "to_dict") else best.spec
    return _spec_of(spec, path)


def resolve_spec():
    """The spec to train, from --spec_json, --cell or --run_dir (see the module docstring)."""
    if FLAGS.cell and FLAGS.spec_json:
        _usage("pass --spec_json (a found spec) or --cell (a baseline), not both")
    if FLAGS.cell:
        return FLAGS.cell
    if FLAGS.spec_json:
        path = os.path.expanduser(FLAGS.spec_json)
        if not os.path.isfile(path):
            _usage(f"--spec_json={FLAGS.spec_json}: no such file")
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                _usage(f"--spec_json={FLAGS.spec_json} is not JSON ({e.msg} at line {e.lineno})")
        return _spec_of(data, f"--spec_json={FLAGS.spec_json}")
    if not FLAGS.run_dir:
        _usage("pass --run_dir (a search's run directory), --spec_json (a spec file) or "
               "--cell=lstm (a baseline)")
    best = os.path.join(FLAGS.run_dir, "best", "best.json")
    if os.path.isfile(best):
        with open(best, encoding="utf-8") as f:
            return _spec_of(json.load(f), best)
    from nascell.search.rundir.run_dir import STORE_FILE

    store = os.path.join(FLAGS.run_dir, STORE_FILE)
    if os.path.isfile(store):
        return _best_from_store(store)
    _usage(f"--run_dir={FLAGS.run_dir} has neither best/best.json nor {STORE_FILE}; is it a "
           f"nascell-search run directory?")


# --- the grid ------------------------------------------------------------------------------------


def _floats(name: str, values: List[str]) -> List[float]:
    try:
        out = [float(v) for v in values]
    except ValueError:
        _usage(f"Argument `--{name}` must be comma-separated numbers. "
               f"Received: --{name}={','.join(values)}")
    if any(v < 0 for v in out):
        _usage(f"Argument `--{name}` must hold values >= 0. Received: --{name}={','.join(values)}")
    return out


def _decay_epochs(values: List[str]) -> List[Optional[int]]:
    out: List[Optional[int]] = []
    for v in values:
        if v.lower() in ("none", "never", "0"):
            out.append(None)
        elif v.isdigit():
            out.append(int(v))
        else:
            _usage(f"Argument `--lr_decay_epoch_grid` must be epochs (positive integers) or "
                   f"'none'. Received: --lr_decay_epoch_grid={','.join(values)}")
    return out


def grid_points(kind: str, base: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Every combination of the grid flags, as evaluator-argument overrides."""
    lrs = _floats("lr_grid", FLAGS.lr_grid) or [base["lr"]]
    if any(v == 0 for v in lrs):
        _usage("--lr_grid values must be > 0")
    decays = _floats("weight_decay_grid", FLAGS.weight_decay_grid) or [base.get("weight_decay",
                                                                                0.0)]
    eps = _floats("bn_epsilon_grid", FLAGS.bn_epsilon_grid)
    if eps and kind != "conv_classifier":
        _usage("--bn_epsilon_grid applies to conv specs only (a recurrent cell has no batch "
               "normalization)")
    if any(v == 0 for v in eps):
        _usage("--bn_epsilon_grid values must be > 0")
    eps = eps or ([base.get("bn_epsilon", 1e-3)] if kind == "conv_classifier" else [None])
    starts = _decay_epochs(FLAGS.lr_decay_epoch_grid) or [base.get("lr_decay_epoch")]
    points = []
    for lr, wd, ep, start in itertools.product(lrs, decays, eps, starts):
        point = {"lr": lr, "weight_decay": wd, "lr_decay_epoch": start}
        if ep is not None:
            point["bn_epsilon"] = ep
        points.append(point)
    return points


def point_name(index: int, point: Dict[str, Any], spec_json: str, options: Dict[str, Any]) -> str:
    """File name of a grid point: readable settings plus a hash of everything it depends on."""
    key = json.dumps({"point": point, "spec": json.loads(spec_json), "options": options},
                     sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
    text = "_".join(f"{k}={v}" for k, v in sorted(point.items()))
    return f"{index:03d}_{text}_{digest}".replace("/", "-")


# --- the evaluator's options --------------------------------------------------------------------


def base_options(kind: str) -> Dict[str, Any]:
    """Evaluator arguments of the final stage: the paper's full size, then --child_* flags."""
    options = dict(child_flags.PROXY_DEFAULTS[kind])
    if "target_params" in child_flags.PAPER_SETTINGS[kind]:  # the paper's size, not the proxy's
        options.pop("units", None)
    options.update(child_flags.PAPER_SETTINGS[kind])
    given = {arg: FLAGS[flag].value for flag, arg in child_flags.FLAG_ARGS[kind].items()
             if FLAGS[flag].value is not None}
    if "units" in given:
        options.pop("target_params", None)
    if "target_params" in given:
        options.pop("units", None)
    options.update(given)
    for arg in ("steps_per_epoch", "max_valid_steps", "subset"):
        if options.get(arg) == 0:
            options[arg] = None
    if kind == "rnn_lm" and options.get("clipnorm") == 0:
        options["clipnorm"] = None
    if kind == "rnn_lm":
        # The final stage trains language models as the literature does, unless told not to.
        options["carry_state"] = given.get("carry_state", True)
        if FLAGS.test_batch_size is not None:
            options["test_batch_size"] = FLAGS.test_batch_size
    options["data_dir"] = FLAGS.data_dir
    options["download"] = FLAGS.download
    if kind == "conv_classifier":
        options["cifar_npz"] = FLAGS.cifar_npz
    # Your own data: the data flags, else the data the search in --run_dir ran on.
    options.update(child_flags.data_flags.data_options()
                   or child_flags.data_flags.run_data_options(FLAGS.run_dir, kind))
    return options
