"""nascell-train: the final training stage of a found architecture (Zoph & Le 2017, 4.1).

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

import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

from absl import app, flags

import _nascell_launch as _quiet
from nascell.search.bin import child_flags, train_flags
from nascell.search.bin.train_flags import FLAGS
from nascell.search.bin.train_plan import base_options, grid_points, point_name, resolve_spec
from nascell.search.training import final_model

__all__ = ["base_options", "final_stage", "grid_points", "main", "point_name", "resolve_spec",
           "run", "run_final"]

# --helpshort lists the flags of the binary's module: nascell-train's own, defined apart.
flags.adopt_module_key_flags(train_flags)


def _usage(message: str) -> None:
    raise app.UsageError(message)


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
