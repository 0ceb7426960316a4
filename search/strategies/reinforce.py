"""REINFORCE with the LSTM controller (Zoph & Le 2017): the paper's search strategy.

`ask(n)` samples ``n`` architectures with the controller in one batched call; `tell` buffers
rewards and, after every ``m`` of them (in tell order), applies one REINFORCE update
``1/m sum_k grad log P(a_k) (R_k - b)`` with ``b`` an exponential moving average of past
rewards (see `nascell.search.strategies.controller.controller`).

Asynchrony. With parallel executors, rewards arrive for architectures sampled before some
earlier update. Each trial's ``meta`` keeps the tokens and the log-probability it was sampled
with. By default the update uses the stored decisions with gradients of the *current*
parameters and no correction, as the paper's asynchronous replicas did (stale samples are
treated as on-policy; with one controller and ``m`` trials in flight they are at most one
update old). ``importance_clip=c`` instead weights each term by the truncated importance
ratio ``min(c, P_now(a) / P_sampled(a))``, which corrects for staleness at the cost of
variance. When ask/tell alternate in batches of ``m`` (the benchmark loop), every sample is
exactly on-policy and both give the same update.

Presets (`PRESETS`; explicit options override any preset):

* ``"paper"`` (`nascell-search`'s default on the paper's spaces): ``m=8``,
  ``baseline_decay=0.95``, Adam with the paper's learning rate (6e-4 for the conv spaces,
  5e-4 otherwise), raw rewards, no logit shaping, no entropy bonus, no dedupe: the paper's
  controller, meant for searches of thousands of architectures. It barely moves within a few
  hundred trials (Adam moves each parameter by about ``lr`` per update).
* ``"small_budget"``: for budgets of tens to hundreds of trials, a larger learning rate, a
  smaller ``m``, capped logits (``tanh_constant``), standardized rewards and dedupe, so the
  policy moves within ~100 trials without collapsing onto one cell.
* ``"rank_ppo"``: ``small_budget`` with rank rewards and several PPO-clipped steps per batch.
* ``"guided"`` (`DEFAULT_PRESET`: ``create_strategy("reinforce", space)`` and `nascell-search`
  on the tabular spaces): rank rewards, predictor-ranked proposals (`_guided`: a pool of
  controller samples ranked by a GP's expected improvement), priority-queue training on the
  best architectures (Abolafia et al. 2018) and the stall rule (untried neighbours of the best
  after a stall).

How each preset was tuned, on which seeds, and what was tried and rejected is in
benchmarks/README.md (``## reinforce presets``); the results in ``## search_efficiency``.

Dedupe (``dedupe=True``): a sample that repeats an architecture already told is not a new
trial; the controller learns from its cached reward (it is a genuine on-policy sample, so the
update keeps its expectation) and draws again; a repeat of a trial still in flight is dropped
(the one source of bias: such samples are missing from the update). After
`Strategy.max_repeat_rounds` proposal rounds without a new architecture, `ask` takes the rest
of the batch from `nascell.search.core.dedupe.novel_architectures`. The trial budget
therefore counts distinct evaluations, as it would with a cache of trained children; the
benchmark gives random search and evolution the same no-repeat rule.

Reward shaping (``reward``): ``"raw"`` uses the reward as given; ``"standardize"`` divides
``R - b`` by a running standard deviation of rewards around the baseline (an EMA with the
baseline's decay; the first batch uses its own spread), so the update does not depend on the
reward's scale (accuracy in [0, 1], accuracy cubed, ``c / ppl^2``...); ``"rank"`` uses the
centred rank of each reward among the last ``reward_window`` rewards (this batch and cached
repeats included), ``2 * (#smaller + #ties / 2) / (window - 1) - 1``, which is invariant to
any increasing transform of the reward. The baseline still moves (it is logged) but is not
used by ``"rank"``.

Several steps per batch (``update_steps=k``, ``ppo_clip=eps``): the first step is plain
REINFORCE; each further step re-scores the batch and weights ``A_k grad log P(a_k)`` by the
ratio ``r_k = P_now(a_k) / P_sampled(a_k)``, set to zero where ``r_k > 1 + eps`` with
``A_k > 0`` or ``r_k < 1 - eps`` with ``A_k < 0``: the gradient of PPO's clipped objective
``min(r A, clip(r, 1 - eps, 1 + eps) A)``. It stops early when every ratio is clipped.
"""

