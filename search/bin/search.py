"""nascell-search: run (or resume) an architecture search from the command line.

    nascell-search --dataset=ptb --strategy=reinforce --num_trials=1000   # cells on PTB
    nascell-search --dataset=cifar10 --strategy=reinforce                 # conv nets, CIFAR-10
    nascell-search --space=nasbench201 --strategy=evolution \\
        --nb201_csv=data/nb201_cifar10.csv --num_trials=500               # seconds, no training
    nascell-search --flagfile=configs/nasbench201.cfg

Everything goes to --run_dir (default ./runs/<space>-<strategy>). Run the same command again
after a crash (or with a larger --num_trials) to resume; a different search in the same
directory is refused. Flags are checked before any work starts.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Dict, List, Optional

from absl import app, flags, logging

try:  # the child trainers' flags (budgets, data); optional so nasbench201 works alone
    from nascell.search.bin import child_flags
    _CHILD_FLAGS_ERROR: Optional[str] = None
except ImportError as e:  # pragma: no cover - depends on what is installed
    child_flags = None
    _CHILD_FLAGS_ERROR = str(e)

FLAGS = flags.FLAGS

# Trials of a search that trains real children when --num_trials is not given: with the proxy
# child budget (search/bin/child_flags.py) this finishes in minutes on a 2-core CPU.
DEFAULT_CHILD_TRIALS = 6

DATASET_SPACES = {"ptb": "rnn_cell", "cifar10": "conv"}
SPACE_ALIASES = {"conv": "conv_v3"}
# The evaluator each built-in space is searched with by default, and the ones it works with.
DEFAULT_EVALUATORS = {"rnn_cell": "rnn_lm", "conv_v1": "conv_classifier",
                      "conv_v2": "conv_classifier", "conv_v3": "conv_classifier",
                      "nasbench201": "nasbench201", "synthetic_pairwise": "synthetic_pairwise"}
CONTROLLER_STRATEGIES = ("reinforce", "enas")
# flag -> the controller strategies' option of that meaning
CONTROLLER_FLAGS = {"lr": "learning_rate", "entropy_weight": "entropy_weight",
                    "temperature": "temperature", "tanh_constant": "tanh_constant",
                    "baseline_decay": "baseline_decay", "skip_target": "skip_target",
                    "skip_weight": "skip_weight"}
# Spaces cheap enough to be searched with budgets of a few hundred trials (tabular): their
# reinforce default is the preset tuned for small budgets (see strategies/reinforce.py).
SMALL_BUDGET_SPACES = ("nasbench201", "synthetic_pairwise")
REINFORCE_SMALL_BUDGET_PRESET = "guided"
DEDUPE_STRATEGIES = ("reinforce", "random", "evolution", "local_search")
TABULAR_EVALUATORS = ("nasbench201", "synthetic_pairwise")
# ENAS with weight sharing (`nascell.search.enas`): its own spaces and training loop.
ENAS_SPACES = {"ptb": "enas_rnn", "cifar10": "enas_conv"}
# flag -> ENASOptions field
ENAS_CONTROLLER_FLAGS = {"lr": "controller_lr", "entropy_weight": "entropy_weight",
                         "temperature": "temperature", "tanh_constant": "tanh_constant",
                         "baseline_decay": "baseline_decay"}

flags.DEFINE_string("space", None, "Search space: conv (= conv_v3), conv_v1, conv_v2, "
                    "conv_v3, rnn_cell, nasbench201, or one registered by --import; with "
                    "--strategy=enas also enas_rnn / enas_conv (weight sharing). Default: "
                    "from --dataset (ptb -> rnn_cell, cifar10 -> conv).")
flags.DEFINE_string("strategy", "reinforce", "Search strategy: reinforce, random, evolution, "
                    "enas, or one registered by --import.")
flags.DEFINE_string("evaluator", None, "Evaluator giving each trial its reward. Default: "
                    "per space (rnn_cell -> rnn_lm, conv -> conv_classifier, nasbench201 -> "
                    "nasbench201).")
flags.DEFINE_enum("dataset", "ptb", ["ptb", "cifar10"], "Data set of the paper experiment "
                  "to run: ptb (recurrent cells) or cifar10 (conv nets). Ignored for "
                  "nasbench201.")
flags.DEFINE_string("run_dir", None, "Run directory (created, or resumed if it holds the "
                    "same search). Default: ./runs/<space>-<strategy>.")
flags.DEFINE_integer("num_trials", None, "Trials (architectures evaluated) to reach, counting "
                     "those of earlier runs in --run_dir. Default: 500 on the NAS-Bench-201 "
                     f"table; {DEFAULT_CHILD_TRIALS} when children are trained (the proxy "
                     "budget, minutes on a laptop CPU: raise it as time allows).")
flags.DEFINE_integer("m", 8, "Architectures sampled per controller batch (the paper's m). "
                     "With --strategy=reinforce and the flag left out, the preset's m "
                     "(--reinforce_preset) is used.")
flags.DEFINE_enum("reinforce_preset", None, ["paper", "small_budget", "rank_ppo", "guided"],
                  "Settings of --strategy=reinforce (nascell.search.strategies.reinforce): "
                  "'paper' (Zoph & Le: m=8, Adam at the paper's lr, raw rewards), "
                  "'small_budget', 'rank_ppo' (earlier settings for small budgets) or "
                  "'guided' (a reward predictor ranks the controller's samples: the setting "
                  "for budgets of tens to hundreds of trials). Default: 'guided' for the "
                  "tabular spaces (nasbench201, synthetic_pairwise), 'paper' otherwise. "
                  "Explicit flags (--m, --lr, --dedupe, --reward_shaping, ...) override it.")
flags.DEFINE_bool("dedupe", None, "Propose each architecture at most once (every built-in "
                  "strategy): a repeat is redrawn (reinforce learns from its known reward), "
                  "so --num_trials counts distinct evaluations. Default: on; --nodedupe "
                  "allows repeats (the paper's loop).")
flags.DEFINE_enum("reward_shaping", None, ["raw", "standardize", "rank"],
                  "How reinforce turns rewards into advantages: raw (R - b, the paper), "
                  "standardize ((R - b) / running std) or rank (centred rank among recent "
                  "rewards). Default: the preset's.")
flags.DEFINE_enum("local_search_order", None, ["random", "predictor"],
                  "How --strategy=local_search walks a neighbourhood: random (White et al.: "
                  "evaluate all, move to the best) or predictor (a reward predictor orders "
                  "it, move at the first improvement). Default: random.")
flags.DEFINE_integer("seed", 0, "Random seed of the strategy.")
flags.DEFINE_string("executor", "local", "Where children run: local or ray.")
flags.DEFINE_integer("workers", 1, "Trials evaluated at once (local: worker processes; ray: "
                     "tasks in flight; 0 with ray: as many as the cluster has CPUs).")
flags.DEFINE_string("ray_address", None, "Ray cluster to join (e.g. auto, ray://head:10001); "
                    "default: start Ray on this machine.")
flags.DEFINE_integer("max_retries", 1, "Times a trial whose worker died is run again.")
flags.DEFINE_integer("max_tasks_per_worker", None, "Replace a worker process (local pool or "
                     "Ray) after this many trials, bounding any memory a child leaves behind. "
                     "Default: workers live for the whole search.")
flags.DEFINE_float("lr", None, "Controller learning rate (default: the paper's, 6e-4 conv, "
                   "5e-4 cells).")
flags.DEFINE_float("entropy_weight", None, "Controller entropy bonus weight.")
flags.DEFINE_float("temperature", None, "Controller sampling temperature.")
flags.DEFINE_float("tanh_constant", None, "Controller logits: c * tanh(logits / c).")
flags.DEFINE_float("baseline_decay", None, "Decay of the reward baseline's moving average.")
flags.DEFINE_float("skip_target", None, "Target skip-connection density (KL prior).")
flags.DEFINE_float("skip_weight", None, "Weight of the skip-connection KL prior.")
flags.DEFINE_string("nb201_csv", None, "NAS-Bench-201 table (nb201_cifar10.csv) for the "
                    "nasbench201 evaluator (default: $NASCELL_NB201_CSV).")
flags.DEFINE_bool("export", True, "After the search, export the best architecture into "
                  "<run_dir>/export/best.")
flags.DEFINE_integer("checkpoint_every", 1, "Save the strategy after every this many rewards.")
flags.DEFINE_integer("top_k", 5, "Best trials kept in <run_dir>/best/top_k.json.")
flags.DEFINE_bool("tensorboard", True, "Write TensorBoard summaries to <run_dir>/tensorboard.")
flags.DEFINE_bool("progress", True, "Print a progress line.")
flags.DEFINE_multi_string("enas_option", [], "KEY=VALUE settings of the weight-sharing ENAS "
                          "search (--strategy=enas with --space=enas_rnn or enas_conv), e.g. "
                          "epochs=10, shared_steps=100; see nascell.search.enas.ENASOptions.")
flags.DEFINE_multi_string("import", [], "Python modules to import first; they may register "
                          "custom spaces, strategies and evaluators.")


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
    if FLAGS.num_trials is not None and FLAGS.num_trials <= 0:
        _usage(f"--num_trials must be > 0, got {FLAGS.num_trials}")
    if FLAGS.m <= 0:
        _usage(f"--m must be > 0, got {FLAGS.m}")
    if FLAGS.checkpoint_every <= 0:
        _usage(f"--checkpoint_every must be > 0, got {FLAGS.checkpoint_every}")
    if FLAGS.top_k <= 0:
        _usage(f"--top_k must be > 0, got {FLAGS.top_k}")

    if FLAGS.strategy == "enas" and (FLAGS.space is None or FLAGS.space in ENAS_SPACES.values()):
        return _resolve_enas()
    from nascell.search.spaces import available_spaces
    spaces = available_spaces()
    space = FLAGS.space or DATASET_SPACES[FLAGS.dataset]
    space = SPACE_ALIASES.get(space, space) if space not in spaces else space
    if space not in spaces:
        _usage(f"--space={FLAGS.space}: unknown search space; known: "
               f"{_known(spaces + list(SPACE_ALIASES))}")
    space_dataset = ("ptb" if space == "rnn_cell" else "cifar10" if space.startswith("conv")
                     else None)
    if FLAGS["dataset"].present and space_dataset and space_dataset != FLAGS.dataset:
        _usage(f"--space={FLAGS.space} searches {space_dataset} architectures, not "
               f"--dataset={FLAGS.dataset}; drop one of the two flags or make them agree")

    from nascell.search.strategy import available_strategies
    strategies = available_strategies()
    if FLAGS.strategy not in strategies:
        _usage(f"--strategy={FLAGS.strategy}: unknown strategy; known: {_known(strategies)}")
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
    if FLAGS.enas_option:
        _usage("--enas_option is for the weight-sharing ENAS search (--strategy=enas with "
               f"--space={' or '.join(ENAS_SPACES.values())})")

    from nascell.search.evaluators import available_evaluators
    evaluators = available_evaluators()
    evaluator = FLAGS.evaluator or DEFAULT_EVALUATORS.get(space)
    if evaluator is None:
        _usage(f"--space={space} has no default evaluator; pass --evaluator (known: "
               f"{_known(evaluators)})")
    if evaluator not in evaluators:
        _usage(f"--evaluator={evaluator}: unknown evaluator; known: {_known(evaluators)}")
    expected = DEFAULT_EVALUATORS.get(space)
    builtin = set(DEFAULT_EVALUATORS.values())
    if expected and evaluator in builtin and evaluator != expected:
        _usage(f"--evaluator={evaluator} cannot evaluate --space={space} architectures; "
               f"use --evaluator={expected} (or leave it out)")
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
    if evaluator in ("rnn_lm", "conv_classifier"):
        if child_flags is None:
            _usage(f"the {evaluator} evaluator needs nascell.search.bin.child_flags, which did "
                   f"not import: {_CHILD_FLAGS_ERROR}")
        child_flags.validate_child_flags(evaluator)  # app.UsageError naming the flag
    elif child_flags is not None:
        given = sorted(name for name in FLAGS if name.startswith("child_") and FLAGS[name].present)
        if given:
            _usage(f"{', '.join('--' + g for g in given)} configure the rnn_lm / "
                   f"conv_classifier children, not --evaluator={evaluator}")

    from nascell.search.executors import available_executors
    if FLAGS.executor not in available_executors():
        _usage(f"--executor={FLAGS.executor}: unknown executor; known: "
               f"{_known(available_executors())}")
    if FLAGS.workers < 0 or (FLAGS.workers == 0 and FLAGS.executor != "ray"):
        _usage(f"--workers must be >= 1 (0 only with --executor=ray), got {FLAGS.workers}")
    if FLAGS.ray_address is not None and FLAGS.executor != "ray":
        _usage("--ray_address needs --executor=ray")
    if FLAGS.executor == "ray":
        from nascell.search.executors.ray_executor import import_ray
        try:
            import_ray()
        except ImportError as e:
            _usage(str(e))
    if FLAGS.max_retries < 0:
        _usage(f"--max_retries must be >= 0, got {FLAGS.max_retries}")
    if FLAGS.max_tasks_per_worker is not None:
        if FLAGS.max_tasks_per_worker < 1:
            _usage(f"--max_tasks_per_worker must be >= 1, got {FLAGS.max_tasks_per_worker}")
        if FLAGS.executor == "local" and FLAGS.workers <= 1:
            _usage("--max_tasks_per_worker needs worker processes: --workers >= 2, or "
                   "--executor=ray")
    run_dir = FLAGS.run_dir or os.path.join("runs", f"{space}-{FLAGS.strategy}")
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        _usage(f"--run_dir={run_dir} is a file; pick a directory")
    from nascell.search.run_dir import RunDir, RunDirError
    try:
        RunDir.check_readable(run_dir)
    except RunDirError as e:
        _usage(str(e))
    num_trials = FLAGS.num_trials or (500 if evaluator in TABULAR_EVALUATORS
                                      else DEFAULT_CHILD_TRIALS)
    return {"space": space, "strategy": FLAGS.strategy, "strategy_options": strategy_options,
            "evaluator": evaluator, "csv_path": csv_path, "run_dir": run_dir,
            "num_trials": num_trials}


def _resolve_enas() -> Dict[str, Any]:
    """--strategy=enas on an ENAS space: the weight-sharing search, with its own options."""
    import dataclasses
    from nascell.search.enas.trainer import ENASOptions
    space = FLAGS.space or ENAS_SPACES[FLAGS.dataset]
    if FLAGS["dataset"].present and ENAS_SPACES[FLAGS.dataset] != space:
        _usage(f"--space={space} does not search --dataset={FLAGS.dataset}; use "
               f"--space={ENAS_SPACES[FLAGS.dataset]}")
    fields = {f.name: f for f in dataclasses.fields(ENASOptions)}
    defaults = ENASOptions()
    options: Dict[str, Any] = {"seed": FLAGS.seed}
    for name, option in ENAS_CONTROLLER_FLAGS.items():
        if FLAGS[name].value is not None:
            options[option] = FLAGS[name].value
    for item in FLAGS.enas_option:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            _usage(f"--enas_option={item}: expected KEY=VALUE with KEY one of {sorted(fields)}")
        default = getattr(defaults, key)
        try:
            if text.lower() == "none":
                value = None
            elif isinstance(default, bool):
                value = text.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                value = int(text)
            elif isinstance(default, float) or key.endswith(("lr", "clipnorm")):
                value = float(text)
            else:
                value = int(text) if text.lstrip("-").isdigit() else text
        except ValueError:
            _usage(f"--enas_option={item}: {text!r} is not a valid {key}")
        options[key] = value
    for name in ("skip_target", "skip_weight", "nb201_csv", "evaluator"):
        if FLAGS[name].value is not None:
            _usage(f"--{name} does not apply to the weight-sharing ENAS search")
    run_dir = FLAGS.run_dir or os.path.join("runs", f"{space}-enas")
    return {"enas": True, "space": space, "options": options, "run_dir": run_dir}


def _run_enas(plan: Dict[str, Any]) -> None:
    from nascell.search.strategies.enas import run_enas
    data_dir = FLAGS["data_dir"].value if "data_dir" in FLAGS else None
    result = run_enas(plan["space"], plan["run_dir"], data_dir=data_dir, **plan["options"])
    spec = result.spec.to_json() if hasattr(result.spec, "to_json") else result.spec
    print(f"ENAS search in {result.run_dir}: {result.epochs} epochs; derived architecture "
          f"(reward {result.reward:.6f}, validation metric {result.metric:.4f}): {spec}")
    if FLAGS.export:
        _export(result.run_dir, result.spec)


def build_evaluator(name: str, csv_path: Optional[str]):
    from nascell.search.evaluators import create_evaluator
    if name == "nasbench201":
        return create_evaluator(name, csv_path=csv_path)
    if child_flags is not None and name in ("rnn_lm", "conv_classifier"):
        return child_flags.evaluator_from_flags(name)
    return create_evaluator(name)


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
    if not hasattr(best_spec, "to_dict"):
        logging.info("the best architecture is a %s, not an rnn_cell or conv spec: nothing to "
                     "export (see %s/best/best.json)", type(best_spec).__name__, run_dir)
        return
    try:
        from nascell.export import export_best
    except (ImportError, AttributeError) as e:
        logging.warning("not exporting: nascell.export.export_best is unavailable (%s)", e)
        return
    path = export_best(run_dir)
    print(f"exported the best architecture to {path}")


def main(argv: List[str]) -> None:
    try:
        plan = resolve(argv)
    except app.UsageError as e:  # one line, as absl reports a bad flag value
        sys.stderr.write(f"nascell-search: {e}\nPass --helpshort or --helpfull to see help on "
                         "flags.\n")
        sys.exit(1)
    if plan.get("enas"):
        _run_enas(plan)
        return
    from nascell.search.loop import run_search
    from nascell.search.run_dir import RunDirError
    from nascell.search.spaces import create_space
    from nascell.search.strategy import create_strategy

    space = create_space(plan["space"])
    strategy = create_strategy(plan["strategy"], space, seed=FLAGS.seed,
                               **plan["strategy_options"])
    evaluator = build_evaluator(plan["evaluator"], plan["csv_path"])
    executor = build_executor()
    # ask the controller's batch at a time: --m if given, else the strategy's own (a preset's)
    m = FLAGS.m if FLAGS["m"].present else getattr(strategy, "m", FLAGS.m)
    try:
        result = run_search(space, strategy, evaluator, plan["run_dir"],
                            num_trials=plan["num_trials"], executor=executor, m=m,
                            progress=FLAGS.progress, checkpoint_every=FLAGS.checkpoint_every,
                            top_k=FLAGS.top_k, tensorboard=FLAGS.tensorboard)
    except RunDirError as e:
        sys.exit(f"nascell-search: {e}")
    finally:
        executor.shutdown()
    best = result.best
    if result.exhausted:
        print(f"stopped early: {result.exhausted}")
    print(f"{result.num_done + result.num_failed} trials in {result.run_dir} "
          f"({result.num_failed} failed); best reward "
          f"{'-' if best is None else f'{best.reward:.6f}'}"
          f"{'' if best is None else f' (trial {best.trial_id})'}")
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
    """Console-script entry point (`nascell-search`)."""
    app.run(main)


if __name__ == "__main__":
    run()
