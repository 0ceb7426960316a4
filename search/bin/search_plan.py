"""nascell-search's flags checked and worked out into a plan, before any work starts.

`resolve` reads the parsed flags (search_flags.py, child_flags.py, data_flags.py define them)
and returns the search to run: the space (aliases resolved, checked against --dataset and your
own data), the strategy and its options, the evaluator (the space's kind's, or --evaluator)
and its options, the executor's settings and the run directory. Every mistake raises
`absl.app.UsageError` with one line worded for the command line; nothing heavy is built (no
controller, no data), so a bad flag costs no time. `nascell.search.bin.search` (the binary)
runs the plan.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Dict, List, Optional

from absl import app, flags

from nascell._args import as_flags
from nascell.search.bin.search_flags import (
    CONTROLLER_FLAGS,
    CONTROLLER_STRATEGIES,
    DATASET_MODALITY,
    DATASET_SPACES,
    DEDUPE_STRATEGIES,
    DEFAULT_CHILD_TRIALS,
    ENAS_SPACES,
    REINFORCE_SMALL_BUDGET_PRESET,
    SMALL_BUDGET_SPACES,
    SPACE_ALIASES,
    SPACE_EVALUATORS,
    SUPERNET_SPACES,
    TABULAR_EVALUATORS,
)

try:  # the child trainers' flags (budgets, data); optional so nasbench201 works alone
    from nascell.search.bin import child_flags
    _CHILD_FLAGS_ERROR: Optional[str] = None
except ImportError as e:  # pragma: no cover - depends on what is installed
    child_flags = None
    _CHILD_FLAGS_ERROR = str(e)

FLAGS = flags.FLAGS


def _usage(message: str) -> None:
    raise app.UsageError(message)


def _known(names: List[str]) -> str:
    return ", ".join(sorted(names))


def resolve(argv: List[str]) -> Dict[str, Any]:
    """Check every flag and work out the search to run; raises app.UsageError, names nothing
    heavy (no controller, no data) so errors come before any work."""
    if len(argv) > 1:
        _usage(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    for module in FLAGS["import"].value:
        try:
            importlib.import_module(module)
        except ImportError as e:
            _usage(f"--import={module}: cannot import it ({e})")
    for name in ("num_trials", "m", "checkpoint_every", "top_k"):
        if FLAGS[name].value is not None and FLAGS[name].value <= 0:
            _usage(f"Argument `--{name}` must be > 0. Received: --{name}={FLAGS[name].value}")
    if FLAGS.keep_weights < 0:
        _usage(f"Argument `--keep_weights` must be >= 0 (0: keep none). "
               f"Received: --keep_weights={FLAGS.keep_weights}")
    if FLAGS.max_consecutive_failures < 0:
        _usage(f"Argument `--max_consecutive_failures` must be >= 0 (0: never stop). "
               f"Received: --max_consecutive_failures={FLAGS.max_consecutive_failures}")
    space, modality = _resolve_space()
    from nascell.search.core.strategy import available_strategies
    strategies = available_strategies()
    if FLAGS.strategy not in strategies:
        _usage(f"--strategy={FLAGS.strategy}: unknown strategy; known: {_known(strategies)}")
    evaluator, csv_path, evaluator_options = _resolve_evaluator(space, modality)
    strategy_options, space_options = _resolve_strategy(space, evaluator, evaluator_options)
    _resolve_executor(evaluator)
    run_dir = FLAGS.run_dir or os.path.join("runs", f"{space}-{FLAGS.strategy}")
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        _usage(f"--run_dir={run_dir} is a file; pick a directory")
    from nascell.search.rundir.run_dir import RunDir, RunDirError
    try:
        RunDir.check_readable(run_dir)
    except RunDirError as e:
        _usage(str(e))
    num_trials = FLAGS.num_trials or (500 if evaluator in TABULAR_EVALUATORS else None
                                      if evaluator == "supernet" else DEFAULT_CHILD_TRIALS)
    return {"space": space, "space_options": space_options, "strategy": FLAGS.strategy,
            "strategy_options": strategy_options, "evaluator": evaluator, "csv_path": csv_path,
            "evaluator_options": evaluator_options, "run_dir": run_dir,
            "num_trials": num_trials}


def _example_spec(space: str) -> Any:
    """One architecture of ``space`` with its default options (None if it cannot say)."""
    import numpy as np

    from nascell.search.spaces import create_space
    try:
        built = create_space(space)
        return built.decode(built.sample(np.random.default_rng(0)))
    except Exception:  # a user's space that needs options: its kind stays unknown
        return None


def _resolve_space():
    """The space (aliases resolved) and what its architectures read ("sequence", "image" or
    None), checked against --dataset."""
    from nascell import kinds
    from nascell.search.spaces import available_spaces
    spaces = available_spaces()
    defaults = ENAS_SPACES if FLAGS.strategy == "enas" else DATASET_SPACES
    dataset = _dataset()
    space = FLAGS.space or defaults[dataset]
    space = SPACE_ALIASES.get(space, space) if space not in spaces else space
    if space not in spaces:
        _usage(f"--space={FLAGS.space}: unknown search space; known: "
               f"{_known(spaces + list(SPACE_ALIASES))}")
    kind = kinds.find_kind(_example_spec(space))
    modality = kind.modality if kind is not None else None
    wanted = DATASET_MODALITY[dataset]
    if FLAGS["dataset"].present and modality in DATASET_MODALITY.values() and modality != wanted:
        searches = next(d for d, m in DATASET_MODALITY.items() if m == modality)
        _usage(f"--space={FLAGS.space} searches {searches} architectures, not "
               f"--dataset={FLAGS.dataset}; drop one of the two flags or make them agree")
    if child_flags is not None and modality in DATASET_MODALITY.values():
        child_flags.data_flags.validate_data_flags(modality)  # your own data fits the space
    return space, modality


def _dataset() -> str:
    """--dataset, or what your own data (--text_dir, --image_dir, --tfds_name) stands for."""
    own = child_flags.data_flags.own_modality() if child_flags is not None else None
    if own is None:
        return FLAGS.dataset
    implied = next(d for d, m in DATASET_MODALITY.items() if m == own)
    if FLAGS["dataset"].present and FLAGS.dataset != implied:
        _usage(f"--dataset={FLAGS.dataset} and your own "
               f"{'text' if own == 'sequence' else 'images'} name two data sets: drop "
               "--dataset (your data decides what is searched)")
    return implied


def default_evaluator(space: str, strategy: str) -> Optional[str]:
    """The evaluator a space is searched with: ENAS' supernet for --strategy=enas on an ENAS
    space, else what trains the space's spec kind (`SpecKind.evaluator`), else the space's."""
    if strategy == "enas" and space in SUPERNET_SPACES:
        return "supernet"
    from nascell import kinds
    kind = kinds.find_kind(_example_spec(space))
    if kind is not None and kind.evaluator:
        return kind.evaluator
    return SPACE_EVALUATORS.get(space)


def _resolve_evaluator(space: str, modality: Optional[str]):
    """The evaluator, the NAS-Bench-201 table and the evaluator's options (supernet)."""
    from nascell.search.evaluators import available_evaluators
    evaluators = available_evaluators()
    expected = default_evaluator(space, FLAGS.strategy)
    evaluator = FLAGS.evaluator or expected
    if evaluator is None:
        _usage(f"--space={space} has no default evaluator; pass --evaluator (known: "
               f"{_known(evaluators)})")
    if evaluator not in evaluators:
        _usage(f"--evaluator={evaluator}: unknown evaluator; known: {_known(evaluators)}")
    builtin = {"rnn_lm", "conv_classifier", "nasbench201", "synthetic_pairwise", "supernet"}
    if expected and evaluator in builtin and evaluator != expected:
        _usage(f"--evaluator={evaluator} cannot evaluate --space={space} architectures; "
               f"use --evaluator={expected} (or leave it out)")
    if evaluator == "supernet" and FLAGS.strategy != "enas":
        _usage("--evaluator=supernet scores with the shared weights the enas strategy trains; "
               "use --strategy=enas")
    csv_path = None
    if evaluator == "nasbench201":
        from nascell.search.evaluators.nasbench201 import default_csv_path
        csv_path = FLAGS.nb201_csv or default_csv_path()
        if not csv_path:
            _usage("the nasbench201 evaluator needs its table: pass --nb201_csv=PATH to "
                   "nb201_cifar10.csv (or set NASCELL_NB201_CSV)")
        if not os.path.isfile(csv_path):
            _usage(f"--nb201_csv={csv_path}: no such file; pass the path of nb201_cifar10.csv")
    elif FLAGS.nb201_csv is not None:
        _usage(f"--nb201_csv is only used by the nasbench201 evaluator, not {evaluator}")
    options: Dict[str, Any] = {}
    if evaluator in ("rnn_lm", "conv_classifier", "supernet") and child_flags is None:
        _usage(f"the {evaluator} evaluator needs nascell.search.bin.child_flags, which did "
               f"not import: {_CHILD_FLAGS_ERROR}")
    if evaluator in ("rnn_lm", "conv_classifier"):
        child_flags.validate_child_flags(evaluator)  # app.UsageError naming the flag
    elif evaluator == "supernet":
        options = dict(child_flags.supernet_options(modality or ""), seed=FLAGS.seed)
    elif child_flags is not None:
        given = sorted(name for name in FLAGS if name.startswith("child_") and FLAGS[name].present)
        if given:
            _usage(f"{', '.join('--' + g for g in given)} configure the rnn_lm / "
                   f"conv_classifier children, not --evaluator={evaluator}")
    return evaluator, csv_path, options


