"""A recurrence whose weight gradients are one matmul over all time steps (TensorFlow only).

Automatic differentiation of a loop that computes ``h_{t-1} U`` at every step also computes,
at every step of the backward loop, the outer product ``h_{t-1}^T dz_t`` and adds it into a
``U``-sized accumulator: for the NAS cell's ``[650, 5200]`` recurrent kernel that is 35 small,
memory-bound matmuls and 35 additions of a 13.5 MB matrix per layer and batch. `batched_rnn`
instead runs the loop with the weight as a constant plus a zero "probe" added to each product;
the backward loop then yields ``dz_t`` for every step as the probe's gradient, and the weight's
gradient is a single matmul after it: ``dU = [h_0 .. h_{T-1}]^T [dz_1 .. dz_T]`` (and
``db = sum_t dz_t``). The backward loop's own product, ``dz_t U^T``, reads a transposed copy
of ``U`` made once: on CPU a matmul with a transposed operand costs about twice a plain one.

The step reports its products through the ``matmul(x, kernel, bias=None)`` it is given (see
`nascell.fast_rnn`); products with anything but a variable are left to autograd. The weights
enter the custom gradient as explicit inputs (read once, outside it), so their gradients reach
the variables under any distribution strategy. Masking follows ``keras.layers.RNN``: a masked
step keeps the previous state and repeats the previous output (zeros with
``zero_output_for_mask``).
"""

from __future__ import annotations

from typing import Any, Callable, List, Sequence, Tuple

import tensorflow as tf

Step = Callable[..., Tuple[Any, List[Any]]]


def _is_variable(value: Any) -> bool:
    """A Keras or TensorFlow variable (loop-invariant by construction)."""
    return isinstance(value, tf.Variable) or isinstance(getattr(value, "value", None),
                                                        tf.Variable)


@tf.custom_gradient
def _product(x, kernel, kernel_transposed):
    """``x kernel`` for a constant kernel; the gradient reads the transposed copy."""
    def grad(dy):
        return tf.matmul(dy, kernel_transposed), None, None
    return tf.matmul(x, kernel), grad


def _batched(kernel, bias, min_size: int) -> bool:
    """Whether a product's weight gradients are batched: variables, and a big enough kernel."""
    return (_is_variable(kernel) and (bias is None or _is_variable(bias))
            and int(kernel.shape[0]) * int(kernel.shape[1]) >= min_size)


class _Discover:
    """The ``matmul`` of a trial step: notes each product to batch (kernel, bias)."""

    def __init__(self, min_size: int):
        self.min_size = min_size
        self.products: List[Tuple[Any, Any]] = []

    def __call__(self, x, kernel, bias=None):
        if _batched(kernel, bias, self.min_size):
            self.products.append((kernel, bias))
        y = tf.matmul(x, tf.convert_to_tensor(kernel))
        return y if bias is None else y + tf.convert_to_tensor(bias)


class _Record:
    """The ``matmul`` of a loop step: ``x W + probe_t (+ b)`` with constant ``W`` and ``b``;
    keeps ``x`` for the weight gradient."""

    def __init__(self, products, constants, probes, min_size: int):
        self.products, self.constants, self.probes = products, constants, probes
        self.min_size = min_size
        self.inputs: List[Any] = []

    def __call__(self, x, kernel, bias=None):
        i = len(self.inputs)
        if not _batched(kernel, bias, self.min_size):
            y = tf.matmul(x, tf.convert_to_tensor(kernel))
            return y if bias is None else y + tf.convert_to_tensor(bias)
        if i >= len(self.products) or self.products[i][0] is not kernel or (
                self.products[i][1] is not bias):
            raise RuntimeError("the step's weight products differ from those of its trial step; "
                               "its `matmul` calls must not depend on the data")
        kernel_t, kernel_transposed, bias_t = self.constants[i]
        self.inputs.append(x)
        y = _product(x, kernel_t, kernel_transposed) + self.probes[i]
        return y if bias_t is None else y + bias_t


def _run_loop(step: Step, xs, states, probes, products, constants, mask,
              zero_output_for_mask: bool, output_size: int, min_size: int):
    """The time-major loop; returns (outputs [T,B,O], the products' inputs [T,B,in], states)."""
    steps, batch = tf.shape(xs)[0], tf.shape(xs)[1]

    def unstack(t):
        return tf.TensorArray(t.dtype, size=steps, element_shape=t.shape[1:]).unstack(t)

    xs_ta = unstack(xs)
    probe_tas = [unstack(p) for p in probes]
    mask_ta = unstack(mask) if mask is not None else None
    out_ta = tf.TensorArray(xs.dtype, size=steps, element_shape=[None, output_size])
    in_tas = [tf.TensorArray(xs.dtype, size=steps, element_shape=[None, kernel.shape[0]])
              for kernel, _ in products]
    zero_output = tf.zeros([batch, output_size], xs.dtype)

    def body(t, out_ta, in_tas, prev_output, *states):
        record = _Record(products, constants, [ta.read(t) for ta in probe_tas], min_size)
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


