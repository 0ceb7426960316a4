"""The ENAS recurrent supernet: one language model whose weights every sampled cell shares.

One large graph holds, for every node ``j`` (1..N-1), every earlier node ``i < j`` and every
activation ``f``, one ``[units, 2*units]`` matrix ``W[j, i, f]`` (``per_activation=False``
shares one matrix across the four activations, as the paper's code does). A sampled cell
(an `ENASRNNCellSpec`) is a subgraph: node ``j`` reading ``i`` with ``f`` uses exactly
``W[j, i, f]``, plus the weights every cell uses (the embedding, tied to the softmax, node 0's
``kernel`` / ``recurrent_kernel`` and the output bias). Gradients therefore reach only the
variables the sampled cell reads; nothing is created per architecture.

The cell arithmetic is `nascell.enas_cells.highway`, the same function the standalone
`ENASRNNCell` uses, so a derived cell retrained from scratch computes what it was scored as.
`run` / `batch_loss` build the subgraph eagerly from the spec (the reference, and what tests
inspect); training and scoring go through one compiled graph that takes the architecture as
tensors (`arch_tensors`), gathering node j's matrix from the stack of its candidates, so a new
architecture every step costs no retracing. Both compute the same numbers.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from nascell.activations import ACTIVATIONS
from nascell.enas_cells import highway
from nascell.enas_spec import ENAS_RNN_ACTIVATIONS, ENASRNNCellSpec
from nascell.search.rundir import weights as run_weights


class RNNSupernet(keras.Model):
    """Shared-weight language model over every cell of an ``num_nodes``-node ENAS space.

    Args:
      vocab_size: words in the vocabulary.
      num_nodes: nodes of every cell (the space's N).
      units: embedding, node and state width (tied input/output embedding).
      per_activation: one matrix per (node, input, activation) (default) or per (node, input).
      init_range: weights uniform in [-init_range, init_range] (ENAS' code: 0.1 cells, 0.1 emb).
      seed: initialization seed.
    """

    def __init__(self, vocab_size: int, num_nodes: int = 12, units: int = 64,
                 per_activation: bool = True, init_range: float = 0.1, seed: int = 0,
                 name: str = "rnn_supernet"):
        super().__init__(name=name)
        self.vocab_size, self.num_nodes, self.units = vocab_size, num_nodes, units
        self.per_activation = per_activation

        def init(k):
            return keras.initializers.RandomUniform(-init_range, init_range, seed=seed + k)

        u = units
        self.embedding = self.add_weight(shape=(vocab_size, u), initializer=init(1),
                                         name="embedding")
        self.out_bias = self.add_weight(shape=(vocab_size,), initializer="zeros",
                                        name="out_bias")
        self.kernel = self.add_weight(shape=(u, 2 * u), initializer=init(2), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 2 * u), initializer=init(3),
                                                name="recurrent_kernel")
        acts = ENAS_RNN_ACTIVATIONS if per_activation else ("any",)
        self.node_weights: Dict[Tuple[int, int, str], tf.Variable] = {}
        k = 10
        for j in range(1, num_nodes):
            for i in range(j):
                for act in acts:
                    self.node_weights[(j, i, act)] = self.add_weight(
                        shape=(u, 2 * u), initializer=init(k), name=f"w_{j}_{i}_{act}")
                    k += 1
        self.built = True

    # --- which variables a cell uses -----------------------------------------------------------

    def _check(self, spec: ENASRNNCellSpec) -> None:
        if not isinstance(spec, ENASRNNCellSpec) or spec.num_nodes != self.num_nodes:
            raise ValueError(f"Argument `spec` must be an ENASRNNCellSpec of the supernet's "
                             f"{self.num_nodes} nodes. Received: spec={spec!r}")

    def node_weight(self, node: int, spec: ENASRNNCellSpec) -> tf.Variable:
        n = spec.nodes[node]
        return self.node_weights[(node, n.input, n.activation if self.per_activation else "any")]

    def shared_variables(self, spec: ENASRNNCellSpec) -> List[tf.Variable]:
        """Exactly the variables the subgraph of ``spec`` reads."""
        self._check(spec)
        return ([self.embedding, self.out_bias, self.kernel, self.recurrent_kernel]
                + [self.node_weight(j, spec) for j in range(1, self.num_nodes)])

    # --- forward -------------------------------------------------------------------------------

    def cell_step(self, spec: ENASRNNCellSpec, x_proj, h_prev):
        """One time step given ``x_proj = x @ kernel``: returns the new state."""
        u = self.units
        nodes = spec.nodes
        outs = [highway(x_proj + tf.matmul(h_prev, self.recurrent_kernel), h_prev,
                        nodes[0].activation, u)]
        for j in range(1, len(nodes)):
            h_in = outs[nodes[j].input]
            outs.append(highway(tf.matmul(h_in, self.node_weight(j, spec)), h_in,
                                nodes[j].activation, u))
        loose = [outs[i] for i in spec.loose_ends()]
        return loose[0] if len(loose) == 1 else tf.add_n(loose) / float(len(loose))

    def run(self, spec: ENASRNNCellSpec, inputs, h0=None):
        """Logits ``[batch, time, vocab]`` and the last state for word ids ``[batch, time]``."""
        self._check(spec)
        inputs = tf.convert_to_tensor(inputs, tf.int32)
        batch, steps = int(inputs.shape[0]), int(inputs.shape[1])
        h = tf.zeros([batch, self.units]) if h0 is None else tf.convert_to_tensor(h0)
        emb = tf.gather(self.embedding, inputs)  # [b, t, u]
        x_proj = tf.einsum("btu,uv->btv", emb, self.kernel)
        hs = []
        for t in range(steps):
            h = self.cell_step(spec, x_proj[:, t], h)
            hs.append(h)
        hs = tf.stack(hs, axis=1)
        logits = tf.einsum("btu,vu->btv", hs, self.embedding) + self.out_bias
        return logits, h

    def batch_loss(self, spec: ENASRNNCellSpec, inputs, targets, h0=None):
        """Mean cross-entropy (nats per word) and the last state."""
        logits, h = self.run(spec, inputs, h0)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.convert_to_tensor(targets, tf.int32), logits=logits)
        return tf.reduce_mean(ce), h

    # --- the compiled path: the architecture as tensors ----------------------------------------

    def arch_tensors(self, spec: ENASRNNCellSpec) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``spec`` as (weight index per node, activation per node, loose-end mask)."""
        self._check(spec)
        acts = len(ENAS_RNN_ACTIVATIONS) if self.per_activation else 1
        widx = [0] + [n.input * acts + (ENAS_RNN_ACTIVATIONS.index(n.activation)
                                        if self.per_activation else 0)
                      for n in spec.nodes[1:]]
        act = [ENAS_RNN_ACTIVATIONS.index(n.activation) for n in spec.nodes]
        mask = np.zeros(self.num_nodes, np.float32)
        mask[spec.loose_ends()] = 1.0
        return (tf.constant(widx, tf.int32), tf.constant(act, tf.int32), tf.constant(mask))

    def _node_stacks(self):
        # Node j's candidates, stacked in (input, activation) order: a read of the variables,
        # so the gradient of every candidate but the gathered one is zero.
        acts = ENAS_RNN_ACTIVATIONS if self.per_activation else ("any",)
        return [None] + [tf.stack([tf.convert_to_tensor(self.node_weights[(j, i, a)])
                                   for i in range(j) for a in acts])
                         for j in range(1, self.num_nodes)]

    def _compiled_loss(self, widx, act, mask, inputs, targets, h0):
        u = self.units
        stacks = self._node_stacks()
        weights = [None] + [tf.gather(stacks[j], widx[j]) for j in range(1, self.num_nodes)]
        acts = len(ENAS_RNN_ACTIVATIONS) if self.per_activation else 1
        inputs_of = [None] + [widx[j] // acts for j in range(1, self.num_nodes)]
        emb = tf.gather(self.embedding, inputs)
        x_proj = tf.einsum("btu,uv->btv", emb, self.kernel)

        def node(proj, h_in, a):
            c = tf.sigmoid(proj[:, :u])
            f = proj[:, u:]
            cand = tf.stack([ACTIVATIONS[name](f) for name in ENAS_RNN_ACTIVATIONS])
            return c * tf.gather(cand, a) + (1.0 - c) * h_in

        def step(h, xp):
            outs = [node(xp + tf.matmul(h, self.recurrent_kernel), h, act[0])]
            for j in range(1, self.num_nodes):
                h_in = tf.gather(tf.stack(outs), inputs_of[j])
                outs.append(node(tf.matmul(h_in, weights[j]), h_in, act[j]))
            return tf.einsum("n,nbu->bu", mask, tf.stack(outs)) / tf.reduce_sum(mask)

        # A symbolic loop over time keeps the graph (and its tracing) one step long.
        hs = tf.scan(step, tf.transpose(x_proj, [1, 0, 2]), initializer=h0)  # [t, b, u]
        h = hs[-1]
        hs = tf.transpose(hs, [1, 0, 2])
        logits = tf.einsum("btu,vu->btv", hs, self.embedding) + self.out_bias
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return tf.reduce_mean(ce), h

    def _fns(self):
        if getattr(self, "_loss_fn", None) is None:
            variables = self.trainable_variables

            @tf.function(reduce_retracing=True)
            def loss_fn(widx, act, mask, inputs, targets, h0):
                return self._compiled_loss(widx, act, mask, inputs, targets, h0)

            @tf.function(reduce_retracing=True)
            def grad_fn(widx, act, mask, inputs, targets, h0):
                with tf.GradientTape() as tape:
                    loss, h = self._compiled_loss(widx, act, mask, inputs, targets, h0)
                grads = tape.gradient(loss, variables)
                grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                         for g, v in zip(grads, variables)]
                return loss, h, grads

            self._loss_fn, self._grad_fn = loss_fn, grad_fn
        return self._loss_fn, self._grad_fn

    def _prep(self, spec, inputs, targets, h0):
        inputs = tf.convert_to_tensor(inputs, tf.int32)
        targets = tf.convert_to_tensor(targets, tf.int32)
        h0 = tf.zeros([int(inputs.shape[0]), self.units]) if h0 is None else h0
        return self.arch_tensors(spec) + (inputs, targets, h0)

    def fast_loss(self, spec: ENASRNNCellSpec, inputs, targets, h0=None):
        """`batch_loss` through one compiled graph for every architecture (no retracing)."""
        return self._fns()[0](*self._prep(spec, inputs, targets, h0))

    def gradients(self, spec: ENASRNNCellSpec, inputs, targets, h0=None):
        """(loss, last state, {variable: gradient}) for the variables ``spec`` reads."""
        loss, h, grads = self._fns()[1](*self._prep(spec, inputs, targets, h0))
        used = {id(v) for v in self.shared_variables(spec)}
        return loss, h, [(g, v) for g, v in zip(grads, self.trainable_variables)
                         if id(v) in used]

    # --- training and scoring ------------------------------------------------------------------

    def train_step(self, spec: ENASRNNCellSpec, inputs, targets, learning_rate: float,
                   clipnorm: Optional[float] = 0.25, h0=None):
        """One SGD step on the variables ``spec`` reads (ENAS: plain SGD, clipped gradients).

        Returns (loss, last state). Variables outside the subgraph are not assigned at all; a
        non-finite loss or gradient skips the step (and returns a None state).
        """
        loss, h, pairs = self.gradients(spec, inputs, targets, h0)
        grads = [g for g, _ in pairs]
        norm = tf.linalg.global_norm(grads)
        if not (np.isfinite(float(loss)) and np.isfinite(float(norm))):
            # A diverging cell must not poison the weights every other cell shares.
            return float(loss), None
        if clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, clipnorm, use_norm=norm)
        for (_, v), g in zip(pairs, grads):
            v.assign_sub(learning_rate * g)
        return float(loss), h

    def perplexity(self, spec: ENASRNNCellSpec, batches: Sequence[Tuple[np.ndarray, np.ndarray]],
                   carry_state: bool = True) -> float:
        """Perplexity of ``spec`` over ``(inputs, targets)`` batches, shared weights fixed."""
        total, h = 0.0, None
        for x, y in batches:
            loss, h_new = self.fast_loss(spec, x, y, h)
            total += float(loss)
            h = h_new if carry_state else None
        return float(np.exp(total / max(1, len(batches))))

    # --- state ---------------------------------------------------------------------------------

    def state_bytes(self) -> bytes:
        return run_weights.weights_to_bytes(self.weights)

    def load_state_bytes(self, data: bytes) -> None:
        run_weights.load_weights_bytes(self.weights, data)

    def export_cell_weights(self, spec: ENASRNNCellSpec) -> List[np.ndarray]:
        """The subgraph's cell weights in `ENASRNNCell`'s order (kernel, recurrent, node1..)."""
        self._check(spec)
        return ([np.asarray(self.kernel), np.asarray(self.recurrent_kernel)]
                + [np.asarray(self.node_weight(j, spec)) for j in range(1, self.num_nodes)])
