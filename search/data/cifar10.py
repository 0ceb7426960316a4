"""CIFAR-10 for the conv children: loading, the paper's split, whitening and augmentation.

Sources, tried in this order (no default path touches the network):

1. ``npz``: a ``.npz`` with ``x_train`` (N, 32, 32, 3) uint8, ``y_train``, ``x_test``,
   ``y_test`` (the flag ``--cifar_npz``).
2. ``data_dir`` holding ``cifar-10-batches-py/`` (the official pickle batches), or being it.
3. ``data_dir`` (or tensorflow-datasets' default folder when ``data_dir`` is None) holding a
   prepared tfds ``cifar10/`` folder: read with ``download=False``. The folder is checked
   first, because an offline ``tfds.load`` can retry the network for minutes.
4. Only with ``download=True``: tensorflow-datasets downloads and prepares it.

Preprocessing (Zoph & Le 2017, section 4.1): a validation set of 5,000 of the 50,000 training
images (the same 10 % of whatever training set is given) is held out at random (seeded);
images are whitened per channel with the training split's mean and standard deviation;
training batches are augmented by zero-padding each whitened image by 4 pixels (that is,
padding with the mean), taking a random 32x32 crop and flipping it horizontally at random.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Optional, Tuple

import numpy as np
from absl import logging

from nascell.search.data import images
from nascell.search.data.text import DataNotFoundError

VALIDATION_FRACTION = 5000 / 50000  # the paper's 5,000 of 50,000
_HINT = ("pass --cifar_npz=FILE.npz (keys x_train, y_train, x_test, y_test), or "
         "--data_dir=DIR holding cifar-10-batches-py/ or a prepared tensorflow-datasets "
         "cifar10/ folder")

Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _from_npz(path: str) -> Arrays:
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise DataNotFoundError(f"--cifar_npz={path!r} does not exist; {_HINT}")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data]
        if missing:
            raise ValueError(f"--cifar_npz={path!r} lacks keys {missing}; it needs x_train, "
                             f"y_train, x_test, y_test")
        return (data["x_train"], data["y_train"], data["x_test"], data["y_test"])


def _unpickle(path: str):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _from_batches(folder: str) -> Arrays:
    def read(name):
        d = _unpickle(os.path.join(folder, name))
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], dtype=np.int64)

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read("test_batch")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            x_test, y_test)


def _from_tfds(data_dir: Optional[str], download: bool) -> Arrays:
    import tensorflow_datasets as tfds

    out = []
    for split in ("train", "test"):
        ds = tfds.load("cifar10", split=split, data_dir=data_dir, download=download,
                       batch_size=-1, as_supervised=True, try_gcs=False)
        x, y = tfds.as_numpy(ds)
        out += [np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64)]
    return out[0], out[1], out[2], out[3]


def load_cifar10(data_dir: Optional[str] = None, npz: Optional[str] = None,
                 download: bool = False) -> Arrays:
    """``(x_train, y_train, x_test, y_test)``: uint8 images (N, 32, 32, 3), int64 labels.

    Raises:
        DataNotFoundError: within milliseconds when no local source exists (and
            ``download`` is False); the message names ``--data_dir`` and ``--cifar_npz``.
    """
    if npz:
        arrays = _from_npz(npz)
    else:
        tfds_dir = None
        if data_dir:
            data_dir = os.path.expanduser(data_dir)
            for folder in (os.path.join(data_dir, "cifar-10-batches-py"), data_dir):
                if os.path.isfile(os.path.join(folder, "data_batch_1")):
                    logging.info("CIFAR-10: reading pickle batches in %s", folder)
                    arrays = _from_batches(folder)
                    break
            else:
                tfds_dir = data_dir
                arrays = None
        else:
            arrays = None
            tfds_dir = os.environ.get("TFDS_DATA_DIR",
                                      os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))
        if arrays is None:
            prepared = os.path.isdir(os.path.join(tfds_dir, "cifar10"))
            if not prepared and not download:
                where = f"--data_dir={data_dir!r}" if data_dir else f"{tfds_dir!r}"
                raise DataNotFoundError(f"CIFAR-10 not found in {where}; {_HINT}")
            logging.info("CIFAR-10: tensorflow-datasets in %s (download=%s)", tfds_dir, download)
            arrays = _from_tfds(tfds_dir, download)
    x_train, y_train, x_test, y_test = arrays
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"CIFAR-10 {name} must have shape (N, height, width, 3). "
                             f"Received: {name} of shape {x.shape}")
    return (x_train, np.asarray(y_train).reshape(-1).astype(np.int64),
            x_test, np.asarray(y_test).reshape(-1).astype(np.int64))


#: CIFAR-10's splits are `images.ImageSplits` (the one whitened-splits type; the old name stays).
CifarSplits = images.ImageSplits


def whiten(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-channel whitening of uint8 images: ``(x / 255 - mean) / std`` as float32."""
    return images.whiten(x, mean, std, 255.0)


