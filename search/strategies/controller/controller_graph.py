"""The controller's compiled programs, shared by every controller of the same structure.

A `Controller` holds only weights and counters; the computation (sampling, scoring, the
REINFORCE gradient and the Adam step) lives in `Programs`, pure TensorFlow functions of the
weights, which are passed in as arguments. `programs(structure)` returns one `Programs` per
controller *structure* (the decision table, LSTM size and whether to XLA-compile), from a
small LRU cache:

* a second controller of the same structure (another seed, another strategy over the same
  space, a benchmark's next run) traces and compiles nothing: creating it takes milliseconds;
* a dropped controller releases nothing compiled because it owns nothing compiled, so a
  process that creates strategies one after another stays flat in memory (XLA keeps every
  executable it compiled for the life of the process; compiling per controller grew a
  benchmark by ~70 MiB per strategy);
* batches are padded to a few fixed sizes (`bucket`), so XLA compiles each program once per
  bucket instead of once per batch size met (pools, cached repeats, PPO re-scoring).

Logit shaping (temperature, tanh constant) and the loss weights (entropy, skip KL) are
runtime inputs, not part of the structure, so they may differ between controllers sharing a
program (and a pool may be sampled at another temperature).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Tuple

import numpy as np
import tensorflow as tf

#: the most distinct structures whose programs are kept (least recently used go first).
MAX_PROGRAMS = 16
#: batches are padded to the smallest of these (or a multiple of the last) that holds them.
BUCKETS = (8, 32, 128, 512)


def bucket(size: int) -> int:
    """The padded batch size for ``size`` rows."""
    for b in BUCKETS:
        if size <= b:
            return b
    return -(-size // BUCKETS[-1]) * BUCKETS[-1]


@dataclasses.dataclass(frozen=True)
class Structure:
    """What fixes the shape of a controller's computation (the key of the program cache)."""

    is_skip: Tuple[bool, ...]
    num_valid: Tuple[int, ...]  # choices of a Categorical, candidates of a Skips decision
    anchor_slot: Tuple[int, ...]
    num_choices: int  # the largest choice count (softmax heads are padded to it)
    num_anchors: int
    pad: int  # token slots per step in the padded layout
    units: int
    num_layers: int
    jit_compile: bool


