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
        model: the Keras model (see the module docstring).
        optimizer: a Keras optimizer (its ``global_clipnorm`` clips the gradient); its learning
            rate is set per pass by `train_pass`.
        sum_over_time: take the gradient of the loss summed over the unrolled steps (the
            literature's scale), else of the per-token mean.
        jit_compile: compile the steps with XLA.
    """

    def __init__(self, model, optimizer, sum_over_time: bool = True, jit_compile: bool = False):
        import tensorflow as tf

        self.model = model
        self.optimizer = optimizer
        self.sum_over_time = bool(sum_over_time)
        self.sizes = state_sizes(model)
        optimizer.build(model.trainable_variables)
        ids_spec = tf.TensorSpec([None, None], tf.int32)
        state_specs = [tf.TensorSpec([None, w], model.inputs[1 + i].dtype)
                       for i, w in enumerate(self.sizes)]
        self._train_step = tf.function(self._train_step_fn, jit_compile=jit_compile,
                                       input_signature=[ids_spec, ids_spec, state_specs])
        self._eval_step = tf.function(self._eval_step_fn, jit_compile=jit_compile,
                                      input_signature=[ids_spec, ids_spec, state_specs])

    # --- the steps (traced once) -----------------------------------------------------------------

    def _token_losses(self, x, y, states, training: bool):
        import tensorflow as tf

        logits, *new_states = self.model([x, *states], training=training)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=tf.cast(logits, tf.float32))
        return losses, new_states

    def _train_step_fn(self, x, y, states):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            losses, new_states = self._token_losses(x, y, states, training=True)
            mean = tf.reduce_mean(losses)
            objective = mean * tf.cast(tf.shape(y)[1], mean.dtype) if self.sum_over_time \
                else mean
        variables = self.model.trainable_variables
        grads = tape.gradient(objective, variables)
        self.optimizer.apply(grads, variables)
        return tf.reduce_sum(losses), [tf.stop_gradient(s) for s in new_states]

    def _eval_step_fn(self, x, y, states):
        import tensorflow as tf

        losses, new_states = self._token_losses(x, y, states, training=False)
        return tf.reduce_sum(losses), new_states

    # --- passes --------------------------------------------------------------------------------

    def zero_state(self, batch_size: int) -> List[Any]:
        import tensorflow as tf

        return [tf.zeros([batch_size, w], self.model.inputs[1 + i].dtype)
                for i, w in enumerate(self.sizes)]

    def _run(self, step, x: np.ndarray, y: np.ndarray, max_steps: Optional[int],
             check_every: int) -> PassStats:
        import tensorflow as tf

        start = time.time()
        # None or 0: every batch (the flags' "0: all", as the stateless scoring reads it)
        steps = len(x) if not max_steps else min(len(x), int(max_steps))
        states = self.zero_state(x.shape[1])  # reset at the start of every pass
        total, pending = 0.0, []
        for i in range(steps):
            loss_sum, states = step(tf.constant(x[i]), tf.constant(y[i]), states)
            pending.append(loss_sum)
            if len(pending) >= check_every or i == steps - 1:
                chunk = float(tf.add_n(pending))
                pending = []
                if not math.isfinite(chunk):
                    from nascell.search.evaluators._child import ChildDiverged

                    raise ChildDiverged(f"the loss is not finite ({chunk}) at step {i + 1} of "
                                        f"{steps}: the model diverged; a lower learning rate "
                                        f"or gradient clipping may help")
                total += chunk
        tokens = steps * int(x.shape[1]) * int(x.shape[2])
        return PassStats(loss=total / max(tokens, 1), tokens=tokens, steps=steps,
                         seconds=time.time() - start)

    def train_pass(self, x: np.ndarray, y: np.ndarray, lr: float,
                   max_steps: Optional[int] = None) -> PassStats:
        """One epoch over batches ``x, y`` (``(num_batches, batch, seq_len)``, Zaremba's layout)
        at learning rate ``lr``, the state carried from batch to batch. Raises `ChildDiverged`
        on a non-finite loss."""
        self.optimizer.learning_rate = float(lr)
        stats = self._run(self._train_step, x, y, max_steps, check_every=50)
        logging.debug("train pass: %d steps, ppl %.2f, %.1fs", stats.steps, stats.ppl,
                      stats.seconds)
        return stats

    def evaluate(self, ids: Sequence[int], batch_size: int, seq_len: int,
                 max_batches: Optional[int] = None) -> PassStats:
        """Mean per-token cross-entropy over ``ids`` in Zaremba's layout, the state carried
        (``batch_size=1``: the split as one stream, as Zaremba et al. measure test perplexity)."""
        from nascell.search.data.text import batchify

        x, y = batchify(ids, batch_size, seq_len)
        return self._run(self._eval_step, x, y, max_batches, check_every=200)
