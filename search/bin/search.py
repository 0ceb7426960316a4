"""nascell-search: run (or resume) an architecture search from the command line.

    nascell-search --dataset=ptb --strategy=reinforce --num_trials=1000   # cells on PTB
    nascell-search --dataset=cifar10 --strategy=reinforce                 # conv nets, CIFAR-10
    nascell-search --space=nasbench201 --strategy=evolution \\
        --nb201_csv=data/nb201_cifar10.csv --num_trials=500               # seconds, no training
    nascell-search --flagfile=configs/nasbench201.cfg
    nascell-search --strategy=enas --space=enas_conv --cifar_npz=cifar10.npz \
        --enas_option=epochs=2                                            # ENAS, shared weights

Every strategy takes the same route: a space, a strategy, an evaluator and an executor, run by
`nascell.search.core.loop.run_search` (ENAS is the ``enas`` strategy with the ``supernet``
evaluator), then the best architecture exported through `nascell.search.handover`. Everything
goes to --run_dir (default ./runs/<space>-<strategy>). Run the same command again after a crash
(or with a larger --num_trials) to resume; a different search in the same directory is refused.
Flags are checked before any work starts (`nascell.search.bin.search_plan.resolve`;
search_flags.py defines them).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional

from absl import app, flags, logging

import _nascell_launch as _quiet
from nascell._args import as_flags
from nascell.search.bin.search_flags import DEFAULT_CHILD_TRIALS
from nascell.search.bin.search_plan import child_flags, default_evaluator, resolve

__all__ = ["build_evaluator", "build_executor", "default_evaluator", "main", "resolve", "run"]

FLAGS = flags.FLAGS


def build_evaluator(name: str, csv_path: Optional[str], options: Optional[Dict] = None):
    from nascell.search.evaluators import create_evaluator
    if name == "nasbench201":
        return create_evaluator(name, csv_path=csv_path)
    if child_flags is not None and name in ("rnn_lm", "conv_classifier"):
        return child_flags.evaluator_from_flags(name)
    return create_evaluator(name, **(options or {}))


def build_executor():
    from nascell.search.executors import create_executor
    if FLAGS.executor == "ray":
        return create_executor("ray", address=FLAGS.ray_address,
                               max_in_flight=FLAGS.workers or None,
                               max_retries=FLAGS.max_retries,
                               max_tasks_per_worker=FLAGS.max_tasks_per_worker)
    if FLAGS.executor == "local":
        return create_executor("local", workers=FLAGS.workers, max_retries=FLAGS.max_retries,
                               max_tasks_per_worker=FLAGS.max_tasks_per_worker)
    return create_executor(FLAGS.executor)


def _export(run_dir: str, best_spec: Any) -> None:
    from nascell import kinds
    if kinds.find_kind(best_spec) is None:
        logging.info("the best architecture is a %s, not a spec of a registered kind: nothing "
                     "to export (see %s/best/best.json)", type(best_spec).__name__, run_dir)
        return
    from nascell.search import handover  # the one module that joins search and export
    _status("exporting the best architecture (SavedModel, layer.keras, picture) ...")
    path = handover.export_best(run_dir, final=False, overwrite=True)
    from nascell import _io
    meta = _io.read_json_or_none(os.path.join(path, "metadata.json")) or {}
    training = (meta.get("weights") or {}).get("training")
    how = ("a fresh initialization (the run kept no trained weights)" if not training else
           f"the trained weights of trial {training.get('trial_id')}")
    print(f"exported the best architecture to {path}, with {how}")


def _status(line: str) -> None:
    """A long step says what it is doing, in one line (on stderr, with the progress line)."""
    print(f"nascell-search: {line}", file=sys.stderr, flush=True)


def _plot_rewards(run_dir: str) -> None:
    """<run_dir>/rewards.png: every trial's reward, failures, the best so far."""
    from nascell.search.rundir.plots import plot_rewards
    try:
        print(f"reward plot: {plot_rewards(run_dir)}")
    except ValueError:  # no trial succeeded: nothing to plot
        pass
    except Exception as e:  # a plot must not cost the search its summary or its export
        logging.warning("could not draw the reward plot of %s: %s: %s", run_dir,
                        type(e).__name__, e)


def _phase(trial) -> str:
    phase = (trial.meta or {}).get("phase")
    return f", {phase} phase" if phase else ""


