"""A recurrence whose weight gradients are one matmul over all time steps (TensorFlow only).

Automatic differentiation of a loop that computes ``h_{t-1} U`` at every step also computes,
at every step of the backward loop, the outer product ``h_{t-1}^T dz_t`` and adds it into a
``U``-sized accumulator: for the NAS cell's ``[650, 5200]`` recurrent kernel that is 35 small,
memory-bound matmuls and 35 additions of a 13.5 MB matrix per layer and batch. `batched_rnn`
instead runs the loop with the weight held constant (``stop_gradient``) plus a zero "probe"
added to each product; the backward loop then yields ``dz_t`` for every step as the probe's
gradient, and the weight's gradient is a single matmul after it:
``dU = [h_0 .. h_{T-1}]^T [dz_1 .. dz_T]`` (and ``db = sum_t dz_t``).

The step reports its products through the ``matmul(x, kernel, bias=None)`` it is given (see
`nascell.fast_rnn`); products with anything but a variable are left to autograd. Masking
follows ``keras.layers.RNN``: a masked step keeps the previous state and repeats the previous
output (or outputs zeros, with ``zero_output_for_mask``).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import tensorflow as tf

Step = Callable[..., Tuple[Any, List[Any]]]


def _variable(kernel) -> Optional[tf.Variable]:
    """The `tf.Variable` behind a Keras or TensorFlow variable, else None."""
    value = getattr(kernel, "value", None) if not isinstance(kernel, tf.Variable) else kernel
    return value if isinstance(value, tf.Variable) else None


@tf.custom_gradient
def _product(x, kernel, kernel_transposed):
    """``x kernel`` for constant weights, whose gradient reads a transposed copy: on CPU a
    matmul of ``(batch, n) x (n, m)^T`` costs about twice one of ``(batch, n) x (n, m)``."""
    def grad(dy):
        return tf.matmul(dy, kernel_transposed), None, None
    return tf.matmul(x, kernel), grad


def _dense(x, kernel, bias=None):
    y = tf.matmul(x, kernel)
    return y if bias is None else y + bias


class _Discover:
    """The ``matmul`` of a trial step: notes each product's weights and widths."""

    def __init__(self):
        self.products: List[Tuple[Any, Any, int, int]] = []   # (kernel, bias, in, out)

    def __call__(self, x, kernel, bias=None):
        kernel_t = tf.convert_to_tensor(kernel)
        if _variable(kernel) is not None and (bias is None or _variable(bias) is not None):
            self.products.append((kernel, bias, int(kernel_t.shape[0]), int(kernel_t.shape[1])))
        return _dense(x, kernel_t, None if bias is None else tf.convert_to_tensor(bias))


class _Record:
    """The ``matmul`` of a loop step: ``x stop_gradient(W) + probe_t``; keeps ``x``."""

    def __init__(self, constants: Sequence[Tuple[Any, Any]], probes: Sequence[Any]):
        self.constants, self.probes = constants, probes
        self.inputs: List[Any] = []

    def __call__(self, x, kernel, bias=None):
        i = len(self.inputs)
        if i >= len(self.constants):
            raise RuntimeError("the step made more weight products in the loop than in its "
                               "trial step; its `matmul` calls must not depend on the data")
        kernel_t, kernel_transposed, bias_t = self.constants[i]
        self.inputs.append(x)
        y = _product(x, kernel_t, kernel_transposed) + self.probes[i]
        return y if bias_t is None else y + bias_t


def _run_loop(step: Step, xs, states: Sequence[Any], probes: Sequence[Any], constants,
              mask, zero_output_for_mask: bool, output_size: int):
    """The time-major loop; returns (outputs [T,B,O], the products' inputs [T,B,in], states)."""
    steps = tf.shape(xs)[0]
    batch = tf.shape(xs)[1]

    def unstack(t):
        return tf.TensorArray(t.dtype, size=steps, element_shape=t.shape[1:]).unstack(t)

    xs_ta = unstack(xs)
    probe_tas = [unstack(p) for p in probes]
    mask_ta = unstack(mask) if mask is not None else None
    out_ta = tf.TensorArray(xs.dtype, size=steps, element_shape=[None, output_size])
    in_tas = [tf.TensorArray(xs.dtype, size=steps, element_shape=[None, n_in])
              for _, _, n_in, _ in constants.products]
    zero_output = tf.zeros([batch, output_size], xs.dtype)

    def body(t, out_ta, in_tas, prev_output, *states):
        record = _Record(constants.tensors, [ta.read(t) for ta in probe_tas])
        output, new_states = step(xs_ta.read(t), list(states), record)
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        if mask_ta is not None:
            keep = tf.expand_dims(mask_ta.read(t), -1)
            output = tf.where(keep, output, zero_output if zero_output_for_mask else prev_output)
            new_states = [tf.where(keep, new, old) for new, old in zip(new_states, states)]
        out_ta = out_ta.write(t, output)
        in_tas = [ta.write(t, x) for ta, x in zip(in_tas, record.inputs)]
        return (t + 1, out_ta, in_tas, output) + tuple(new_states)

    result = tf.while_loop(lambda t, *_: t < steps, body,
                           (tf.constant(0), out_ta, in_tas, zero_output) + tuple(states),
                           maximum_iterations=steps, parallel_iterations=32, swap_memory=True)
    return result[1].stack(), [ta.stack() for ta in result[2]], list(result[4:])


