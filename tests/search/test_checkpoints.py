"""Per-epoch checkpoints (nascell.search.training.checkpoints): what is kept, what is refused."""

import json

import keras
import numpy as np
import pytest

from nascell.search.training.checkpoints import CheckpointMismatchError, EpochCheckpoints


def _model_and_optimizer():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam(0.1)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def test_keeps_the_last_and_the_best_epoch_and_restores_them(tmp_path):
    model, optimizer = _model_and_optimizer()
    ckpt = EpochCheckpoints(str(tmp_path / "ck"), {"lr": 0.1})
    assert ckpt.progress() is None and ckpt.restore(model, optimizer) is None
    values = {}
    for epoch, is_best in ((1, True), (2, False), (3, False)):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        optimizer.iterations.assign(10 * epoch)
        values[epoch] = [w.copy() for w in model.get_weights()]
        ckpt.save(epoch, model, optimizer, is_best, {"history": list(range(epoch))})
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == ["epoch-0001.weights.h5", "epoch-0003.optimizer.npz",
                     "epoch-0003.weights.h5", "progress.json"]
    progress = json.loads((tmp_path / "ck" / "progress.json").read_text())
    assert progress["epoch"] == 3 and progress["best_weights"] == "epoch-0001.weights.h5"

    fresh, fresh_optimizer = _model_and_optimizer()
    assert ckpt.restore(fresh, fresh_optimizer)["history"] == [0, 1, 2]
    for a, b in zip(fresh.get_weights(), values[3]):
        np.testing.assert_array_equal(a, b)
    assert int(fresh_optimizer.iterations) == 30
    ckpt.load_best(fresh)
    for a, b in zip(fresh.get_weights(), values[1]):
        np.testing.assert_array_equal(a, b)
    path = ckpt.finish()
    assert path.endswith("best.weights.h5")
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.get_weights()[0], values[1][0])


def test_refuses_a_folder_of_other_settings(tmp_path):
    model, optimizer = _model_and_optimizer()
    EpochCheckpoints(str(tmp_path), {"lr": 0.1}).save(1, model, optimizer, True, {})
    with pytest.raises(CheckpointMismatchError, match="other settings"):
        EpochCheckpoints(str(tmp_path), {"lr": 0.2}).restore(model, optimizer)
    with pytest.raises(CheckpointMismatchError, match="optimizer variables"):
        sgd = keras.optimizers.SGD(0.1)
        sgd.build(model.trainable_variables)
        EpochCheckpoints(str(tmp_path), {"lr": 0.1}).restore(model, sgd)
