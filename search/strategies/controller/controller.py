"""The controller: an LSTM that writes architectures as token sequences, trained by REINFORCE.

Zoph & Le (2017), sections 3.1-3.3, with the hyperparameters of 4.1/4.2 as defaults:

* a two-layer LSTM with 35 units, every weight drawn uniformly from [-0.08, 0.08];
* one step per decision. A `Categorical` decision has its own softmax head and its own
  embedding table; the sampled choice's embedding is the next step's input (the first step
  reads a learned "go" vector);
* a `Skips` decision is the anchor point of item ``i``: with ``h_j`` the LSTM output at earlier
  anchors, ``P(j feeds i) = sigmoid(v^T tanh(W_prev h_j + W_curr h_i))``, each ``j`` sampled
  independently; the next input is the mean of the chosen anchors' ``h_j`` (sum over
  ``1 + count``, as in ENAS; zeros when none is chosen);
* REINFORCE: ``grad = 1/m sum_k sum_t grad log P(a_t | a_<t) (R_k - b)``, ``b`` an exponential
  moving average of past rewards, Adam.

Stabilizers from ENAS, all off by default (the paper's setting): ``temperature`` divides the
logits, then ``tanh_constant`` squashes them to ``c * tanh(logits)`` (both applied to softmax and
skip logits); ``entropy_weight`` adds an entropy bonus to the objective; ``skip_weight`` adds
``KL(P_skip || skip_target)``, pulling the skip density toward ``skip_target``.

The controller is space-generic: it reads only a list of `Categorical` / `Skips` decisions
(a `SearchSpace` or its ``decisions``) and can sample any *prefix* of it (a growing space).
Sampling is batched (m architectures at once), seeded and reproducible: call ``k`` of
`sample` uses the stateless seed ``(seed, k)``. The per-decision heads and embedding tables
are stored stacked (slice ``t`` belongs to decision ``t``, padded to the largest choice count
and masked), so the whole pass is one `tf.while_loop` traced once by `tf.function` for every
prefix length: sampling m architectures and an update take milliseconds (see
benchmarks/controller_cost.py), and tracing takes seconds whatever the space's length (an
unrolled graph of the 60-decision conv space took 10-40 s to trace on the same machine).

Tokens: an int32 matrix with one column per `Categorical` decision (the choice index) and
``k`` columns per `Skips` decision with ``k`` candidates (0/1), in decision order
(`tokens.TokenLayout`). The compiled programs that run the controller are
`controller_graph`; its saved state is `state`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from nascell.search.core.space import Categorical, SearchSpace
from nascell.search.strategies.controller import controller_graph
from nascell.search.strategies.controller import state as _state
from nascell.search.strategies.controller.tokens import TokenLayout


class Controller(keras.Model):
    """REINFORCE-trained LSTM controller over a list of Categorical/Skips decisions.

    Args:
      decisions: a `SearchSpace` or a sequence of `Categorical` / `Skips`.
      units, num_layers: LSTM size (paper: 35 units, 2 layers).
      init_range: weights are uniform in [-init_range, init_range] (paper: 0.08).
      learning_rate: Adam's (paper: 6e-4 for conv, 5e-4 for cells).
      baseline_decay: ``b <- decay * b + (1 - decay) * R`` after each reward.
      temperature, tanh_constant: logit shaping (None: off).
      entropy_weight: weight of the entropy bonus (0: off).
      skip_target, skip_weight: target skip density and the KL penalty's weight (0: off).
      clipnorm: optional global-norm gradient clipping.
      seed: sampling and initialization seed.
      jit_compile: compile the sampling, scoring and gradient graphs with XLA (each compiles
        once per batch size, in a few seconds; steps then run several times faster). Tests
        with many short-lived controllers may prefer ``False``.
    """

    def __init__(self, decisions: Union[SearchSpace, Sequence[Any]], units: int = 35,
                 num_layers: int = 2, init_range: float = 0.08, learning_rate: float = 6e-4,
                 baseline_decay: float = 0.95, temperature: Optional[float] = None,
                 tanh_constant: Optional[float] = None, entropy_weight: float = 0.0,
                 skip_target: Optional[float] = None, skip_weight: float = 0.0,
                 clipnorm: Optional[float] = None, seed: int = 0, jit_compile: bool = True,
                 name: str = "controller"):
        super().__init__(name=name)
        if isinstance(decisions, SearchSpace):
            decisions = decisions.decisions
        self._layout = TokenLayout(decisions)  # checks: Categorical / Skips, at least one
        self.decision_list: Tuple[Any, ...] = self._layout.decisions
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"Argument `baseline_decay` must be in [0, 1). "
                             f"Received: baseline_decay={baseline_decay}")
        if temperature is not None and temperature <= 0:
            raise ValueError(f"Argument `temperature` must be > 0 (or None). "
                             f"Received: temperature={temperature}")
        if tanh_constant is not None and tanh_constant <= 0:
            raise ValueError(f"Argument `tanh_constant` must be > 0 (or None). "
                             f"Received: tanh_constant={tanh_constant}")
        if skip_weight and skip_target is None:
            raise ValueError("skip_weight > 0 needs skip_target (the target skip density)")
        if skip_target is not None and not 0.0 < skip_target < 1.0:
            raise ValueError(f"Argument `skip_target` must be in (0, 1). "
                             f"Received: skip_target={skip_target}")
        self.units = units
        self.num_lstm_layers = num_layers
        self.init_range = init_range
        self.learning_rate = learning_rate
        self.baseline_decay = baseline_decay
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.entropy_weight = entropy_weight
        self.skip_target = skip_target
        self.skip_weight = skip_weight
        self.clipnorm = clipnorm
        self.jit_compile = jit_compile
        self.seed = int(seed)
        #: number of `sample` calls so far (the stateless seed of the next call is (seed, this)).
        self.sample_calls = 0
        #: number of updates applied.
        self.updates = 0
        #: the reward baseline (None until the first reward).
        self.baseline: Optional[float] = None

        # Weights. Per-decision heads and embedding tables are stored stacked ([T, ...], one
        # slice per decision, padded to the largest choice count and masked), so one
        # `tf.while_loop` step serves every decision and the graph is traced once for all
        # prefix lengths; slice t is decision t's own softmax head and embedding table.
        init = "zeros"  # every weight is drawn in `reset`, from numpy, seeded
        num_t = len(self.decision_list)
        num_choices = self._layout.num_choices
        self.lstm_kernels, self.lstm_recurrent, self.lstm_biases = [], [], []
        for i in range(num_layers):
            self.lstm_kernels.append(self.add_weight(shape=(units, 4 * units), initializer=init,
                                                     name=f"lstm_{i}_kernel"))
            self.lstm_recurrent.append(self.add_weight(
                shape=(units, 4 * units), initializer=init, name=f"lstm_{i}_recurrent_kernel"))
            self.lstm_biases.append(self.add_weight(shape=(4 * units,), initializer=init,
                                                    name=f"lstm_{i}_bias"))
        self.go = self.add_weight(shape=(1, units), initializer=init, name="go")
        self.head_kernel = self.add_weight(shape=(num_t, units, num_choices),
                                           initializer=init, name="head_kernel")
        self.head_bias = self.add_weight(shape=(num_t, num_choices), initializer=init,
                                         name="head_bias")
        self.embedding = self.add_weight(shape=(num_t, num_choices, units),
                                         initializer=init, name="embedding")
        self.w_prev = self.add_weight(shape=(units, units), initializer=init, name="w_prev")
        self.w_curr = self.add_weight(shape=(units, units), initializer=init, name="w_curr")
        self.v = self.add_weight(shape=(units, 1), initializer=init, name="v")
        self.built = True

        self._structure = self._layout.structure(units, num_layers, jit_compile)

        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm)
        self.optimizer.build(self.trainable_variables)
        self._fresh_optimizer = [np.array(v) for v in self.optimizer.variables]
        # What the shared programs read and write: the underlying tf.Variables, in the
        # layout `controller_graph.Programs` documents (= the creation order).
        ordered = [w for i in range(num_layers) for w in (
            self.lstm_kernels[i], self.lstm_recurrent[i], self.lstm_biases[i])] + [
            self.go, self.head_kernel, self.head_bias, self.embedding, self.w_prev, self.w_curr,
            self.v]
        if [id(w) for w in ordered] != [id(w) for w in self.trainable_variables]:
            raise AssertionError("controller weights are not in creation order")
        self._tf_weights = tuple(w.value for w in ordered)
        opt = self.optimizer
        self._tf_slots = (tuple(m.value for m in opt._momentums),
                          tuple(v.value for v in opt._velocities),
                          opt.iterations.value, opt._learning_rate.value)
        self._adam_hyper = tf.constant([opt.beta_1, opt.beta_2, opt.epsilon, clipnorm or 0.0],
                                       tf.float32)
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """Start afresh with ``seed``: new weights, empty optimizer, no baseline, counters 0.

        Keeps the compiled graphs, so a benchmark running many seeds compiles once. A reset
        controller behaves exactly like a new one built with the same seed.
        """
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        for v in self.weights:
            v.assign(rng.uniform(-self.init_range, self.init_range, tuple(v.shape)).astype(
                np.float32))
        for v, value in zip(self.optimizer.variables, self._fresh_optimizer):
            v.assign(value)
        self.sample_calls, self.updates, self.baseline = 0, 0, None

    # --- tokens (the layout is tokens.TokenLayout) -----------------------------------------------

    def token_width(self, num_decisions: Optional[int] = None) -> int:
        """Columns of the token matrix for the first ``num_decisions`` decisions."""
        return self._layout.width(num_decisions)

    def tokens_to_rows(self, tokens: np.ndarray, num_decisions: int) -> List[List[Any]]:
        """Token matrix -> per architecture a list (an int per Categorical, a 0/1 list per
        Skips)."""
        return self._layout.to_rows(tokens, num_decisions)

    def rows_to_tokens(self, rows: Sequence[Sequence[Any]]) -> Tuple[np.ndarray, int]:
        """Inverse of `tokens_to_rows`; returns the matrix and the number of decisions."""
        return self._layout.from_rows(rows)

    def call(self, tokens, num_decisions: Optional[int] = None):
        """Keras entry point: log P of a compact token matrix (all decisions by default)."""
        return tf.constant(self.log_prob(np.asarray(tokens), num_decisions)[0])

    @property
    def programs(self) -> controller_graph.Programs:
        """The compiled programs this controller runs (shared with same-structure controllers)."""
        return controller_graph.programs(self._structure)

    def _shaping(self, temperature: Optional[float] = None) -> tf.Tensor:
        temperature = self.temperature if temperature is None else temperature
        q = self.skip_target if self.skip_target is not None else 0.5
        return tf.constant([1.0 / (temperature or 1.0), self.tanh_constant or 0.0,
                            self.entropy_weight, self.skip_weight if self.skip_target else 0.0,
                            np.log(q), np.log(1 - q)], tf.float32)

    # --- public API ----------------------------------------------------------------------------

    def sample(self, batch_size: int, num_decisions: Optional[int] = None,
               temperature: Optional[float] = None) -> Dict[str, np.ndarray]:
        """Sample ``batch_size`` architectures of the first ``num_decisions`` decisions.

        Returns numpy arrays: ``tokens`` [m, width] int32, ``log_prob`` [m] (log P of each
        whole sequence, at the temperature sampled with), ``entropy`` [m] (sum of per-step
        entropies), and ``seed`` (the stateless seed used, for the record). Call ``k`` uses
        seed ``(self.seed, k)``. ``temperature`` overrides the controller's for this call
        (e.g. a wider pool of candidates); the default is the controller's own.
        """
        n = self._layout.check_n(num_decisions)
        if int(batch_size) < 1:
            raise ValueError(f"Argument `batch_size` must be a positive integer. Received: "
                             f"batch_size={batch_size}")
        if temperature is not None and not temperature > 0:
            raise ValueError(f"Argument `temperature` must be > 0. Received: "
                             f"temperature={temperature}")
        seed = tf.constant([self.seed, self.sample_calls], tf.int64)
        self.sample_calls += 1
        b = int(batch_size)
        padded, log_prob, entropy = self.programs.sample(
            self._tf_weights, tf.constant(controller_graph.bucket(b), tf.int32),
            tf.constant(n, tf.int32), seed, self._shaping(temperature))
        return {"tokens": self._layout.to_compact(padded.numpy()[:b], n),
                "log_prob": log_prob.numpy()[:b], "entropy": entropy.numpy()[:b],
                "seed": seed.numpy()}

    def log_prob(self, tokens: np.ndarray, num_decisions: Optional[int] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
        """Re-score a batch of token rows under the current weights: (log P, entropy)."""
        n = self._layout.check_n(num_decisions)
        rows = len(np.asarray(tokens).reshape(-1, self.token_width(n)))
        padded = self._layout.to_padded(tokens, n)
        log_prob, entropy = self.programs.score(
            self._tf_weights, tf.constant(padded), tf.constant(np.full(len(padded), n, np.int32)),
            self._shaping())
        return log_prob.numpy()[:rows], entropy.numpy()[:rows]

    def probabilities(self) -> np.ndarray:
        """Softmax of the first decision (a Categorical) from the go input: for tests and plots."""
        d = self.decision_list[0]
        if not isinstance(d, Categorical):
            raise ValueError("probabilities() needs a Categorical first decision")
        mat = np.arange(d.num_choices, dtype=np.int32)[:, None]
        return np.exp(self.log_prob(mat, 1)[0])

    def advantages(self, rewards: Sequence[float]) -> np.ndarray:
        """``R_k - b`` with ``b`` the baseline *before* these rewards (first call: their mean)."""
        rewards = np.asarray(rewards, np.float64)
        b = float(np.mean(rewards)) if self.baseline is None else self.baseline
        return rewards - b

    def update_baseline(self, rewards: Sequence[float]) -> None:
        """Fold ``rewards`` (in order) into the exponential moving average."""
        for r in rewards:
            r = float(r)
            self.baseline = r if self.baseline is None else (
                self.baseline_decay * self.baseline + (1 - self.baseline_decay) * r)

    def gradients(self, tokens: np.ndarray, advantages: Sequence[float],
                  num_decisions: Optional[int] = None, total: Optional[int] = None):
        """Loss and gradients of ``-1/m sum_k A_k log P(tokens_k)`` (+ bonus terms), no update.

        Returns (loss, gradients aligned with `trainable_variables`, log P [m], entropy [m]).
        """
        n = self._layout.check_n(num_decisions)
        padded = self._layout.to_padded(tokens, n)
        adv = np.asarray(advantages, np.float32).reshape(-1)
        rows = len(adv)
        total = rows if total is None else total
        adv_padded = np.zeros(len(padded), np.float32)
        adv_padded[:rows] = adv
        mask = np.zeros(len(padded), np.float32)
        mask[:rows] = 1.0
        loss, grads, log_prob, entropy = self.programs.grad(
            self._tf_weights, tf.constant(padded), tf.constant(np.full(len(padded), n, np.int32)),
            tf.constant(adv_padded), tf.constant(mask), tf.constant(float(total), tf.float32),
            self._shaping())
        return float(loss), list(grads), log_prob.numpy()[:rows], entropy.numpy()[:rows]

    def apply_gradients(self, grads) -> None:
        """One Adam step (Keras' Adam, on this controller's optimizer slots) with ``grads``."""
        momentums, velocities, iterations, learning_rate = self._tf_slots
        self.programs.adam(self._tf_weights, momentums, velocities, iterations, learning_rate,
                           [tf.convert_to_tensor(g, tf.float32) for g in grads],
                           self._adam_hyper)
        self.updates += 1

    def train_step(self, batches: Sequence[Tuple[np.ndarray, int]], advantages: Sequence[float],
                   sampled_log_prob: Optional[Sequence[float]] = None, update_steps: int = 1,
                   ppo_clip: float = 0.2, importance_clip: Optional[float] = None
                   ) -> Tuple[float, int]:
        """Gradient steps on ``-1/m sum_k w_k A_k log P(a_k)`` (+ bonus terms), in one call.

        ``batches``: ``(token_row, num_decisions)`` per architecture (lengths may differ).
        With ``update_steps=1`` and no ``importance_clip`` this is one plain REINFORCE step
        (w = 1). Otherwise ``sampled_log_prob`` (log P when each row was sampled) gives the
        ratios ``r_k``: step 0 uses ``w = min(importance_clip, r_k)`` if given, later steps
        PPO's clipped-surrogate weights (see `controller_graph.Programs._train`); it stops
        early when every weight is 0. Returns (the last step's loss, steps taken); the
        baseline does not move (see `update`).
        """
        m = len(batches)
        if m == 0 or len(advantages) != m:
            raise ValueError(f"Argument `advantages` must hold one advantage per row of "
                             f"`batches`. Received: {m} rows and {len(advantages)} "
                             f"advantages")
        if int(update_steps) < 1:
            raise ValueError(f"Argument `update_steps` must be >= 1. Received: "
                             f"update_steps={update_steps}")
        padded, lengths = self._layout.pack(batches)
        size = len(padded)
        adv = np.zeros(size, np.float32)
        adv[:m] = np.asarray(advantages, np.float32)
        mask = np.zeros(size, np.float32)
        mask[:m] = 1.0
        sampled = np.zeros(size, np.float32)
        if sampled_log_prob is not None:
            sampled[:m] = np.asarray(sampled_log_prob, np.float32)
        elif int(update_steps) > 1 or importance_clip is not None:
            raise ValueError("update_steps > 1 and importance_clip need sampled_log_prob")
        momentums, velocities, iterations, learning_rate = self._tf_slots
        loss, steps = self.programs.train(
            self._tf_weights, momentums, velocities, iterations, learning_rate,
            tf.constant(padded), tf.constant(lengths), tf.constant(adv), tf.constant(mask),
            tf.constant(float(m), tf.float32), tf.constant(sampled), self._shaping(),
            self._adam_hyper, tf.constant(int(update_steps), tf.int32),
            tf.constant(float(ppo_clip), tf.float32),
            tf.constant(float(importance_clip or 0.0), tf.float32))
        steps = int(steps)
        self.updates += steps
        return float(loss), steps

    def update(self, batches: Sequence[Tuple[np.ndarray, int]], rewards: Sequence[float],
               weights: Optional[Sequence[float]] = None) -> Dict[str, float]:
        """One REINFORCE step on ``m`` architectures, then the baseline moves.

        Args:
          batches: ``(token_row, num_decisions)`` per architecture (rows may differ in length
            when a growing space changed depth between samples).
          rewards: ``R_k`` per architecture.
          weights: optional per-architecture importance weights multiplying ``R_k - b``.
        Returns:
          statistics: loss, mean reward, baseline (before the update), mean advantage.
        """
        m = len(rewards)
        if m == 0 or len(batches) != m:
            raise ValueError(f"Argument `rewards` must hold one reward per token row of "
                             f"`batches`. Received: {len(batches)} rows and {m} rewards")
        adv = self.advantages(rewards)
        if weights is not None:
            adv = adv * np.asarray(weights, np.float64)
        baseline = self.baseline
        loss, _ = self.train_step(batches, adv)
        self.update_baseline(rewards)
        return {"loss": loss, "reward": float(np.mean(rewards)),
                "baseline": float(np.mean(rewards)) if baseline is None else baseline,
                "advantage": float(np.mean(adv))}

    # --- state ---------------------------------------------------------------------------------

    def get_config(self) -> Dict[str, Any]:
        return {"units": self.units, "num_layers": self.num_lstm_layers,
                "init_range": self.init_range, "learning_rate": self.learning_rate,
                "baseline_decay": self.baseline_decay, "temperature": self.temperature,
                "tanh_constant": self.tanh_constant, "entropy_weight": self.entropy_weight,
                "skip_target": self.skip_target, "skip_weight": self.skip_weight,
                "clipnorm": self.clipnorm, "seed": self.seed, "jit_compile": self.jit_compile,
                "decisions": [d.config() for d in self.decision_list]}

    def state_bytes(self) -> bytes:
        """Weights, optimizer slots, baseline, counters and seed as one .npz blob."""
        return _state.state_bytes(self)

    def load_state_bytes(self, data: bytes) -> None:
        """Restore what `state_bytes` returned (shapes must match this controller)."""
        _state.load_state_bytes(self, data)

    def save_state(self, path: str) -> None:
        """Write `state_bytes` to ``path`` atomically."""
        from nascell import _io
        _io.atomic_write_bytes(path, self.state_bytes())

    def load_state(self, path: str) -> None:
        with open(path, "rb") as f:
            self.load_state_bytes(f.read())