from __future__ import annotations

import base64
import glob
import os
from typing import Any, Dict, List, Optional

import numpy as np
from absl import logging

from nascell import _io
from nascell.search.core.strategy import Proposal, Strategy, register_strategy
from nascell.search.core.trial import Trial
from nascell.search.strategies import _common, _guided

REWARD_MODES = ("raw", "standardize", "rank")

PRESETS: Dict[str, Dict[str, Any]] = {
    "paper": {},
    "small_budget": {"learning_rate": 0.02, "m": 4, "baseline_decay": 0.8,
                     "tanh_constant": 2.5, "entropy_weight": 0.0, "reward": "standardize",
                     "dedupe": True},
    "rank_ppo": {"learning_rate": 0.02, "m": 4, "baseline_decay": 0.8, "tanh_constant": 2.5,
                 "entropy_weight": 0.0, "reward": "rank", "reward_window": 50,
                 "update_steps": 4, "ppo_clip": 0.3, "dedupe": True},
    "guided": {"learning_rate": 0.02, "m": 4, "baseline_decay": 0.8, "tanh_constant": 2.5,
               "reward": "rank", "reward_window": 50, "pool": 128, "pool_temperature": 2.0,
               "warmup": 10, "acquisition": "ei", "topk": 10, "topk_weight": 1.0,
               "stall": 20, "stall_every": 2},
}

#: the preset `create_strategy("reinforce", space)` uses when none is given.
DEFAULT_PRESET = "guided"

_STRATEGY_OPTIONS = ("m", "reward", "importance_clip", "dedupe", "reward_window", "update_steps",
                     "ppo_clip", "pool", "pool_temperature", "warmup", "acquisition",
                     "local_pool", "topk", "topk_weight", "stall", "stall_every")

_CONTROLLER_OPTIONS = ("units", "num_layers", "init_range", "learning_rate", "baseline_decay",
                       "temperature", "tanh_constant", "entropy_weight", "skip_target",
                       "skip_weight", "clipnorm", "jit_compile")


def default_learning_rate(space) -> float:
    """The paper's Adam learning rate: 6e-4 for conv spaces, 5e-4 for cells (and others)."""
    return 6e-4 if str(getattr(space, "name", "")).startswith("conv") else 5e-4