def batched_rnn(step: Step, inputs, initial_states: Sequence[Any], *, mask=None,
                go_backwards: bool = False, zero_output_for_mask: bool = False,
                min_size: int = 0):
    """Run ``step`` over the time axis of ``inputs`` with batched weight gradients.

    Args:
        step: ``step(x_t, states, matmul) -> (output, new_states)``; every product of a
            state-dependent tensor with a weight variable goes through
            ``matmul(x, kernel, bias=None)``, in the same order at every step. Other variables
            the step reads get their gradients by autograd; tensors it captures get none.
        inputs: ``(batch, time, features)``, e.g. a cell's projected inputs.
        initial_states: list of ``(batch, size)`` tensors.
        mask: ``(batch, time)`` booleans, or None.
        go_backwards: process the sequence in reverse (outputs then come in that order, as
            ``keras.layers.RNN(go_backwards=True)`` returns them).
        zero_output_for_mask: masked steps output zeros instead of the previous output.
        min_size: products whose kernel has fewer entries are left to autograd (for small
            kernels the extra ops per step cost more than batching saves).

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
    discover = _Discover(min_size)
    output0, _ = step(xs[0], states, discover)
    output_size = int(output0.shape[-1])
    products = discover.products
    if not products:   # nothing to batch: the plain loop, autograd all through
        outputs, _, final = _run_loop(step, xs, states, [], [], [], mask, zero_output_for_mask,
                                      output_size, min_size)
        return outputs[-1], tf.transpose(outputs, [1, 0, 2]), final
    kernels = [tf.convert_to_tensor(kernel) for kernel, _ in products]
    biases = [tf.convert_to_tensor(bias) for _, bias in products if bias is not None]
    n_states, n_kernels = len(states), len(kernels)

    @tf.custom_gradient
    def recurrence(xs, *args):
        states = list(args[:n_states])
        kernels = args[n_states:n_states + n_kernels]
        biases = iter(args[n_states + n_kernels:])
        # Constants in the loop (stop_gradient): its backward pass must not accumulate
        # gradients for them step by step.
        constants = [(tf.stop_gradient(kernel), tf.stop_gradient(tf.transpose(kernel)),
                      None if b is None else tf.stop_gradient(next(biases)))
                     for kernel, (_, b) in zip(kernels, products)]
        steps, batch = tf.shape(xs)[0], tf.shape(xs)[1]
        probes = [tf.zeros([steps, batch, kernel.shape[1]], xs.dtype) for kernel in kernels]
        with tf.GradientTape() as tape:
            tape.watch([xs, *states, *probes])
            outputs, product_inputs, final = _run_loop(step, xs, states, probes, products,
                                                       constants, mask, zero_output_for_mask,
                                                       output_size, min_size)

        def grad(*d_results, variables=None):
            d_results = [tf.zeros_like(r) if d is None else d
                         for d, r in zip(d_results, (outputs, *final))]
            sources = [xs, *states, *probes, *(variables or [])]
            grads = tape.gradient([outputs, *final], sources, output_gradients=d_results)
            input_grads = [tf.zeros_like(s) if g is None else g
                           for g, s in zip(grads[:1 + n_states], [xs, *states])]
            d_probes = [tf.zeros_like(p) if g is None else g
                        for g, p in zip(grads[1 + n_states:1 + n_states + n_kernels], probes)]
            kernel_grads, bias_grads = [], []
            for x, dz, (_, bias) in zip(product_inputs, d_probes, products):
                dz = tf.reshape(dz, [-1, dz.shape[-1]])
                x = tf.reshape(x, [-1, x.shape[-1]])
                kernel_grads.append(tf.matmul(x, dz, transpose_a=True))
                if bias is not None:
                    bias_grads.append(tf.reduce_sum(dz, axis=0))
            input_grads += kernel_grads + bias_grads
            if variables is None:
                return input_grads
            return input_grads, list(grads[1 + n_states + n_kernels:])

        return (outputs, *final), grad

    outputs, *final = recurrence(xs, *states, *kernels, *biases)
    return outputs[-1], tf.transpose(outputs, [1, 0, 2]), final