def split_cifar10(arrays: Arrays, subset: Optional[int] = None,
                  validation_fraction: float = VALIDATION_FRACTION,
                  seed: int = 0) -> images.ImageSplits:
    """The paper's split and whitening.

    Args:
        arrays: ``(x_train, y_train, x_test, y_test)`` from `load_cifar10`.
        subset: use only this many training images (a seeded random sample, before the
            split), and a test set scaled by the same factor; None uses all.
        validation_fraction: share of the training images held out for validation (the
            paper: 5,000 of 50,000).
        seed: seeds the subset sample and the validation split.
    """
    x_train, y_train, x_test, y_test = arrays
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"Argument `validation_fraction` must be in (0, 1). "
                         f"Received: validation_fraction={validation_fraction}")
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(x_train))
    if subset is not None:
        if subset < 2:
            raise ValueError(f"Argument `subset` must be >= 2 images (--child_subset). "
                             f"Received: subset={subset}")
        keep = min(int(subset), len(x_train))
        order = order[:keep]
        n_test = max(1, int(round(len(x_test) * keep / len(x_train))))
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    n_valid = max(1, int(round(len(order) * validation_fraction)))
    valid_idx, train_idx = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    xt = x_train[train_idx]
    pixels = xt.reshape(-1, xt.shape[-1]).astype(np.float64) / 255.0
    mean = pixels.mean(axis=0).astype(np.float32)
    std = np.maximum(pixels.std(axis=0), 1e-8).astype(np.float32)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return images.ImageSplits(x_train=whiten(xt, mean, std), y_train=y_train[train_idx],
                              x_valid=whiten(x_train[valid_idx], mean, std),
                              y_valid=y_train[valid_idx], x_test=whiten(x_test, mean, std),
                              y_test=y_test, mean=mean, std=std, num_classes=num_classes)


def augment(image, pad: int = 4, seed: Any = None):
    """One whitened image ``(h, w, c)``: zero-pad by ``pad``, random crop back, random flip."""
    return images.augment(image, pad=pad, flip=True, seed=seed)


def cifar_datasets(splits: images.ImageSplits, batch_size: int, augment_train: bool = True,
                   pad: int = 4, seed: int = 0):
    """``(train, valid, test)`` `tf.data.Dataset`s of ``(images, labels)`` batches.

    ``train`` is cached, shuffled every epoch, augmented (if asked: pad-and-crop and flips, as
    the paper's CIFAR-10 children), batched (the last partial batch dropped so every step has
    the same shape) and prefetched; it yields one epoch per pass. ``valid`` and ``test`` are
    batched in order, cached and prefetched. The pipeline every image data set uses
    (`nascell.search.data.images.image_pipelines`).
    """
    return images.image_pipelines(splits, batch_size, augment_train=augment_train, flip=True,
                                  pad=pad, seed=seed)