@register_strategy
class ReinforceStrategy(Strategy):
    """The controller proposes, rewards train it by REINFORCE every ``m`` tells.

    Options: ``m`` (rewards per update), ``preset`` (see `PRESETS`), ``reward`` ("raw",
    "standardize" or "rank"), ``reward_window`` (rewards ranked, for "rank"), ``update_steps``
    and ``ppo_clip`` (gradient steps per batch, PPO-clipped after the first), ``dedupe``,
    ``importance_clip`` (None or a float), the predictor-guided proposals ``pool``,
    ``pool_temperature``, ``warmup``, ``acquisition``, ``local_pool``, ``stall``,
    ``stall_every`` (see
    `nascell.search.strategies._guided`), priority-queue training ``topk`` and
    ``topk_weight``, and the `Controller` options ``units, num_layers,
    init_range, learning_rate, baseline_decay, temperature, tanh_constant, entropy_weight,
    skip_target, skip_weight, clipnorm, jit_compile``.
    """

    name = "reinforce"

    def __init__(self, space, seed: int = 0, **options: Any):
        preset = options.pop("preset", None)
        if preset is None:
            # Subclasses (ENAS) bring their own settings on top of the paper's.
            preset = DEFAULT_PRESET if type(self) is ReinforceStrategy else "paper"
        if preset not in PRESETS:
            raise ValueError(f"unknown reinforce preset {preset!r}; known: {sorted(PRESETS)}")
        merged = {**PRESETS[preset], **options}
        unknown = sorted(set(merged) - set(_CONTROLLER_OPTIONS) - set(_STRATEGY_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reinforce option(s) {unknown}; known: "
                             f"{sorted(set(_CONTROLLER_OPTIONS) | set(_STRATEGY_OPTIONS))}")
        super().__init__(space, seed=seed, preset=preset, **options)
        self.preset = preset
        self.m = int(merged.pop("m", 8))
        if self.m < 1:
            raise ValueError(f"Argument `m` (rewards per update) must be >= 1. "
                             f"Received: m={self.m}")
        self.reward_mode = merged.pop("reward", "raw")
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(f"Argument `reward` must be one of {REWARD_MODES}. "
                             f"Received: reward={self.reward_mode!r}")
        self.reward_window = int(merged.pop("reward_window", 50))
        if self.reward_window < 2:
            raise ValueError(f"Argument `reward_window` must be >= 2. "
                             f"Received: reward_window={self.reward_window}")
        self.update_steps = int(merged.pop("update_steps", 1))
        if self.update_steps < 1:
            raise ValueError(f"Argument `update_steps` must be >= 1. "
                             f"Received: update_steps={self.update_steps}")
        self.ppo_clip = float(merged.pop("ppo_clip", 0.2))
        if self.ppo_clip <= 0:
            raise ValueError(f"Argument `ppo_clip` must be > 0. Received: ppo_clip={self.ppo_clip}")
        self.importance_clip: Optional[float] = merged.pop("importance_clip", None)
        self.dedupe = bool(merged.pop("dedupe", True))
        self.pool = int(merged.pop("pool", 0))
        self.pool_temperature = merged.pop("pool_temperature", None)
        self.warmup = int(merged.pop("warmup", 0))
        self.acquisition = merged.pop("acquisition", "ei")
        self.local_pool = int(merged.pop("local_pool", 0))
        self.topk = int(merged.pop("topk", 0))
        self.topk_weight = float(merged.pop("topk_weight", 0.0))
        self.stall = int(merged.pop("stall", 0))
        self.stall_every = int(merged.pop("stall_every", 2))
        if min(self.pool, self.warmup, self.topk, self.local_pool, self.stall) < 0:
            raise ValueError("pool, warmup, topk, local_pool and stall must be >= 0")
        if self.stall_every < 1:
            raise ValueError(f"Argument `stall_every` must be >= 1. "
                             f"Received: stall_every={self.stall_every}")
        if self.acquisition not in ("ei", "ucb", "mean"):
            raise ValueError(f"Argument `acquisition` must be ei, ucb or mean. "
                             f"Received: acquisition={self.acquisition!r}")
        merged.setdefault("learning_rate", default_learning_rate(space))
        self.controller_options = merged
        from nascell.search.strategies.controller.controller import (
            Controller,  # TensorFlow only when needed
        )
        self.controller = Controller(space, seed=seed, **merged)
        self._fresh()

    def _fresh(self) -> None:
        self.buffer: List[Dict[str, Any]] = []
        self.num_told = 0
        self.num_cached = 0  # samples answered from the ledger (no trial)
        self.reward_var: Optional[float] = None  # running variance, for reward="standardize"
        self.recent: List[float] = []  # the last `reward_window` rewards, for reward="rank"
        self.last_stats: Dict[str, float] = {}
        self.history: List[Dict[str, Any]] = []  # (tokens, n, reward) of told trials, in order
        self.predictor = None  # the pool's reward predictor, fitted on `history`

    def reseed(self, seed: int) -> None:
        """Restart the search from scratch with ``seed``, keeping the controller's programs.

        Equivalent to a new strategy with that seed (benchmarks use it to run many seeds).
        """
        Strategy.__init__(self, self.space, seed=seed, preset=self.preset, **{
            k: v for k, v in self.options.items() if k != "preset"})
        self.dedupe = bool({**PRESETS[self.preset], **self.options}.get("dedupe", True))
        self.controller.reset(seed)
        self._fresh()

    # --- propose -------------------------------------------------------------------------------

    def propose(self, n: int) -> List[Proposal]:
        num_decisions = self.space.num_active(self.next_trial_id)
        if self.pool > 0 and self.num_told >= max(self.warmup, 2):
            return _guided.pool_proposals(self, n, num_decisions)
        out = self.controller.sample(n, num_decisions)
        return _guided.controller_proposals(self, out, num_decisions)

    # --- observe -------------------------------------------------------------------------------

    def observe(self, trial: Trial, reward: float) -> None:
        meta = trial.meta or {}
        if "tokens" not in meta:
            # A trial this strategy did not sample (seeded by hand, or the dedupe fallback's):
            # score its decisions under the controller.
            decisions = self.space.check(trial.decisions)
            rows = self.space.to_tokens(decisions)
            tokens, n = self.controller.rows_to_tokens([rows])
            meta = {"tokens": [int(x) for x in tokens[0]], "num_decisions": n,
                    "log_prob": float(self.controller.log_prob(tokens, n)[0][0])}
        reward = _common.check_reward(reward)
        entry = {"trial_id": trial.trial_id, "tokens": list(meta["tokens"]),
                 "num_decisions": int(meta["num_decisions"]),
                 "log_prob": float(meta["log_prob"]), "reward": reward}
        self.num_told += 1
        if self.pool or self.topk or self.local_pool:  # what the predictor, PQT, stall read
            self.history.append({"tokens": entry["tokens"],
                                 "num_decisions": entry["num_decisions"], "reward": reward})
        self._add(entry)

    def observe_known(self, proposal: Proposal, reward: float) -> None:
        # A genuine sample of the policy whose reward is known: learn from it, no trial.
        self._add({**proposal.meta, "trial_id": -1, "reward": float(reward)})
        self.num_cached += 1

    def _add(self, entry: Dict[str, Any]) -> None:
        self.buffer.append({k: entry[k] for k in ("trial_id", "tokens", "num_decisions",
                                                  "log_prob", "reward")})
        if len(self.buffer) >= self.m:
            batch, self.buffer = self.buffer[:self.m], self.buffer[self.m:]
            self._update(batch)

    def _advantages(self, rewards: np.ndarray) -> np.ndarray:
        """Per-sample advantages of one batch, by ``reward`` mode (before the baseline moves)."""
        c = self.controller
        if self.reward_mode == "rank":
            # Centred rank among the last `reward_window` rewards (this batch included), in
            # [-1, 1]: invariant to the reward's scale and to any monotone transform of it.
            self.recent = (self.recent + [float(r) for r in rewards])[-self.reward_window:]
            window = np.asarray(self.recent)
            if len(window) < 2:
                return np.zeros(len(rewards))
            below = np.array([np.sum(window < r) + 0.5 * (np.sum(window == r) - 1)
                              for r in rewards])
            return 2.0 * below / (len(window) - 1) - 1.0
        adv = c.advantages(rewards)
        if self.reward_mode == "standardize":
            # Running variance of rewards around the baseline (same decay); this batch's
            # advantages are scaled by the spread seen before it (first batch: its own).
            var_batch = float(np.mean(adv ** 2))
            var = var_batch if self.reward_var is None else self.reward_var
            adv = adv / (np.sqrt(var) + 1e-8) if var > 0 else adv
            d = c.baseline_decay ** len(rewards)
            self.reward_var = var_batch if self.reward_var is None else (
                d * self.reward_var + (1 - d) * var_batch)
        return adv

    def _update(self, batch: List[Dict[str, Any]]) -> None:
        c = self.controller
        rewards = np.array([e["reward"] for e in batch], np.float64)
        baseline = c.baseline
        adv = self._advantages(rewards)
        rows = [(np.asarray(e["tokens"], np.int32), int(e["num_decisions"])) for e in batch]
        ratios = self.update_steps > 1 or self.importance_clip is not None
        sampled = [e["log_prob"] for e in batch] if ratios else None
        if self.topk and self.topk_weight and self.history:
            # Priority-queue training (Abolafia et al. 2018): also raise the likelihood of the
            # best architectures seen so far (their ratio to "sampled" is 1 at the first step).
            best = sorted(self.history, key=lambda h: -h["reward"])[:self.topk]
            extra = [(np.asarray(h["tokens"], np.int32), int(h["num_decisions"])) for h in best]
            if ratios:
                sampled = sampled + list(_guided.current_log_probs(c, extra))
            rows += extra
            adv = np.concatenate([adv, np.full(len(extra), self.topk_weight)])
        loss, _ = c.train_step(rows, adv, sampled, update_steps=self.update_steps,
                               ppo_clip=self.ppo_clip, importance_clip=self.importance_clip)
        c.update_baseline(rewards)
        stats = {"loss": loss, "reward": float(np.mean(rewards)),
                 "baseline": float(np.mean(rewards)) if baseline is None else baseline,
                 "advantage": float(np.mean(adv[:len(batch)])), "updates": c.updates}
        self.last_stats = stats
        logging.debug("reinforce update %d: %s", c.updates, stats)

    def summary_scalars(self) -> Dict[str, float]:
        """The last controller update's statistics (loss, reward, baseline, advantage,
        updates), written to TensorBoard after each trial."""
        return dict(self.last_stats)

    # --- state ---------------------------------------------------------------------------------

    def get_state(self, include_controller: bool = True) -> Dict[str, Any]:
        state = super().get_state()
        state.update({"num_told": self.num_told, "buffer": list(self.buffer),
                      "reward_var": self.reward_var, "recent": list(self.recent),
                      "num_cached": self.num_cached, "history": list(self.history)})
        if include_controller:
            state["controller"] = base64.b64encode(self.controller.state_bytes()).decode("ascii")
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        self.num_told = int(state["num_told"])
        self.buffer = [dict(e) for e in state["buffer"]]
        self.reward_var = state.get("reward_var")
        self.recent = [float(r) for r in state.get("recent", [])]
        self.num_cached = int(state.get("num_cached", 0))
        self.history = [dict(h) for h in state.get("history", [])]
        self.predictor = None
        if "controller" in state:
            self.controller.load_state_bytes(base64.b64decode(state["controller"]))

    def save(self, directory: str) -> None:
        """Controller weights + optimizer + baseline to ``controller-<n>.npz``, then the JSON.

        The JSON (written last, atomically) names the weights file it goes with, so a crash
        between the two writes leaves the previous consistent pair in place; older weight
        files are removed afterwards.
        """
        os.makedirs(directory, exist_ok=True)
        c = self.controller
        weights_name = f"controller-{c.updates:08d}-{c.sample_calls:08d}.npz"
        c.save_state(os.path.join(directory, weights_name))
        state = self.get_state(include_controller=False)
        state["controller_file"] = weights_name
        _io.atomic_write_json(os.path.join(directory, "strategy_state.json"), state)
        for path in glob.glob(os.path.join(directory, "controller-*.npz")):
            if os.path.basename(path) != weights_name:
                os.unlink(path)

    def restore(self, directory: str) -> bool:
        state = _io.read_json_or_none(os.path.join(directory, "strategy_state.json"))
        if state is None:
            return False
        self.set_state(state)
        if "controller_file" in state:
            path = os.path.join(directory, state["controller_file"])
            if not os.path.exists(path):
                raise ValueError(f"{directory}/strategy_state.json names {path}, which is "
                                 "missing; the run directory is damaged")
            self.controller.load_state(path)
        return True