def _resolve_strategy(space: str, evaluator: str, evaluator_options: Dict[str, Any]):
    """The strategy's options (and the space's, from --enas_option); fills the evaluator's
    --enas_option settings into ``evaluator_options``."""
    strategy_options: Dict[str, Any] = {}
    for name, option in CONTROLLER_FLAGS.items():
        if FLAGS[name].value is not None:
            if FLAGS.strategy not in CONTROLLER_STRATEGIES:
                _usage(f"--{name} sets the controller of the {'/'.join(CONTROLLER_STRATEGIES)} "
                       f"strategies; --strategy={FLAGS.strategy} has none")
            strategy_options[option] = FLAGS[name].value
    if FLAGS.strategy in CONTROLLER_STRATEGIES and FLAGS["m"].present:
        strategy_options["m"] = FLAGS.m  # the controller updates once per m rewards
    if FLAGS.strategy == "reinforce":
        # the preset's m unless --m is given (`main` then asks the strategy for its m)
        strategy_options["preset"] = FLAGS.reinforce_preset or (
            REINFORCE_SMALL_BUDGET_PRESET if space in SMALL_BUDGET_SPACES else "paper")
        if FLAGS.reward_shaping is not None:
            strategy_options["reward"] = FLAGS.reward_shaping
    else:
        for name in ("reinforce_preset", "reward_shaping"):
            if FLAGS[name].value is not None:
                _usage(f"--{name} sets the reinforce strategy; --strategy={FLAGS.strategy} "
                       "does not use it")
    if FLAGS.local_search_order is not None:
        if FLAGS.strategy != "local_search":
            _usage(f"--local_search_order sets the local_search strategy; "
                   f"--strategy={FLAGS.strategy} does not use it")
        strategy_options["order"] = FLAGS.local_search_order
    if FLAGS.dedupe is not None:
        if FLAGS.strategy not in DEDUPE_STRATEGIES:
            _usage(f"--dedupe applies to the {'/'.join(DEDUPE_STRATEGIES)} strategies, not "
                   f"--strategy={FLAGS.strategy}")
        strategy_options["dedupe"] = FLAGS.dedupe
    space_options: Dict[str, Any] = {}
    if FLAGS.enas_option:
        if evaluator != "supernet":
            _usage("--enas_option sets an ENAS search: --strategy=enas on "
                   f"--space={' / '.join(SUPERNET_SPACES)} (the supernet evaluator)")
        from nascell.search.enas.options import parse_option, split_options
        flat = {}
        for item in FLAGS.enas_option:
            try:
                key, value = parse_option(item)
            except ValueError as e:
                _usage(as_flags(str(e), ["enas_option"]))
            flat[key] = value
        parts = split_options(flat)
        if "m" in parts["strategy"] and "m" in strategy_options:
            _usage("pass --m or --enas_option=controller_batch=N, not both")
        strategy_options.update(parts["strategy"])
        space_options = parts["space"]
        evaluator_options.update(parts["evaluator"])
    return strategy_options, space_options


