r"""KerasTuner with a nascell strategy: the same ``build_model(hp)``, a learning oracle.

``build_model`` below is an ordinary KerasTuner hypermodel (an MLP whose depth, widths,
activation, dropout, batch norm and learning rate are hyperparameters). The only nascell line
is the oracle: ``nascell.search.keras_tuner.Oracle("reinforce", ...)`` where KerasTuner's
``kt.RandomSearch`` would have used its random oracle. Any nascell strategy works
(``--strategy=evolution``, ``random``, ``enas``, ...).

The data are generated here (three interleaved spirals, 2-D points, noisy), so the script runs
offline in a minute or two on a CPU. Run it twice: the second run reloads the project folder
and continues the search (``--max_trials`` is the total); ``--overwrite`` starts afresh.

    python examples/keras_tuner_search.py
    python examples/keras_tuner_search.py --strategy=evolution --max_trials=30
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("strategy", "reinforce", "A nascell strategy (nascell.search."
                    "available_strategies()).")
flags.DEFINE_integer("max_trials", 15, "Trials in the whole search (a reloaded project counts "
                     "the trials it already ran).")
flags.DEFINE_integer("epochs", 6, "Training epochs per trial.")
flags.DEFINE_integer("samples", 1500, "Generated points (a quarter are held out).")
flags.DEFINE_integer("seed", 0, "Seed of the data and of the oracle.")
flags.DEFINE_string("directory", "runs/keras_tuner", "KerasTuner's project folder parent.")
flags.DEFINE_bool("overwrite", False, "Start a new search instead of continuing one.")


def spirals(n: int, seed: int, classes: int = 3, noise: float = 0.25):
    """``n`` noisy points on ``classes`` interleaved spiral arms, and their arm labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(classes, size=n)
    r = rng.uniform(0.05, 1.0, size=n)
    theta = 4.0 * r + 2 * np.pi * y / classes + rng.normal(scale=noise, size=n)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1) * 3.0
    return x.astype("float32"), y.astype("int32")


def build_model(hp):
    """An ordinary KerasTuner hypermodel: nothing here knows about nascell."""
    import keras

    model = keras.Sequential([keras.Input((2,))])
    activation = hp.Choice("activation", ["relu", "tanh", "gelu"])
    for i in range(hp.Int("layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 16, 128, step=16),
                                     activation=activation))
        if hp.Boolean("batch_norm"):
            model.add(keras.layers.BatchNormalization())
        model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.3, step=0.1)))
    model.add(keras.layers.Dense(3, activation="softmax"))
    lr = hp.Float("learning_rate", 1e-3, 3e-2, sampling="log")  # 10 log-spaced values
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv):
    del argv
    import keras_tuner as kt

    import nascell.search.keras_tuner as nkt

    x, y = spirals(FLAGS.samples, FLAGS.seed)
    split = FLAGS.samples * 3 // 4
    tuner = kt.Tuner(
        oracle=nkt.Oracle(FLAGS.strategy, objective="val_accuracy",
                          max_trials=FLAGS.max_trials, seed=FLAGS.seed + 1),
        hypermodel=build_model, directory=FLAGS.directory,
        project_name=f"spirals_{FLAGS.strategy}", overwrite=FLAGS.overwrite)
    start, done = time.time(), len(tuner.oracle.trials)
    tuner.search(x[:split], y[:split], epochs=FLAGS.epochs, batch_size=64,
                 validation_data=(x[split:], y[split:]), verbose=0)
    trials = [tuner.oracle.trials[t] for t in tuner.oracle.end_order]
    scores = [t.score for t in trials if t.score is not None]
    best = tuner.oracle.get_best_trials(1)[0]
    print(f"{FLAGS.strategy}: {len(trials)} trials ({len(trials) - done} this run, "
          f"{time.time() - start:.0f} s)")
    print("val_accuracy by trial: " + " ".join(f"{s:.3f}" for s in scores))
    print(f"best val_accuracy {best.score:.4f} with {best.hyperparameters.values}")


if __name__ == "__main__":
    app.run(main)