class Programs:
    """The compiled functions of one `Structure`; see the module docstring.

    ``weights`` is the controller's trainable variables in its creation order: for each LSTM
    layer (kernel, recurrent kernel, bias), then go, head_kernel, head_bias, embedding,
    w_prev, w_curr, v. ``shaping`` is float32 [6]: 1/temperature, tanh constant (0: off),
    entropy weight, skip weight, log q, log (1 - q) (q: the skip target).
    """

    def __init__(self, s: Structure):
        self.s = s
        self.max_t = len(s.is_skip)
        self._is_skip = tf.constant(np.array(s.is_skip, bool))
        self._num_valid = tf.constant(np.array(s.num_valid, np.int32))
        self._anchor_slot = tf.constant(np.array(s.anchor_slot, np.int32))
        opts = dict(jit_compile=s.jit_compile, autograph=False, reduce_retracing=True)
        self.sample = tf.function(self._sample, **opts)
        self.score = tf.function(self._score, **opts)
        self.grad = tf.function(self._grad, **opts)
        self.adam = tf.function(self._adam, **opts)
        self.train = tf.function(self._train, **opts)

    # --- the autoregressive pass ------------------------------------------------------------

    def _lstm(self, kernel, recurrent, bias, x, state):
        h, c = state
        z = tf.matmul(x, kernel) + tf.matmul(h, recurrent) + bias
        i, f, g, o = tf.split(z, 4, axis=-1)  # the gate order of keras.layers.LSTMCell
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, c

    def _run(self, weights, shaping, num_decisions, batch_size, tokens=None, seed=None):
        """Sample (``tokens is None``) or score padded ``tokens`` [b, T, pad].

        ``num_decisions``: a scalar (sampling) or one length per row (scoring: rows of a
        growing space may differ); a row's steps past its length add nothing. A
        `tf.while_loop` over decisions. Each step computes both the softmax branch and the
        anchor-attention branch and keeps the one the decision's type asks for (the unused
        branch costs a few small matmuls and receives zero gradient).
        Returns padded tokens [b, T, pad], log P [b], entropy [b], skip KL [b].
        """
        s = self.s
        sampling = tokens is None
        b, units, pad = batch_size, s.units, s.pad
        num_anchors, num_choices = s.num_anchors, s.num_choices
        layers = [tuple(weights[3 * i:3 * i + 3]) for i in range(s.num_layers)]
        go, head_kernel, head_bias, embedding, w_prev, w_curr, v = (
            tf.convert_to_tensor(w) for w in weights[3 * s.num_layers:])
        layers = [tuple(tf.convert_to_tensor(w) for w in layer) for layer in layers]
        inv_temp, tanh_c, log_q1, log_q0 = shaping[0], shaping[1], shaping[4], shaping[5]

        def shape_logits(logits):
            logits = logits * inv_temp
            return tf.where(tanh_c > 0, tanh_c * tf.tanh(logits), logits)

        zeros = tf.zeros([b, units])
        states0 = tuple((zeros, zeros) for _ in range(s.num_layers))
        inputs0 = tf.tile(go, [b, 1])
        anchors0 = tf.zeros([b, num_anchors, units])  # W_prev h_j per anchor slot
        anchor_h0 = tf.zeros([b, num_anchors, units])  # h_j per anchor slot
        out0 = tf.TensorArray(tf.int32, size=self.max_t, element_shape=[None, pad])
        stats0 = (tf.zeros([b]), tf.zeros([b]), tf.zeros([b]))
        row_len = tf.broadcast_to(num_decisions, [b])
        steps = tf.reduce_max(row_len)

        def body(t, states, inputs, anchors, anchor_h, out, stats):
            log_prob, entropy, kl = stats
            x, new_states = inputs, []
            for layer, state in zip(layers, states):
                x, c = self._lstm(*layer, x, state)
                new_states.append((x, c))
            h = x
            is_skip, valid, slot = self._is_skip[t], self._num_valid[t], self._anchor_slot[t]
            if sampling:
                step_seed = tf.random.experimental.stateless_fold_in(seed, t)

            # Categorical branch: decision t's own softmax head and embedding table.
            c_mask = tf.range(num_choices) < valid
            c_logits = shape_logits(tf.matmul(h, head_kernel[t]) + head_bias[t])
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
            s_logits = shape_logits(tf.squeeze(tf.tanh(anchors + curr[:, None, :]) @ v, -1))
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
            s_kl = tf.reduce_sum((p * (log_p1 - log_q1) + (1 - p) * (log_p0 - log_q0))
                                 * s_mask, axis=-1)
            s_next = tf.einsum("bk,bku->bu", bits, anchor_h) / (
                1.0 + tf.reduce_sum(bits, axis=-1, keepdims=True))

            slot_hot = tf.one_hot(slot, num_anchors)[None, :, None] * tf.cast(is_skip, tf.float32)
            anchors = anchors + slot_hot * tf.matmul(h, w_prev)[:, None, :]
            anchor_h = anchor_h + slot_hot * h[:, None, :]
            token = tf.where(is_skip, tf.cast(bits[:, :pad], tf.int32),  # num_anchors >= pad
                             tf.pad(choice[:, None], [[0, 0], [0, pad - 1]]))
            out = out.write(t, token)
            active = tf.cast(t < row_len, tf.float32)
            stats = (log_prob + active * tf.where(is_skip, s_lp, c_lp),
                     entropy + active * tf.where(is_skip, s_ent, c_ent),
                     kl + active * tf.where(is_skip, s_kl, 0.0))
            inputs = tf.where(is_skip, s_next, c_next)
            return t + 1, tuple(new_states), inputs, anchors, anchor_h, out, stats

        _, _, _, _, _, out, stats = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), states0, inputs0, anchors0, anchor_h0, out0, stats0),
            maximum_iterations=self.max_t)
        # Steps >= num_decisions were never written: the TensorArray gives zeros for them.
        return (tf.transpose(out.stack(), [1, 0, 2]),) + stats

    # --- the programs -----------------------------------------------------------------------

    def _sample(self, weights, batch_size, num_decisions, seed, shaping):
        return self._run(weights, shaping, num_decisions, batch_size, seed=seed)[:3]

    def _score(self, weights, tokens, num_decisions, shaping):
        return self._run(weights, shaping, num_decisions, tf.shape(tokens)[0], tokens=tokens)[1:3]

    def _grad(self, weights, tokens, num_decisions, advantages, row_mask, total, shaping):
        """Loss ``(-sum A log P - w_ent sum H + w_kl sum KL) / total`` over unmasked rows."""
        with tf.GradientTape() as tape:
            _, log_prob, entropy, kl = self._run(weights, shaping, num_decisions,
                                                 tf.shape(tokens)[0], tokens=tokens)
            loss = (-tf.reduce_sum(advantages * log_prob)
                    - shaping[2] * tf.reduce_sum(row_mask * entropy)
                    + shaping[3] * tf.reduce_sum(row_mask * kl)) / total
        grads = tape.gradient(loss, list(weights))
        grads = [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g)
                 for g, w in zip(grads, weights)]
        return loss, grads, log_prob, entropy

    def _train(self, weights, momentums, velocities, iterations, learning_rate, tokens,
               num_decisions, advantages, row_mask, total, sampled_log_prob, shaping, hyper,
               update_steps, ppo_clip, importance_clip):
        """``update_steps`` REINFORCE/PPO steps on one batch, in one call.

        Step 0 weights each ``A_k grad log P(a_k)`` by 1, or with ``importance_clip > 0`` by
        ``min(importance_clip, r_k)``, ``r_k = P_now(a_k) / P_sampled(a_k)``; every later step
        by ``r_k``, set to 0 where ``r_k > 1 + ppo_clip`` with ``A_k > 0`` or
        ``r_k < 1 - ppo_clip`` with ``A_k < 0`` (the gradient of PPO's clipped objective). It
        stops, without a step, when every weight of a later step is 0. Each step is one Adam
        step. Returns (the loss of the last step taken, the number of steps taken).
        """
        lo, hi = 1.0 - ppo_clip, 1.0 + ppo_clip

        def body(step, done, last_loss):
            with tf.GradientTape() as tape:
                _, log_prob, entropy, kl = self._run(weights, shaping, num_decisions,
                                                     tf.shape(tokens)[0], tokens=tokens)
                ratio = tf.stop_gradient(tf.exp(log_prob - sampled_log_prob))
                first = tf.where(importance_clip > 0, tf.minimum(importance_clip, ratio),
                                 tf.ones_like(ratio))
                outside = (((advantages > 0) & (ratio > hi)) | ((advantages < 0) & (ratio < lo)))
                later = tf.where(outside, 0.0, ratio)
                w = tf.where(step > 0, later, first) * row_mask
                loss = (-tf.reduce_sum(advantages * w * log_prob)
                        - shaping[2] * tf.reduce_sum(row_mask * entropy)
                        + shaping[3] * tf.reduce_sum(row_mask * kl)) / total
            stop = (step > 0) & tf.logical_not(tf.reduce_any(w != 0))
            grads = tape.gradient(loss, list(weights))
            grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                     for g, v in zip(grads, weights)]

            def apply():
                self._adam(weights, momentums, velocities, iterations, learning_rate, grads,
                           hyper)
                return loss

            loss = tf.cond(stop, lambda: last_loss, apply)
            return step + tf.cast(tf.logical_not(stop), tf.int32), stop, loss

        steps, _, loss = tf.while_loop(
            lambda step, done, _: (step < update_steps) & tf.logical_not(done), body,
            (tf.constant(0), tf.constant(False), tf.constant(0.0)))
        return loss, steps

    def _adam(self, weights, momentums, velocities, iterations, learning_rate, grads,
              hyper):
        """Keras' Adam step (keras.optimizers.Adam, no amsgrad), on its own slot variables.

        ``hyper`` is float32 [4]: beta_1, beta_2, epsilon, clipnorm (0: off; per variable,
        as Keras' ``clipnorm``).
        """
        beta_1, beta_2, epsilon, clipnorm = hyper[0], hyper[1], hyper[2], hyper[3]
        local_step = tf.cast(iterations + 1, tf.float32)
        lr = tf.cast(learning_rate, tf.float32)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, local_step)) / (1 - tf.pow(beta_1, local_step))
        for w, m, v, g in zip(weights, momentums, velocities, grads):
            l2sum = tf.reduce_sum(tf.square(g))
            pred = l2sum > 0
            l2norm = tf.where(pred, tf.sqrt(tf.where(pred, l2sum, 1.0)), l2sum)
            clipped = g * clipnorm / tf.maximum(l2norm, clipnorm)
            g = tf.where(clipnorm > 0, clipped, g)
            m.assign_add((g - m) * (1 - beta_1))
            v.assign_add((tf.square(g) - v) * (1 - beta_2))
            w.assign_sub((m * alpha) / (tf.sqrt(v) + epsilon))
        iterations.assign_add(1)
        return local_step


_CACHE: "collections.OrderedDict[Structure, Programs]" = collections.OrderedDict()
_LOCK = threading.Lock()


def programs(structure: Structure) -> Programs:
    """The shared `Programs` of ``structure`` (built on first use, LRU-bounded)."""
    with _LOCK:
        if structure in _CACHE:
            _CACHE.move_to_end(structure)
            return _CACHE[structure]
        progs = _CACHE[structure] = Programs(structure)
        while len(_CACHE) > MAX_PROGRAMS:
            _CACHE.popitem(last=False)
        return progs


def clear_programs() -> None:
    """Drop every cached program (a later controller traces and compiles again)."""
    with _LOCK:
        _CACHE.clear()