def main(argv: List[str]) -> None:
    _quiet.quiet_python_logs()
    try:
        plan = resolve(argv)
    except app.UsageError as e:  # one line, as absl reports a bad flag value
        sys.stderr.write(f"nascell-search: {e}\nPass --helpshort or --helpfull to see help on "
                         "flags.\n")
        sys.exit(1)
    from nascell.search.core.failures import SearchFailedError
    from nascell.search.core.loop import run_search
    from nascell.search.core.progress import score_text
    from nascell.search.core.strategy import create_strategy
    from nascell.search.data import DataError, DataNotFoundError
    from nascell.search.rundir.run_dir import RunDirError
    from nascell.search.spaces import create_space

    space = create_space(plan["space"], **plan["space_options"])
    strategy = create_strategy(plan["strategy"], space, seed=FLAGS.seed,
                               **plan["strategy_options"])
    evaluator = build_evaluator(plan["evaluator"], plan["csv_path"], plan["evaluator_options"])
    executor = build_executor()
    # ask the controller's batch at a time: --m if given, else the strategy's own (a preset's)
    m = FLAGS.m if FLAGS["m"].present or strategy.m is None else strategy.m
    # a strategy with a schedule (ENAS) says how many trials one run of it takes
    num_trials = plan["num_trials"] or strategy.planned_trials() or DEFAULT_CHILD_TRIALS
    resuming = os.path.exists(os.path.join(plan["run_dir"], "config.json"))
    _status(f"{'resuming' if resuming else 'starting'} a search of {num_trials} trials "
            f"({plan['strategy']} on {plan['space']}, {plan['evaluator']} evaluator) in "
            f"{plan['run_dir']}")
    try:
        result = run_search(space, strategy, evaluator, plan["run_dir"], num_trials=num_trials,
                            executor=executor, m=m, progress=FLAGS.progress,
                            checkpoint_every=(FLAGS.checkpoint_every
                                              or strategy.checkpoint_every),
                            top_k=FLAGS.top_k,
                            tensorboard=FLAGS.tensorboard,
                            max_consecutive_failures=FLAGS.max_consecutive_failures,
                            keep_weights=FLAGS.keep_weights)
    except RunDirError as e:
        sys.exit(f"nascell-search: {as_flags(str(e), ['max_consecutive_failures'])}")
    except SearchFailedError as e:
        _plot_rewards(plan["run_dir"])
        sys.exit(f"nascell-search: {as_flags(str(e), ['max_consecutive_failures'])}")
    except (DataError, DataNotFoundError) as e:  # Evaluator.check_data, before any trial
        sys.exit(f"nascell-search: {e}")
    finally:
        executor.shutdown()
    best = result.best
    if result.exhausted:
        print(f"stopped early: {result.exhausted}")
    if result.all_failed:  # nothing found: no plot of failures alone, and a failed exit
        print(f"{result.num_failed} trials in {result.run_dir}: every one failed")
        from nascell.search.core.failures import all_failed_message
        sys.exit(f"nascell-search: {all_failed_message(result.run_dir, result.trials)} Fix "
                 "the cause and run the same command again (finished trials are not "
                 "evaluated again; raise --num_trials to evaluate new ones).")
    about = ""
    if best is not None:
        score = score_text(evaluator.score_metric, best.metrics)
        about = f" ({score + ', ' if score else ''}trial {best.trial_id}{_phase(best)})"
    print(f"{result.num_done + result.num_failed} trials in {result.run_dir} "
          f"({result.num_failed} failed); best reward "
          f"{'-' if best is None else f'{best.reward:.6f}'}{about}")
    _plot_rewards(result.run_dir)
    if best is not None:
        spec = best.spec.to_json() if hasattr(best.spec, "to_json") else best.spec
        print(f"best architecture: {spec}")
        if FLAGS.export:
            try:
                _export(result.run_dir, best.spec)
            except Exception as e:  # the search itself is safe in the run directory
                logging.exception("export failed")
                sys.exit(f"nascell-search: the search finished, but export failed: {e}; "
                         f"run nascell-export --run_dir={result.run_dir} to retry")


def run() -> None:
    """Run the binary; the `nascell-search` console script (`_nascell_launch.search`) calls it
    once it has decided whether the process is quiet."""
    app.run(main)


if __name__ == "__main__":  # python -m: quiet as the binary, past TensorFlow's import
    _quiet.start("nascell-search")
    run()