class _Constants:
    """The products found by the trial step, as constants (``stop_gradient``) for the loop:
    (kernel, its transpose, bias)."""

    def __init__(self, products):
        self.products = products
        self.tensors = []
        for kernel, bias, _, _ in products:
            kernel = tf.stop_gradient(tf.convert_to_tensor(kernel))
            self.tensors.append((kernel, tf.transpose(kernel), None if bias is None
                                 else tf.stop_gradient(tf.convert_to_tensor(bias))))


def batched_rnn(step: Step, inputs, initial_states: Sequence[Any], *, mask=None,
                go_backwards: bool = False, zero_output_for_mask: bool = False):
    """Run ``step`` over the time axis of ``inputs`` with batched weight gradients.

    Args:
        step: ``step(x_t, states, matmul) -> (output, new_states)``; every product of a
            state-dependent tensor with a weight variable goes through
            ``matmul(x, kernel, bias=None)``, in the same order at every step.
        inputs: ``(batch, time, features)``, e.g. a cell's projected inputs.
        initial_states: list of ``(batch, size)`` tensors.
        mask: ``(batch, time)`` booleans, or None.
        go_backwards: process the sequence in reverse (outputs then come in that order, as
            ``keras.layers.RNN(go_backwards=True)`` returns them).
        zero_output_for_mask: masked steps output zeros instead of the previous output.

    Returns ``(last_output, outputs, final_states)`` as Keras' ``backend.rnn`` does with
    ``return_all_outputs=True``: outputs ``(batch, time, output_size)``.
    """
    xs = tf.transpose(inputs, [1, 0, 2])
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool), [1, 0])
    if go_backwards:
        xs = tf.reverse(xs, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    states = [tf.convert_to_tensor(s) for s in initial_states]

    # A trial step (outside the loop; dropped from the graph as its value is unused) finds the
    # weight products and the output width.
    discover = _Discover()
    output0, _ = step(xs[0], states, discover)
    output_size = int(output0.shape[-1])
    products = discover.products
    watched = {}   # id of a tf.Variable -> indices of its products (kernel or bias)
    for i, (kernel, bias, _, _) in enumerate(products):
        watched.setdefault(id(_variable(kernel)), []).append(("kernel", i))
        if bias is not None:
            watched.setdefault(id(_variable(bias)), []).append(("bias", i))

    @tf.custom_gradient
    def recurrence(xs, *states):
        constants = _Constants(products)
        steps, batch = tf.shape(xs)[0], tf.shape(xs)[1]
        probes = [tf.zeros([steps, batch, n_out], xs.dtype) for _, _, _, n_out in products]
        with tf.GradientTape() as tape:
            tape.watch([xs, *states, *probes])
            outputs, product_inputs, final = _run_loop(step, xs, states, probes, constants, mask,
                                                       zero_output_for_mask, output_size)

        def grad(d_outputs, *d_final, variables=None):
            variables = list(variables or [])
            d_results = [tf.zeros_like(r) if d is None else d
                         for d, r in zip((d_outputs, *d_final), (outputs, *final))]
            sources = [xs, *states, *probes] + variables
            grads = tape.gradient([outputs, *final], sources,
                                  output_gradients=d_results)
            n = 1 + len(states)
            input_grads = [tf.zeros_like(s) if g is None else g
                           for g, s in zip(grads[:n], [xs, *states])]
            d_probes = grads[n:n + len(probes)]
            var_grads = list(grads[n + len(probes):])
            for j, var in enumerate(variables):
                for part, i in watched.get(id(var), ()):
                    dz = d_probes[i]
                    if dz is None:
                        continue
                    dz = tf.reshape(dz, [-1, dz.shape[-1]])
                    if part == "kernel":
                        x = product_inputs[i]
                        g = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), dz, transpose_a=True)
                    else:
                        g = tf.reduce_sum(dz, axis=0)
                    var_grads[j] = g if var_grads[j] is None else var_grads[j] + g
            return input_grads, var_grads

        return (outputs, *final), grad

    outputs, *final = recurrence(xs, *states)
    return outputs[-1], tf.transpose(outputs, [1, 0, 2]), final