def _resolve_executor(evaluator: str) -> None:
    from nascell.search.executors import available_executors
    if FLAGS.executor not in available_executors():
        _usage(f"--executor={FLAGS.executor}: unknown executor; known: "
               f"{_known(available_executors())}")
    if FLAGS.workers < 0 or (FLAGS.workers == 0 and FLAGS.executor != "ray"):
        _usage(f"Argument `--workers` must be >= 1 (0 only with --executor=ray). "
               f"Received: --workers={FLAGS.workers}")
    if FLAGS.ray_address is not None and FLAGS.executor != "ray":
        _usage("--ray_address needs --executor=ray")
    if evaluator == "supernet" and (FLAGS.executor != "local" or FLAGS.workers != 1
                                    or FLAGS.max_tasks_per_worker is not None):
        _usage("--evaluator=supernet evaluates in the search's own process (the enas strategy "
               "trains the same shared weights between trials): leave out --executor, "
               "--workers and --max_tasks_per_worker")
    if FLAGS.executor == "ray":
        from nascell.search.executors.ray_executor import import_ray
        try:
            import_ray()
        except ImportError as e:
            _usage(str(e))
    if FLAGS.max_retries < 0:
        _usage(f"Argument `--max_retries` must be >= 0. "
               f"Received: --max_retries={FLAGS.max_retries}")
    if FLAGS.max_tasks_per_worker is not None:
        if FLAGS.max_tasks_per_worker < 1:
            _usage(f"Argument `--max_tasks_per_worker` must be >= 1. "
                   f"Received: --max_tasks_per_worker={FLAGS.max_tasks_per_worker}")
        if FLAGS.executor == "local" and FLAGS.workers <= 1:
            _usage("--max_tasks_per_worker needs worker processes: --workers >= 2, or "
                   "--executor=ray")
