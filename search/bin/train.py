"""nascell-train: the final training stage of a found architecture (Zoph & Le 2017, 4.1).

(Over 400 lines, at about 420: the final stage's grid, resume and export, each with errors
worded for the command line; the training itself is nascell.search.training.)

    nascell-train --run_dir=runs/rnn_cell-reinforce                  # the search's best spec
    nascell-train --spec_json=best.json --cifar_npz=cifar10.npz \\
        --lr_grid=0.1,0.05 --weight_decay_grid=1e-4,5e-4 --bn_epsilon_grid=1e-3,1e-5 \\
        --lr_decay_epoch_grid=none,30 --grid_epochs=20 --epochs=300
    nascell-train --flagfile=configs/ptb_zaremba_small.cfg            # the LSTM baseline

The spec is ``--spec_json`` (a file holding a spec, or a best.json-style object with a "spec"
key), ``--cell=lstm`` (the baseline LSTM), or by default the best trial of ``--run_dir``:
``<run_dir>/best/best.json``, else the highest-reward finished trial of its trial store. Its
kind picks the trainer: ``rnn_cell`` specs train language models
(`RNNLanguageModelEvaluator`), ``conv`` specs CIFAR-10 classifiers (`ConvClassifierEvaluator`),
at the paper's full size (`child_flags.PAPER_SETTINGS`) unless ``--child_*`` flags say
otherwise. Language models carry the recurrent state across batches (truncated BPTT, as
Zaremba et al. and the paper train them) unless ``--nochild_carry_state``.

1. Grid: every combination of learning rate, weight decay, batch-norm epsilon (conv only) and
   learning-rate decay epoch is trained for ``--grid_epochs`` epochs and scored on the
   validation data (the reward: ``80/ppl^2`` or ``acc^3``). Each point's result is written
   atomically to ``<final_dir>/grid/<point>.json`` when it finishes; a restart skips points
   already there (a point's name hashes its settings and the spec, so a changed grid or spec
   is trained afresh). A grid of one point is not trained: there is nothing to choose.
2. Final: the best point is trained for ``--epochs`` epochs with a checkpoint after every
   epoch in ``<final_dir>/train/`` (a killed training, started again, resumes after its last
   finished epoch), keeping the best-validation weights (``<final_dir>/train/best.weights.h5``);
   the test split is evaluated once, with those weights. The record goes to
   ``<final_dir>/final.json`` (present: nothing is retrained). See
   `nascell.search.training.final_model` for the layout and for loading the model back.
3. Export (``--export``, the default): ``<final_dir>/export/`` gets the found cell with its
   trained weights and the whole trained model, ``model/saved_model``, whose
   ``serving_default`` maps token ids to next-token logits (language models) or images to
   class probabilities (conv nets) with TensorFlow alone (`final_model.export`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

from absl import app, flags

import _nascell_launch as _quiet
from nascell.search.bin import child_flags
from nascell.search.training import final_model

FLAGS = flags.FLAGS


def _define_once(define, name: str, *args, **kwargs) -> None:
    """Define a flag unless another binary imported into this process already has it (the
    same meaning: e.g. --run_dir), so importing several binaries never clashes."""
    if name not in FLAGS:
        define(name, *args, **kwargs)


_define_once(flags.DEFINE_string, "run_dir", None, "Run directory of a search: its best spec "
             "is trained, and results go to <run_dir>/final unless --final_dir is given.")
_define_once(flags.DEFINE_string, "spec_json", None, "File with the spec to train (a spec "
             "JSON object, or an object with a 'spec' key such as best/best.json). Default: "
             "the best trial of --run_dir.")
flags.DEFINE_string("final_dir", None, "Where the grid and final results go (default "
                    "<run_dir>/final; required with --spec_json and no --run_dir).")
flags.DEFINE_list("lr_grid", [], "Learning rates to try (default: the child's --child_lr or "
                  "the paper's).")
flags.DEFINE_list("weight_decay_grid", [], "Weight decays to try (default: one, the child's).")
flags.DEFINE_list("bn_epsilon_grid", [], "Batch-norm epsilons to try (conv specs only).")
flags.DEFINE_list("lr_decay_epoch_grid", [], "Epochs at which the learning-rate decay starts "
                  "('none': no decay).")
flags.DEFINE_integer("grid_epochs", None, "Epochs per grid point (default: --epochs).")
flags.DEFINE_integer("epochs", None, "Epochs of the final training (default: the paper's "
                     "child epochs, 35 for cells, 50 for conv nets).")
flags.DEFINE_enum("cell", None, ["lstm"], "Train a baseline cell instead of a found spec: "
                  "lstm (Keras' LSTMCell, as Zaremba et al.). Exclusive with --spec_json.")
_define_once(flags.DEFINE_bool, "export", True, "At the end, export the found cell with its "
             "trained weights and the whole trained model (a SavedModel with a "
             "serving_default signature) into <final_dir>/export.")
flags.DEFINE_integer("test_batch_size", None, "Language models carrying the state: rows of the "
                     "test stream (default: the batch size; 1: the test split as one stream, "
                     "as Zaremba et al. measure it).")


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


# --- main ---------------------------------------------------------------------------------------


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


def _summary(result) -> Dict[str, Any]:
    return {"reward": result.reward, "failed": result.failed, "error": result.error,
            "metrics": result.metrics, "seconds": result.seconds}


def _kind_of(spec) -> Optional[str]:
    """The evaluator that trains ``spec`` from scratch (its kind's, `nascell.kinds`), or None."""
    from nascell import kinds
    from nascell.search.evaluators.rnn_lm import LSTM

    if spec == LSTM:
        return "rnn_lm"
    spec_kind = kinds.find_kind(spec)
    evaluator = spec_kind.evaluator if spec_kind is not None else None
    return evaluator if evaluator in child_flags.EVALUATORS else None


def _spec_json(spec) -> str:
    return json.dumps(spec) if isinstance(spec, str) else spec.to_json()


def _run_grid(kind: str, spec, spec_json: str, options: Dict[str, Any], grid_epochs: int,
              final_dir: str, out) -> Dict[str, Any]:
    """Train the grid's points (those not done before); returns the best point's record."""
    from nascell import _io
    from nascell.search.evaluators import create_evaluator

    points = grid_points(kind, options)
    if len(points) == 1:
        print(f"grid of one point {points[0]}: nothing to choose, not trained", file=out)
        return {"point": points[0], "reward": None}
    results = []
    for index, point in enumerate(points):
        grid_options = dict(options, **point, epochs=grid_epochs)
        name = point_name(index, point, spec_json, grid_options)
        path = os.path.join(final_dir, "grid", name + ".json")
        record = _io.read_json_or_none(path)
        if record is not None:
            print(f"grid point {index + 1}/{len(points)} {point}: done before, reward "
                  f"{record['reward']:.6g}", file=out)
        else:
            print(f"grid point {index + 1}/{len(points)} {point}: training {grid_epochs} "
                  f"epochs ...", file=sys.stderr, flush=True)
            start = time.time()
            evaluator = create_evaluator(kind, **grid_options)
            evaluator.return_weights = False  # a grid point keeps no weights
            result = evaluator.evaluate(spec, trial_id=index)
            record = {"point": point, "spec": json.loads(spec_json), "options": grid_options,
                      **_summary(result), "wall_seconds": time.time() - start}
            _io.atomic_write_json(path, record)
            status = f"failed ({result.error})" if result.failed else f"reward {result.reward:.6g}"
            print(f"grid point {index + 1}/{len(points)} {point}: {status}", file=out)
        results.append(record)
    ok = [r for r in results if not r["failed"]]
    if not ok:
        sys.exit(f"nascell-train: every grid point failed (see {final_dir}/grid); the first "
                 f"error: {results[0]['error']}")
    return max(ok, key=lambda r: r["reward"])


def final_stage(spec, final_dir: str, out=sys.stdout):
    """The grid, then the final training and the one test evaluation (resumable).

    Returns a `nascell.search.training.final_model.FinalModel`: the ``final.json`` record, the
    trained model in memory (None when ``final.json`` was there already: then
    `load_final_model` rebuilds it) and the path of its best-validation weights.
    """
    import tensorflow as tf

    from nascell import _io
    from nascell.search.evaluators import create_evaluator
    from nascell.search.evaluators._child import ChildDiverged
    from nascell.search.training.checkpoints import CheckpointMismatchError

    kind = _kind_of(spec)
    if kind is None:
        from nascell import kinds
        trainable = [k for k in kinds.available_kinds()
                     if kinds.get_kind(k).evaluator in child_flags.EVALUATORS]
        _usage(f"nascell-train trains specs of the kinds {trainable} (their evaluator trains a "
               f"child from scratch), or --cell=lstm; not "
               f"{getattr(spec, 'kind', type(spec).__name__)!r}")
    child_flags.validate_child_flags(kind)
    if FLAGS.test_batch_size is not None and FLAGS.test_batch_size < 1:
        _usage(f"Argument `--test_batch_size` must be >= 1. "
               f"Received: --test_batch_size={FLAGS.test_batch_size}")
    options = base_options(kind)
    final_epochs = FLAGS.epochs or options["epochs"]
    grid_epochs = FLAGS.grid_epochs or final_epochs
    for name, value in (("epochs", final_epochs), ("grid_epochs", grid_epochs)):
        if value < 1:
            _usage(f"Argument `--{name}` must be >= 1. Received: --{name}={value}")
    spec_json = _spec_json(spec)
    final_path = os.path.join(final_dir, final_model.RECORD)
    weights_path = os.path.join(final_dir, final_model.WEIGHTS)
    done = _io.read_json_or_none(final_path)
    if done is not None and done.get("spec") == json.loads(spec_json):
        print(f"final training already done: {final_path}", file=out)
        return final_model.FinalModel(record=done, model=None, weights_path=weights_path)

    best = _run_grid(kind, spec, spec_json, options, grid_epochs, final_dir, out)
    final_options = dict(options, **best["point"], epochs=final_epochs)
    print(f"final training with {best['point']}: {final_epochs} epochs, then the test split "
          f"...", file=sys.stderr, flush=True)
    evaluator = create_evaluator(kind, **final_options)

    def on_epoch(record):
        figures = ", ".join(f"{k} {v:.4g}" for k, v in record.items()
                            if k not in ("epoch",) and isinstance(v, float))
        print(f"final training epoch {record['epoch']}/{final_epochs}: {figures}", file=out,
              flush=True)

    start = time.time()
    try:
        model, metrics = final_model.train_final_model(kind, evaluator, spec, final_dir,
                                                       on_epoch=on_epoch)
    except CheckpointMismatchError as e:
        _usage(f"{e} (it is {os.path.join(final_dir, final_model.TRAIN_DIR)})")
    except (ChildDiverged, tf.errors.ResourceExhaustedError) as e:
        sys.exit(f"nascell-train: the final training failed: {e}; its checkpoints are in "
                 f"{os.path.join(final_dir, final_model.TRAIN_DIR)}")
    if metrics.get("resumed_after_epoch"):
        print(f"final training resumed after epoch {metrics['resumed_after_epoch']}", file=out)
    reward = metrics["reward"]
    record = {"spec": json.loads(spec_json), "kind": kind, "point": best["point"],
              "grid_reward": best["reward"], "options": final_options, "reward": reward,
              "failed": False, "error": None, "metrics": metrics,
              "seconds": metrics["seconds"], "wall_seconds": time.time() - start,
              "weights": final_model.WEIGHTS}
    _io.atomic_write_json(final_path, record)
    test = {k: v for k, v in metrics.items() if k.startswith("test_")}
    print(f"final training with {best['point']}: reward {reward:.6g}, best epoch "
          f"{metrics['best_epoch']}, test {test}; written to {final_path}, best weights in "
          f"{weights_path}", file=out)
    return final_model.FinalModel(record=record, model=model, weights_path=weights_path)


def run_final(spec, final_dir: str, out=sys.stdout) -> Dict[str, Any]:
    """`final_stage`'s record (what ``final.json`` holds)."""
    return final_stage(spec, final_dir, out).record


def main(argv: List[str]) -> None:
    _quiet.quiet_python_logs()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    try:
        spec = resolve_spec()
        final_dir = FLAGS.final_dir or (os.path.join(FLAGS.run_dir, "final")
                                        if FLAGS.run_dir else None)
        if final_dir is None:
            _usage("with --spec_json and no --run_dir, pass --final_dir for the results")
        run_final(spec, final_dir)
    except app.UsageError as e:
        sys.stderr.write(f"nascell-train: {e}\n")
        sys.exit(1)
    if FLAGS.export:
        try:
            final_model.export(spec, final_dir)
        except final_model.ExportFailed as e:  # the trained model is safe in final_dir
            sys.exit(f"nascell-train: {e}")


def run() -> None:
    app.run(main)


if __name__ == "__main__":  # python -m: quiet as the binary, past TensorFlow's import
    _quiet.start("nascell-train")
    run()
