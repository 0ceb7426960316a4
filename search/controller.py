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
``k`` columns per `Skips` decision with ``k`` candidates (0/1), in decision order.
"""

from __future__ import annotations

import io
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from nascell.search.space import Categorical, SearchSpace, Skips


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
        self.decision_list: Tuple[Any, ...] = tuple(decisions)
        if not self.decision_list:
            raise ValueError("Controller needs at least one decision")
        for d in self.decision_list:
            if not isinstance(d, (Categorical, Skips)):
                raise ValueError(f"Controller reads Categorical and Skips decisions; got "
                                 f"{type(d).__name__}")
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
        if temperature is not None and temperature <= 0:
            raise ValueError(f"temperature must be > 0 (or None), got {temperature}")
        if tanh_constant is not None and tanh_constant <= 0:
            raise ValueError(f"tanh_constant must be > 0 (or None), got {tanh_constant}")
        if skip_weight and skip_target is None:
            raise ValueError("skip_weight > 0 needs skip_target (the target skip density)")
        if skip_target is not None and not 0.0 < skip_target < 1.0:
            raise ValueError(f"skip_target must be in (0, 1), got {skip_target}")
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
        skips = [d for d in self.decision_list if isinstance(d, Skips)]
        self._num_choices = max([d.num_choices for d in self.decision_list
                                 if isinstance(d, Categorical)] or [1])
        self._num_anchors = max(len(skips), 1)
        self._pad = max(1, self._num_anchors - 1)  # token slots per step (padded layout)
        self.lstm_kernels, self.lstm_recurrent, self.lstm_biases = [], [], []
        for i in range(num_layers):
            self.lstm_kernels.append(self.add_weight(shape=(units, 4 * units), initializer=init,
                                                     name=f"lstm_{i}_kernel"))
            self.lstm_recurrent.append(self.add_weight(
                shape=(units, 4 * units), initializer=init, name=f"lstm_{i}_recurrent_kernel"))
            self.lstm_biases.append(self.add_weight(shape=(4 * units,), initializer=init,
                                                    name=f"lstm_{i}_bias"))
        self.go = self.add_weight(shape=(1, units), initializer=init, name="go")
        self.head_kernel = self.add_weight(shape=(num_t, units, self._num_choices),
                                           initializer=init, name="head_kernel")
        self.head_bias = self.add_weight(shape=(num_t, self._num_choices), initializer=init,
                                         name="head_bias")
        self.embedding = self.add_weight(shape=(num_t, self._num_choices, units),
                                         initializer=init, name="embedding")
        self.w_prev = self.add_weight(shape=(units, units), initializer=init, name="w_prev")
        self.w_curr = self.add_weight(shape=(units, units), initializer=init, name="w_curr")
        self.v = self.add_weight(shape=(units, 1), initializer=init, name="v")
        self.built = True

        # Constant per-step tables.
        is_skip = np.zeros(num_t, bool)
        num_valid = np.zeros(num_t, np.int32)  # choices (Categorical) or candidates (Skips)
        anchor_slot = np.zeros(num_t, np.int32)
        self._columns: List[Tuple[int, int]] = []  # (first compact column, width) per decision
        col, a = 0, 0
        for t, d in enumerate(self.decision_list):
            if isinstance(d, Categorical):
                num_valid[t] = d.num_choices
                self._columns.append((col, 1))
                col += 1
            else:
                is_skip[t], num_valid[t], anchor_slot[t] = True, d.num_candidates, a
                self._columns.append((col, d.num_candidates))
                col += d.num_candidates
                a += 1
        self._is_skip = tf.constant(is_skip)
        self._num_valid = tf.constant(num_valid)
        self._anchor_slot = tf.constant(anchor_slot)

        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm)
        self.optimizer.build(self.trainable_variables)
        self._fresh_optimizer = [np.array(v) for v in self.optimizer.variables]
        self.reset(seed)
        scalar = tf.TensorSpec([], tf.int32)
        padded = tf.TensorSpec([None, None, self._pad], tf.int32)
        train_sig = [padded, scalar, tf.TensorSpec([None], tf.float32),
                     tf.TensorSpec([], tf.float32)]
        self._sample_tf = tf.function(self._sample_graph, jit_compile=jit_compile, autograph=False,
                                      input_signature=[scalar, scalar,
                                                       tf.TensorSpec([2], tf.int64)])
        self._score_tf = tf.function(self._score_graph, jit_compile=jit_compile, autograph=False,
                                     input_signature=[padded, scalar])
        self._grad_tf = tf.function(self._grad_graph, jit_compile=jit_compile, autograph=False,
                                    input_signature=train_sig)

        self._apply_fn = None

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

    # --- shapes --------------------------------------------------------------------------------

    def token_width(self, num_decisions: Optional[int] = None) -> int:
        """Columns of the token matrix for the first ``num_decisions`` decisions."""
        ds = self.decision_list[:num_decisions]
        return sum(1 if isinstance(d, Categorical) else d.num_candidates for d in ds)

    def tokens_to_rows(self, tokens: np.ndarray, num_decisions: int) -> List[List[Any]]:
        """Token matrix -> per architecture a list (an int per Categorical, a 0/1 list per Skips)."""
        out = []
        for row in np.asarray(tokens):
            items, col = [], 0
            for d in self.decision_list[:num_decisions]:
                if isinstance(d, Categorical):
                    items.append(int(row[col]))
                    col += 1
                else:
                    items.append([int(b) for b in row[col:col + d.num_candidates]])
                    col += d.num_candidates
            out.append(items)
        return out

    def rows_to_tokens(self, rows: Sequence[Sequence[Any]]) -> Tuple[np.ndarray, int]:
        """Inverse of `tokens_to_rows`; returns the matrix and the number of decisions."""
        n = len(rows[0])
        if any(len(r) != n for r in rows):
            raise ValueError("rows_to_tokens: every row must have the same number of decisions")
        if n > len(self.decision_list):
            raise ValueError(f"{n} decisions, but the controller knows "
                             f"{len(self.decision_list)}")
        mat = np.zeros((len(rows), self.token_width(n)), np.int32)
        for i, r in enumerate(rows):
            flat = []
            for d, item in zip(self.decision_list, r):
                flat.extend([int(item)] if isinstance(d, Categorical) else [int(b) for b in item])
            mat[i] = flat
        return mat, n

    # --- the autoregressive pass ---------------------------------------------------------------

    def _shape_logits(self, logits):
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * tf.tanh(logits)
        return logits

    def _lstm(self, layer, x, state):
        h, c = state
        z = (tf.matmul(x, self.lstm_kernels[layer]) + tf.matmul(h, self.lstm_recurrent[layer])
             + self.lstm_biases[layer])
        i, f, g, o = tf.split(z, 4, axis=-1)  # the gate order of keras.layers.LSTMCell
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, c

    def _run(self, num_decisions, batch_size, tokens=None, seed=None):
        """Sample (``tokens is None``) or score padded ``tokens`` [b, n, pad].

        A `tf.while_loop` over decisions. Each step computes both the softmax branch and the
        anchor-attention branch and keeps the one the decision's type asks for (the unused
        branch costs a few small matmuls and receives zero gradient).
        Returns padded tokens, log P [b], entropy [b], skip KL [b].
        """
        sampling = tokens is None
        b, units, pad = batch_size, self.units, self._pad
        num_anchors, num_choices = self._num_anchors, self._num_choices
        head_kernel = tf.convert_to_tensor(self.head_kernel)
        head_bias = tf.convert_to_tensor(self.head_bias)
        embedding = tf.convert_to_tensor(self.embedding)
        w_prev = tf.convert_to_tensor(self.w_prev)
        w_curr = tf.convert_to_tensor(self.w_curr)
        v = tf.convert_to_tensor(self.v)
        zeros = tf.zeros([b, units])
        states0 = tuple((zeros, zeros) for _ in range(self.num_lstm_layers))
        inputs0 = tf.tile(tf.convert_to_tensor(self.go), [b, 1])
        anchors0 = tf.zeros([b, num_anchors, units])  # W_prev h_j per anchor slot
        anchor_h0 = tf.zeros([b, num_anchors, units])  # h_j per anchor slot
        max_t = len(self.decision_list)
        out0 = tf.TensorArray(tf.int32, size=max_t, element_shape=[None, pad])
        stats0 = (tf.zeros([b]), tf.zeros([b]), tf.zeros([b]))
        skip_log_q = None if self.skip_target is None else (
            float(np.log(self.skip_target)), float(np.log(1 - self.skip_target)))

        def body(t, states, inputs, anchors, anchor_h, out, stats):
            log_prob, entropy, kl = stats
            x, new_states = inputs, []
            for layer in range(self.num_lstm_layers):
                x, c = self._lstm(layer, x, states[layer])
                new_states.append((x, c))
            h = x
            is_skip, valid, slot = self._is_skip[t], self._num_valid[t], self._anchor_slot[t]
            if sampling:
                step_seed = tf.random.experimental.stateless_fold_in(seed, t)

            # Categorical branch: decision t's own softmax head and embedding table.
            c_mask = tf.range(num_choices) < valid
            c_logits = self._shape_logits(tf.matmul(h, head_kernel[t]) + head_bias[t])
            c_logits = tf.where(c_mask[None, :], c_logits, -1e9)
            if sampling:
                choice = tf.cast(tf.random.stateless_categorical(
                    c_logits, 1, seed=step_seed)[:, 0], tf.int32)
            else:
                choice = tf.clip_by_value(tokens[:, t, 0], 0, num_choices - 1)
            c_log_p = tf.nn.log_softmax(c_logits)
            c_lp = tf.gather(c_log_p, choice, batch_dims=1)
            c_ent = -tf.reduce_sum(tf.where(c_mask[None, :], tf.exp(c_log_p) * c_log_p, 0.0),
                                   axis=-1)
            c_next = tf.gather(embedding[t], choice)

            # Skips branch: anchor attention over the earlier anchors 0..valid-1.
            s_mask = tf.cast(tf.range(num_anchors) < valid, tf.float32)[None, :]
            curr = tf.matmul(h, w_curr)
            s_logits = tf.squeeze(tf.tanh(anchors + curr[:, None, :]) @ v, -1)
            s_logits = self._shape_logits(s_logits)
            p = tf.sigmoid(s_logits)
            if sampling:
                u = tf.random.stateless_uniform([b, num_anchors], seed=step_seed + 1)
                bits = tf.cast(u < p, tf.float32) * s_mask
            else:
                tok = tf.cast(tokens[:, t, :], tf.float32)
                bits = tf.pad(tok, [[0, 0], [0, num_anchors - pad]])[:, :num_anchors] * s_mask
            log_p1, log_p0 = tf.math.log_sigmoid(s_logits), tf.math.log_sigmoid(-s_logits)
            s_lp = tf.reduce_sum((bits * log_p1 + (1 - bits) * log_p0) * s_mask, axis=-1)
            s_ent = -tf.reduce_sum((p * log_p1 + (1 - p) * log_p0) * s_mask, axis=-1)
            if skip_log_q is not None:
                s_kl = tf.reduce_sum((p * (log_p1 - skip_log_q[0]) + (1 - p) * (
                    log_p0 - skip_log_q[1])) * s_mask, axis=-1)
            else:
                s_kl = tf.zeros([b])
            s_next = tf.einsum("bk,bku->bu", bits, anchor_h) / (
                1.0 + tf.reduce_sum(bits, axis=-1, keepdims=True))

            slot_hot = tf.one_hot(slot, num_anchors)[None, :, None] * tf.cast(is_skip, tf.float32)
            anchors = anchors + slot_hot * tf.matmul(h, w_prev)[:, None, :]
            anchor_h = anchor_h + slot_hot * h[:, None, :]
            token = tf.where(is_skip, tf.cast(bits[:, :pad], tf.int32),  # num_anchors >= pad
                             tf.pad(choice[:, None], [[0, 0], [0, pad - 1]]))
            out = out.write(t, token)
            stats = (log_prob + tf.where(is_skip, s_lp, c_lp),
                     entropy + tf.where(is_skip, s_ent, c_ent),
                     kl + tf.where(is_skip, s_kl, 0.0))
            inputs = tf.where(is_skip, s_next, c_next)
            return t + 1, tuple(new_states), inputs, anchors, anchor_h, out, stats

        _, _, _, _, _, out, stats = tf.while_loop(
            lambda t, *_: t < num_decisions, body,
            (tf.constant(0), states0, inputs0, anchors0, anchor_h0, out0, stats0),
            maximum_iterations=max_t)
        # Steps >= num_decisions were never written (zeros); `_to_compact` ignores them.
        return (tf.transpose(out.stack(), [1, 0, 2]),) + stats

    def _sample_graph(self, batch_size, num_decisions, seed):
        return self._run(num_decisions, batch_size, seed=seed)

    def _score_graph(self, tokens, num_decisions):
        return self._run(num_decisions, tf.shape(tokens)[0], tokens=tokens)[1:]

    def _grad_graph(self, tokens, num_decisions, advantages, total):
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            _, log_prob, entropy, kl = self._run(num_decisions, tf.shape(tokens)[0],
                                                 tokens=tokens)
            loss = (-tf.reduce_sum(advantages * log_prob)
                    - self.entropy_weight * tf.reduce_sum(entropy)
                    + self.skip_weight * tf.reduce_sum(kl)) / total
        grads = tape.gradient(loss, variables)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                 for g, v in zip(grads, variables)]
        return loss, grads, log_prob, entropy

    def call(self, tokens, num_decisions: Optional[int] = None):
        """Keras entry point: log P of a compact token matrix (all decisions by default)."""
        n = self._check_n(num_decisions)
        return self._score_tf(tf.constant(self._to_padded(tokens, n)), tf.constant(n))[0]

    def _check_n(self, num_decisions: Optional[int]) -> int:
        n = len(self.decision_list) if num_decisions is None else int(num_decisions)
        if not 1 <= n <= len(self.decision_list):
            raise ValueError(f"num_decisions must be in [1, {len(self.decision_list)}], got {n}")
        return n

    def _to_padded(self, tokens: np.ndarray, n: int) -> np.ndarray:
        tokens = np.asarray(tokens, np.int32).reshape(-1, self.token_width(n))
        out = np.zeros((len(tokens), n, self._pad), np.int32)
        for t, (col, width) in enumerate(self._columns[:n]):
            out[:, t, :width] = tokens[:, col:col + width]
        return out

    def _to_compact(self, padded: np.ndarray, n: int) -> np.ndarray:
        padded = np.asarray(padded)
        out = np.zeros((len(padded), self.token_width(n)), np.int32)
        for t, (col, width) in enumerate(self._columns[:n]):
            out[:, col:col + width] = padded[:, t, :width]
        return out

    # --- public API ----------------------------------------------------------------------------

    def sample(self, batch_size: int, num_decisions: Optional[int] = None
               ) -> Dict[str, np.ndarray]:
        """Sample ``batch_size`` architectures of the first ``num_decisions`` decisions.

        Returns numpy arrays: ``tokens`` [m, width] int32, ``log_prob`` [m] (log P of each
        whole sequence), ``entropy`` [m] (sum of per-step entropies), and ``seed`` (the
        stateless seed used, for the record). Call ``k`` uses seed ``(self.seed, k)``.
        """
        n = self._check_n(num_decisions)
        seed = tf.constant([self.seed, self.sample_calls], tf.int64)
        self.sample_calls += 1
        padded, log_prob, entropy, _ = self._sample_tf(tf.constant(batch_size, tf.int32),
                                                       tf.constant(n), seed)
        return {"tokens": self._to_compact(padded.numpy(), n), "log_prob": log_prob.numpy(),
                "entropy": entropy.numpy(), "seed": seed.numpy()}

    def log_prob(self, tokens: np.ndarray, num_decisions: Optional[int] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
        """Re-score a batch of token rows under the current weights: (log P, entropy)."""
        n = self._check_n(num_decisions)
        log_prob, entropy, _ = self._score_tf(tf.constant(self._to_padded(tokens, n)),
                                              tf.constant(n))
        return log_prob.numpy(), entropy.numpy()

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
        """Loss and gradients of ``-1/m sum_k A_k log P(tokens_k)`` (+ bonus terms), no update."""
        n = self._check_n(num_decisions)
        padded = self._to_padded(tokens, n)
        total = len(padded) if total is None else total
        loss, grads, log_prob, entropy = self._grad_tf(
            tf.constant(padded), tf.constant(n), tf.constant(np.asarray(advantages, np.float32)),
            tf.constant(float(total), tf.float32))
        return float(loss), grads, log_prob.numpy(), entropy.numpy()

    def apply_gradients(self, grads) -> None:
        if self._apply_fn is None:
            variables = self.trainable_variables

            @tf.function
            def fn(grads):
                self.optimizer.apply_gradients(zip(grads, variables))
            self._apply_fn = fn
        self._apply_fn(list(grads))
        self.updates += 1

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
            raise ValueError(f"update needs one token row per reward; got {len(batches)} rows "
                             f"and {m} rewards")
        adv = self.advantages(rewards)
        if weights is not None:
            adv = adv * np.asarray(weights, np.float64)
        baseline = self.baseline
        groups: Dict[int, List[int]] = {}
        for k, (_, n) in enumerate(batches):
            groups.setdefault(int(n), []).append(k)
        total_grads, loss = None, 0.0
        for n, idx in sorted(groups.items()):
            tokens = np.stack([np.asarray(batches[k][0], np.int32) for k in idx])
            l, grads, _, _ = self.gradients(tokens, adv[idx], n, total=m)
            loss += l
            total_grads = grads if total_grads is None else [a + g for a, g in zip(
                total_grads, grads)]
        self.apply_gradients(total_grads)
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
        arrays = {f"weight_{i}": np.asarray(v) for i, v in enumerate(self.weights)}
        arrays.update({f"optimizer_{i}": np.asarray(v)
                       for i, v in enumerate(self.optimizer.variables)})
        arrays["counters"] = np.array([self.sample_calls, self.updates, self.seed], np.int64)
        arrays["baseline"] = np.array([np.nan if self.baseline is None else self.baseline])
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    def load_state_bytes(self, data: bytes) -> None:
        """Restore what `state_bytes` returned (shapes must match this controller)."""
        with np.load(io.BytesIO(data)) as f:
            for prefix, variables in (("weight", self.weights),
                                      ("optimizer", self.optimizer.variables)):
                n = sum(1 for k in f.files if k.startswith(prefix + "_"))
                if n != len(variables):
                    raise ValueError(f"controller checkpoint holds {n} {prefix} arrays, this "
                                     f"controller has {len(variables)}: the search space or "
                                     "controller options differ from the saved run")
                for i, v in enumerate(variables):
                    value = f[f"{prefix}_{i}"]
                    if tuple(value.shape) != tuple(v.shape):
                        raise ValueError(f"controller checkpoint {prefix} {i} ({v.path}) has "
                                         f"shape {value.shape}, expected {tuple(v.shape)}")
                    v.assign(value)
            self.sample_calls, self.updates, self.seed = (int(x) for x in f["counters"])
            b = float(f["baseline"][0])
            self.baseline = None if np.isnan(b) else b

    def save_state(self, path: str) -> None:
        """Write `state_bytes` to ``path`` atomically."""
        from nascell import _io
        _io.atomic_write_bytes(path, self.state_bytes())

    def load_state(self, path: str) -> None:
        with open(path, "rb") as f:
            self.load_state_bytes(f.read())
