"""Test helpers for searches on your own data: generated data sets, a tiny conv space, and the
Python-API searches that tests/search/test_own_data_search.py runs in a subprocess (to kill it)
and then resumes in-process.

Imported by the tests, and by ``nascell-search --import=own_data_helpers`` subprocesses (with
this folder on PYTHONPATH), where it registers the space ``tiny_conv``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nascell.search.spaces import register_space
from nascell.search.spaces.conv import conv_space

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", "log", "ran", "far", "big", "red"]
CLASSES = ("circle", "cross", "square")


def tiny_conv_space(**options: Any):
    """Two conv layers of 6 to 36 filters, full depth from the start (seconds per child)."""
    return conv_space(version=1, num_layers=2, dense=True, depth_schedule=False,
                      name="tiny_conv", **options)


register_space("tiny_conv", tiny_conv_space)


def write_text_folder(folder: str, lines=(300, 40, 40), seed: int = 0) -> str:
    """train.txt / valid.txt / test.txt of random sentences over 12 words (valid and test use
    one word more, "zebra", so the vocabulary needs <unk> under a cap)."""
    rng = np.random.RandomState(seed)
    os.makedirs(folder, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), lines):
        words = WORDS + (["zebra"] if split != "train" else [])
        with open(os.path.join(folder, f"{split}.txt"), "w", encoding="utf-8") as f:
            for _ in range(n):
                f.write(" ".join(rng.choice(words, rng.randint(3, 8))) + "\n")
    return folder


def write_image_folder(folder: str, per_class: int = 12, size=(24, 24), seed: int = 0) -> str:
    """3 classes of grayscale PNGs; class k is brightest in band k (learnable)."""
    import tensorflow as tf

    rng = np.random.RandomState(seed)
    for k, name in enumerate(CLASSES):
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        for i in range(per_class):
            img = rng.randint(0, 60, size).astype(np.uint8)
            img[k * size[0] // 3:(k + 1) * size[0] // 3] += 150
            tf.io.write_file(os.path.join(folder, name, f"{i}.png"),
                             tf.io.encode_png(img[..., None]))
    return folder


def arrays(seed: int = 0):
    """``(x_train, y_train, x_test, y_test)``: 10x10 images with 2 channels, 4 classes."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 4, 64)
    x = rng.randint(0, 80, (64, 10, 10, 2)).astype(np.uint8)
    for k in range(4):
        x[y == k, :, :, k % 2] += np.uint8(40 * (k + 1))
    return x[:48], y[:48], x[48:], y[48:]


def prepare_tfds_metadata(data_dir: str, name: str = "mnist", train: int = 40,
                          test: int = 10) -> str:
    """A prepared-looking tensorflow-datasets folder: the builder's own metadata (features,
    version) with split sizes and no records; `tfds.testing.mock_data` supplies examples."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    folder = os.path.join(data_dir, name, str(builder.info.version))
    os.makedirs(folder, exist_ok=True)
    builder.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=s, shard_lengths=[n], num_bytes=0, filename_template=None)
        for s, n in (("train", train), ("test", test))]))
    builder.info.write_to_directory(folder)
    return str(builder.info.version)


# --- Python-API searches (run in a subprocess by the tests, then resumed in-process) -----------


def char_search(text_dir: str, run_dir: str, num_trials: int):
    from nascell.search import create_space, create_strategy, run_search, text_evaluator

    space = create_space("rnn_cell")
    strategy = create_strategy("random", space, seed=3)
    evaluator = text_evaluator({"path": text_dir, "level": "char"}, units=8, epochs=1,
                               steps_per_epoch=2, batch_size=4, seq_len=6, max_valid_steps=2)
    return run_search(space, strategy, evaluator, run_dir, num_trials=num_trials,
                      progress=False, tensorboard=False)


def arrays_search(run_dir: str, num_trials: int):
    from nascell.search import create_strategy, image_evaluator, run_search

    space = tiny_conv_space()
    strategy = create_strategy("random", space, seed=3)
    evaluator = image_evaluator(arrays(), epochs=1, steps_per_epoch=2, batch_size=8,
                                flip=False)
    return run_search(space, strategy, evaluator, run_dir, num_trials=num_trials,
                      progress=False, tensorboard=False)


def tfds_cli(meta_dir: str, argv) -> None:
    """nascell-search with tensorflow-datasets mocked (`tfds.testing.mock_data`)."""
    import sys

    import tensorflow_datasets as tfds

    from nascell.search.bin import search
    with tfds.testing.mock_data(num_examples=40, data_dir=meta_dir):
        sys.argv = ["nascell-search"] + list(argv)
        search.run()
