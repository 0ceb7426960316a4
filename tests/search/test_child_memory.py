"""A trained child leaves nothing behind in TensorFlow's process-global gradient registry.

Each trace of a training step under a `tf.distribute` strategy (the default one too) wraps
the dense-gradient all-reduce in `tf.custom_gradient`, which registers a gradient function
whose closure keeps the whole traced step alive; `_child.run_isolated` removes what the child
registered (benchmarks/child_memory.py measures the RSS over 50 children).
"""

import gc
import weakref

import numpy as np
import pytest

from nascell.search.core.evaluator import EvalResult
from nascell.search.evaluators import _child


def _tiny_child(seen):
    import keras

    strategy = _child.distribution_strategy()
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=False)
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    seen["during"] = _child.custom_gradient_names()
    seen["model"] = weakref.ref(model)
    return EvalResult(reward=1.0)


@pytest.mark.slow
def test_run_isolated_drops_the_childs_custom_gradients():
    before = _child.custom_gradient_names()
    seen = {}
    result = _child.run_isolated("tiny", 0, lambda: _tiny_child(seen))
    assert not result.failed, result.error
    assert seen["during"] - before, "training registered no custom gradient: the test is moot"
    assert _child.custom_gradient_names() == before
    gc.collect()
    assert seen["model"]() is None
