"""Truncated back-propagation through time with the recurrent state carried across batches.

Zaremba, Sutskever & Vinyals (2014) and Zoph & Le (2017) train language models on a token
stream cut into ``batch_size`` contiguous rows (`nascell.search.data.text.batchify`): row ``b``
of batch ``i + 1`` continues row ``b`` of batch ``i``, so the final ``[h, c]`` of every layer
after batch ``i`` is the initial state of batch ``i + 1``. Gradients stop at batch boundaries
(truncation) but the state does not. Validation and test perplexity are measured the same way.
The state is reset to zeros at the start of every pass (epoch, validation, test).

The model is any ``[ids, *states] -> [logits, *states]`` Keras model, e.g.
``build_language_model(..., return_state=True)``. One step is a `tf.function` that takes and
returns the states, so the Python loop only hands tensors from one call to the next.

The loss whose gradient is taken is the cross-entropy summed over the unrolled steps and
averaged over the batch (``sum_over_time=True``, as Zaremba et al. and TensorFlow's PTB tutorial
do), so a learning rate of 1.0 and a clipping norm of 5 mean what they mean in those papers.
Reported losses are always per token (their exponential is the perplexity).

Devices. The trainer runs under a `tf.distribute` strategy (the children's,
`nascell.search.evaluators._child.distribution_strategy`: a `MirroredStrategy` over the visible
GPUs), the model and optimizer built in its scope. With ``R`` replicas each batch of ``B`` rows
is split the same way every step: replica ``r`` takes rows ``r * B / R`` to ``(r + 1) * B / R``
and keeps their recurrent state, which never leaves it, so row ``b`` of batch ``i + 1``
continues row ``b`` of batch ``i`` on the same replica. The loss means what it means on one
device: each replica's share is its rows' summed loss divided by the *global* batch, the
shares' gradients are summed across replicas first, and only then does the optimizer clip
(its ``global_clipnorm`` sees the whole batch's gradient) and step. (Keras' optimizer would clip
each replica's share before its own cross-replica sum; so the sum is taken here, and the
optimizer gets it on the first replica and zeros on the others, whose sum it then takes again:
two reductions of the gradient a step, the price of the one-device meaning.) Training needs
``B`` to be a multiple of ``R``; validation and test run under the strategy when their batch
splits evenly, else (e.g. ``batch_size=1``, the test stream as one row) on one device.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, List, Optional, Sequence

import numpy as np
from absl import logging


@dataclasses.dataclass
class PassStats:
    """One pass over a split: mean cross-entropy per token, and what it took."""

    loss: float
    tokens: int
    steps: int
    seconds: float

    @property
    def ppl(self) -> float:
        return math.exp(min(self.loss, 700.0))


def state_sizes(model) -> List[int]:
    """Widths of the state inputs of a ``[ids, *states]`` model, in order."""
    sizes = []
    for spec in model.inputs[1:]:
        width = spec.shape[-1]
        if width is None:
            raise ValueError(f"state input {spec.name} has no known width; build the model "
                             f"with return_state=True")
        sizes.append(int(width))
    if not sizes:
        raise ValueError("Argument `model` must take [ids, *states] and return "
                         "[logits, *states] (build_language_model(..., return_state=True)); "
                         "it has one input")
    return sizes


class StatefulLMTrainer:
    """Trains and evaluates a ``[ids, *states] -> [logits, *states]`` language model with the
    state carried across consecutive batches.

    Args:
        model: the Keras model (see the module docstring), built in ``strategy``'s scope.
        optimizer: a Keras optimizer (its ``global_clipnorm`` clips the gradient of the whole
            batch), made in ``strategy``'s scope; its learning rate is set per pass by
            `train_pass`.
        sum_over_time: take the gradient of the loss summed over the unrolled steps (the
            literature's scale), else of the per-token mean.
        jit_compile: compile each replica's forward and backward pass with XLA.
        strategy: the `tf.distribute.Strategy` to train under (default: the one in scope, the
            default one-device strategy outside any); see the module docstring.
    """

    def __init__(self, model, optimizer, sum_over_time: bool = True, jit_compile: bool = False,
                 strategy=None):
        import tensorflow as tf

        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = int(self.strategy.num_replicas_in_sync)
        self.model = model
        self.optimizer = optimizer
        self.sum_over_time = bool(sum_over_time)
        self.sizes = state_sizes(model)
        _check_scope(self.strategy, model, optimizer)
        with self.strategy.scope():
            optimizer.build(model.trainable_variables)
        self._replica_grads = tf.function(self._replica_grads_fn, jit_compile=jit_compile)
        self._replica_eval = tf.function(self._replica_eval_fn, jit_compile=jit_compile)
        self._train_step = tf.function(self._train_step_fn)
        self._eval_step = tf.function(self._eval_step_fn)
        self._one_device_eval_step = tf.function(self._replica_eval_fn, jit_compile=jit_compile)

    # --- the steps (traced once) -----------------------------------------------------------------

    def _token_losses(self, x, y, states, training: bool):
        import tensorflow as tf

        logits, *new_states = self.model([x, *states], training=training)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=tf.cast(logits, tf.float32))
        return losses, new_states

    def _rows(self, batch):
        """This replica's rows of the global ``batch`` (in replica context)."""
        import tensorflow as tf

        if self.replicas == 1:
            return batch
        rows = tf.shape(batch)[0] // self.replicas
        first = tf.distribute.get_replica_context().replica_id_in_sync_group * rows
        return batch[first:first + rows]

    def _replica_grads_fn(self, x, y, states, global_batch):
        """One replica's summed loss, its share of the gradient of the global objective, and
        its rows' next states."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            losses, new_states = self._token_losses(x, y, states, training=True)
            loss_sum = tf.reduce_sum(losses)
            per_row = global_batch if self.sum_over_time else global_batch * tf.cast(
                tf.shape(y)[1], loss_sum.dtype)
            objective = loss_sum / per_row
        grads = tape.gradient(objective, self.model.trainable_variables)
        return loss_sum, grads, [tf.stop_gradient(s) for s in new_states]

    def _train_step_fn(self, x, y, states):
        import tensorflow as tf

        global_batch = tf.cast(tf.shape(y)[0], tf.float32)
        variables = self.model.trainable_variables

        def replica_step(x, y, states):
            loss_sum, grads, new_states = self._replica_grads(self._rows(x), self._rows(y),
                                                              states, global_batch)
            if self.replicas > 1:
                context = tf.distribute.get_replica_context()
                present = [i for i, g in enumerate(grads) if g is not None]
                reduced = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                             [grads[i] for i in present])
                first = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.float32)
                grads = list(grads)
                for i, g in zip(present, reduced):
                    grads[i] = _scaled(g, first)
            self.optimizer.apply(grads, variables)
            return loss_sum, new_states

        loss_sum, new_states = self.strategy.run(replica_step, args=(x, y, states))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss_sum, axis=None), new_states

    def _replica_eval_fn(self, x, y, states):
        import tensorflow as tf

        losses, new_states = self._token_losses(x, y, states, training=False)
        return tf.reduce_sum(losses), new_states

    def _eval_step_fn(self, x, y, states):
        import tensorflow as tf

        def replica_step(x, y, states):
            return self._replica_eval(self._rows(x), self._rows(y), states)

        loss_sum, new_states = self.strategy.run(replica_step, args=(x, y, states))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss_sum, axis=None), new_states

    # --- passes --------------------------------------------------------------------------------

    def zero_state(self, batch_size: int, distributed: bool = True) -> List[Any]:
        """Zero states for ``batch_size`` rows: with ``distributed``, each replica's for its
        rows (a per-replica value), else one device's for all of them."""
        import tensorflow as tf

        def zeros(rows):
            return [tf.zeros([rows, w], self.model.inputs[1 + i].dtype)
                    for i, w in enumerate(self.sizes)]

        if not distributed:
            return zeros(batch_size)
        rows = batch_size // self.replicas
        return self.strategy.experimental_distribute_values_from_function(
            lambda context: zeros(rows))

    def _splits(self, batch_size: int) -> bool:
        return batch_size % self.replicas == 0

    def _run(self, step, x: np.ndarray, y: np.ndarray, max_steps: Optional[int],
             check_every: int, max_loss: Optional[float] = None) -> PassStats:
        import tensorflow as tf

        start = time.time()
        # None or 0: every batch (the flags' "0: all", as the stateless scoring reads it)
        steps = len(x) if not max_steps else min(len(x), int(max_steps))
        distributed = step is not self._one_device_eval_step
        states = self.zero_state(x.shape[1], distributed)  # reset at the start of every pass
        total, pending = 0.0, []
        batch_tokens = int(x.shape[1]) * int(x.shape[2])
        for i in range(steps):
            loss_sum, states = step(tf.constant(x[i]), tf.constant(y[i]), states)
            pending.append(loss_sum)
            if len(pending) >= check_every or i == steps - 1:
                chunk, n = float(tf.add_n(pending)), len(pending)
                pending = []
                diverged = None
                if not math.isfinite(chunk):
                    diverged = (f"the loss is not finite ({chunk}) at step {i + 1} of {steps}: "
                                f"the model diverged; a lower learning rate or gradient "
                                f"clipping may help")
                elif max_loss is not None and chunk / (n * batch_tokens) > max_loss:
                    diverged = (f"the training loss is {chunk / (n * batch_tokens):.1f} per "
                                f"token at step {i + 1} of {steps}, over {max_loss:.1f} (twice "
                                f"the uniform guess's): the model diverged; a lower learning "
                                f"rate may help")
                if diverged:
                    from nascell.search.evaluators._child import ChildDiverged

                    raise ChildDiverged(diverged)
                total += chunk
        tokens = steps * batch_tokens
        return PassStats(loss=total / max(tokens, 1), tokens=tokens, steps=steps,
                         seconds=time.time() - start)

    def train_pass(self, x: np.ndarray, y: np.ndarray, lr: float,
                   max_steps: Optional[int] = None) -> PassStats:
        """One epoch over batches ``x, y`` (``(num_batches, batch, seq_len)``, Zaremba's layout)
        at learning rate ``lr``, the state carried from batch to batch. Raises `ChildDiverged`
        on a non-finite loss, or when the mean loss of a check (every 50 steps) is over twice
        the uniform guess's, ``2 * ln(vocabulary)``: a model that far from the guess it started
        at has diverged, and the rest of the epoch would be spent for nothing."""
        check_batch(int(x.shape[1]), self.replicas)
        self.optimizer.learning_rate = float(lr)
        vocab = int(self.model.outputs[0].shape[-1])
        stats = self._run(self._train_step, x, y, max_steps, check_every=50,
                          max_loss=2.0 * math.log(vocab))
        logging.debug("train pass: %d steps, ppl %.2f, %.1fs", stats.steps, stats.ppl,
                      stats.seconds)
        return stats

    def evaluate(self, ids: Sequence[int], batch_size: int, seq_len: int,
                 max_batches: Optional[int] = None) -> PassStats:
        """Mean per-token cross-entropy over ``ids`` in Zaremba's layout, the state carried
        (``batch_size=1``: the split as one stream, as Zaremba et al. measure test perplexity)."""
        from nascell.search.data.text import batchify

        x, y = batchify(ids, batch_size, seq_len)
        step = self._eval_step if self._splits(int(batch_size)) else self._one_device_eval_step
        return self._run(step, x, y, max_batches, check_every=200)


def check_batch(batch_size: int, replicas: int) -> None:
    """Training splits every batch evenly among the replicas (see the module docstring)."""
    if batch_size % replicas:
        raise ValueError(f"Argument `batch_size` must be a multiple of the number of replicas "
                         f"({replicas}: the devices of the distribution strategy), so every "
                         f"replica keeps the same rows of the stream. Received: "
                         f"batch_size={batch_size}")


def _check_scope(strategy, model, optimizer) -> None:
    """The model's and the optimizer's variables belong to ``strategy``."""
    variables = [("model", v) for v in model.variables]
    variables += [("optimizer", v) for v in (optimizer.iterations,)]
    for owner, v in variables:
        value = getattr(v, "value", v)
        if not strategy.extended.variable_created_in_scope(value):
            raise ValueError(f"Argument `{owner}` must be made in the scope of the strategy "
                             f"the trainer runs under (`with strategy.scope():`), so its "
                             f"variables are mirrored on the strategy's devices. Received: a "
                             f"{owner} whose variable {v.name!r} was made outside it")


def _scaled(grad, factor):
    """``grad * factor`` for a dense or an `IndexedSlices` gradient (None stays None)."""
    import tensorflow as tf

    if grad is None:
        return None
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * tf.cast(factor, grad.values.dtype), grad.indices,
                                grad.dense_shape)
    return grad * tf.cast(factor, grad.dtype)
