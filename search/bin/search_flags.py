"""The flags of nascell-search (and the defaults they fall back to), defined on import.

`nascell.search.bin.search_plan` checks them (`resolve`) and `nascell.search.bin.search` runs
the search; the child trainers' flags (data, budgets) are `nascell.search.bin.child_flags`.
"""

from __future__ import annotations

from absl import flags

from nascell.search.bin import define_once

# The one table of space aliases lives in the library, so Python and the flags agree.
from nascell.search.spaces import SPACE_ALIASES  # noqa: F401 (search_plan.py imports it from here)

# Trials of a search that trains real children when --num_trials is not given: with the proxy
# child budget (search/bin/child_flags.py) this finishes in minutes on a 2-core CPU.
DEFAULT_CHILD_TRIALS = 6

DATASET_SPACES = {"ptb": "rnn_cell", "cifar10": "conv"}
# What each --dataset searches, by the kind's modality (`nascell.kinds`).
DATASET_MODALITY = {"ptb": "sequence", "cifar10": "image"}
# Evaluators of spaces whose architectures are not a spec kind (a tabular benchmark's strings);
# a spec kind names its own (`SpecKind.evaluator`).
SPACE_EVALUATORS = {"nasbench201": "nasbench201",
                    "synthetic_pairwise": "synthetic_pairwise"}
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
# ENAS with weight sharing: the enas strategy with the supernet evaluator on these spaces.
ENAS_SPACES = {"ptb": "enas_rnn", "cifar10": "enas_conv"}
SUPERNET_SPACES = ("enas_rnn", "enas_conv", "enas_macro")


flags.DEFINE_string("space", None, "Search space: conv (= conv_v3), conv_v1, conv_v2, "
                    "conv_v3, rnn_cell, nasbench201, the ENAS spaces enas_rnn, enas_conv, "
                    "enas_macro (with --strategy=enas: weight sharing), or one registered by "
                    "--import. Default: from --dataset (ptb -> rnn_cell, cifar10 -> conv; with "
                    "--strategy=enas enas_rnn and enas_conv).")
flags.DEFINE_string("strategy", "reinforce", "Search strategy: reinforce, random, evolution, "
                    "enas, or one registered by --import.")
flags.DEFINE_string("evaluator", None, "Evaluator giving each trial its reward. Default: "
                    "what trains the space's spec kind (rnn_cell -> rnn_lm, conv -> "
                    "conv_classifier), nasbench201 -> nasbench201, and supernet (shared "
                    "weights) for --strategy=enas on an ENAS space.")
flags.DEFINE_enum("dataset", "ptb", ["ptb", "cifar10"], "Data set of the paper experiment "
                  "to run: ptb (recurrent cells) or cifar10 (conv nets). Ignored for "
                  "nasbench201.")
define_once(flags.DEFINE_string, "run_dir", None, "Run directory (created, or resumed if it "
             "holds the same search). Default: ./runs/<space>-<strategy>.")
flags.DEFINE_integer("num_trials", None, "Trials (architectures evaluated) to reach, counting "
                     "those of earlier runs in --run_dir. Default: 500 on the NAS-Bench-201 "
                     f"table; {DEFAULT_CHILD_TRIALS} when children are trained (the proxy "
                     "budget, minutes on a laptop CPU: raise it as time allows). The default "
                     "PTB child costs 35-55 CPU s; against 2 epochs of Zaremba-small "
                     "training it ranks cells at Kendall tau 0.62 on 11 cells, "
                     "0.29 among the 8 that train (benchmarks/README.md, "
                     "'proxy_fidelity').")
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
define_once(flags.DEFINE_bool, "export", True, "After the search, export the best architecture "
             "into <run_dir>/export/best (replacing an earlier export there), with its "
             "trained weights when the run kept them (--keep_weights).")
flags.DEFINE_integer("checkpoint_every", None, "Save the strategy after every this many "
                     "rewards. Default: the strategy's suggestion (1; enas: once per controller "
                     "update, m).")
flags.DEFINE_integer("top_k", 5, "Best trials kept in <run_dir>/best/top_k.json.")
flags.DEFINE_integer("keep_weights", 3, "Keep the trained weights of this many best trials in "
                     "<run_dir>/weights (the best always among them), so the export at the "
                     "end (and nascell-export --run_dir) holds trained weights; 0: keep none "
                     "(the export then starts from a fresh initialization).")
flags.DEFINE_bool("tensorboard", True, "Write TensorBoard summaries to <run_dir>/tensorboard.")
flags.DEFINE_bool("progress", True, "Print a progress line.")
flags.DEFINE_multi_string("enas_option", [], "KEY=VALUE settings of an ENAS search "
                          "(--strategy=enas, --evaluator=supernet), e.g. epochs=10, "
                          "shared_steps=100, units=64; the keys: "
                          "nascell.search.enas.options.OPTIONS.")
flags.DEFINE_integer("max_consecutive_failures", 10, "Stop the search (resumable) once this "
                     "many trials in a row have failed, quoting their errors; 0: never stop.")
flags.DEFINE_multi_string("import", [], "Python modules to import first; they may register "
                          "custom spaces, strategies and evaluators.")
