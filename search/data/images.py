"""Image classification data for the conv children: any size, any channel count, any classes.

An `ImageData` holds a data set's pixels in memory (uint8 when the source is 8-bit) as a
training and a test split (and a validation split if the source has one), with its number of
classes and a provenance record. `ImageData.split` turns it into the `ImageSplits` a child
trains on: the paper's held-out validation split, whitening, and `tf.data` pipelines.

Sources: `image_arrays` (NumPy arrays from Python), `image_tf_datasets` (`tf.data` from Python),
`as_image_data` (either, or an `ImageData`), and in `nascell.search.data.image_sources` a folder
of class sub-folders, a tensorflow-datasets name, and CIFAR-10.

The rules, stated once:

* Held-out splits (`carve`): a seeded ``np.random.RandomState(seed).permutation`` of the
  examples; the first ``max(1, round(n * fraction))`` of it (sorted) are held out, the rest keep
  their order. A source without a test split gives ``test_fraction`` (default 0.1) of its
  examples to test this way; `ImageData.split` then holds out ``validation_fraction`` of the
  training examples (default the paper's 5,000 of 50,000, i.e. 10 %) unless the source has its
  own validation split. CIFAR-10 goes through the same `ImageData.split`
  (`nascell.search.data.cifar10.split_cifar10`).
* Whitening: per channel, ``(x / pixel_scale - mean) / std`` with the training split's mean and
  standard deviation; ``pixel_scale`` is 255 for uint8 pixels, 65535 for uint16, 1 otherwise.
* Augmentation (training batches only): zero-pad the whitened image by ``pad`` pixels, take a
  random crop of the original size, and (``flip=True``) flip it left-right at random.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from nascell.search.data import provenance
from nascell.search.data.provenance import DataError

VALIDATION_FRACTION = 5000 / 50000  # the paper's 5,000 of CIFAR-10's 50,000
TEST_FRACTION = 0.1


def pixel_scale(dtype: Any) -> float:
    """The value of a white pixel: 255 (uint8), 65535 (uint16), else 1 (floats as given)."""
    dtype = np.dtype(dtype)
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(dtype, 1.0)


def carve(n: int, fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(kept, held_out)`` index arrays for ``n`` examples (module docstring, *Held-out*)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"a held-out fraction must be in (0, 1). Received: {fraction}")
    order = np.random.RandomState(seed).permutation(n)
    n_out = max(1, int(round(n * fraction)))
    return np.sort(order[n_out:]), np.sort(order[:n_out])


@dataclasses.dataclass
class ImageSplits:
    """Whitened train / valid / test splits (float32 NHWC) and what a child needs to know:
    every image data set's, CIFAR-10's included (`ImageData.split`)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray  # per channel, on pixels divided by pixel_scale
    std: np.ndarray
    num_classes: int
    pixel_scale: float = 255.0
    class_names: Optional[List[str]] = None
    record: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def datasets(self, batch_size: int, augment: bool = True, flip: bool = True, pad: int = 4,
                 seed: int = 0):
        """``(train, valid, test)`` `tf.data.Dataset`s of ``(images, labels)`` batches.

        ``train`` is shuffled every pass, augmented (if asked), batched with the last partial
        batch dropped, and yields one epoch per pass; ``valid`` and ``test`` keep their order.
        """
        return image_pipelines(self, batch_size, augment, flip, pad, seed)

    def enas_data(self) -> Dict[str, Any]:
        """``{"train": (x, y), "valid": (x, y), "num_classes": C}`` for ENAS' image search."""
        return {"train": (self.x_train, self.y_train), "valid": (self.x_valid, self.y_valid),
                "num_classes": self.num_classes}


def whiten(x: np.ndarray, mean: np.ndarray, std: np.ndarray,
           scale: Optional[float] = None) -> np.ndarray:
    """Per-channel whitening: ``(x / scale - mean) / std`` as float32 (module docstring);
    ``scale`` defaults to the white pixel of ``x``'s dtype (`pixel_scale`: 255 for uint8)."""
    if scale is None:
        scale = pixel_scale(x.dtype)
    return ((x.astype(np.float32) / np.float32(scale) - mean) / std).astype(np.float32)


@dataclasses.dataclass
class ImageData:
    """Raw pixels of a training and a test split (and maybe a validation split), in memory.

    Attributes:
        x_train, y_train, x_test, y_test: images ``(N, height, width, channels)`` and int64
            labels in ``[0, num_classes)``.
        num_classes: number of classes.
        record: the provenance record (JSON-serializable).
        class_names: a name per class, when the source has them.
        x_valid, y_valid: the source's own validation split, or None (then `split` holds out
            part of the training split).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    record: Dict[str, Any]
    class_names: Optional[List[str]] = None
    x_valid: Optional[np.ndarray] = None
    y_valid: Optional[np.ndarray] = None

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def split(self, validation_fraction: float = VALIDATION_FRACTION, seed: int = 0,
              subset: Optional[int] = None) -> ImageSplits:
        """The whitened `ImageSplits` a child trains on (module docstring for the rules).

        Args:
            validation_fraction: share of the training images held out for validation (when
                the source has no validation split).
            seed: seeds the subset sample and the held-out split.
            subset: use only this many training images (a seeded sample, before the split)
                and a test split scaled by the same factor; None uses all.
        """
        x_train, y_train, x_test, y_test = self.x_train, self.y_train, self.x_test, self.y_test
        rng = np.random.RandomState(seed)
        order = rng.permutation(len(x_train))
        if subset is not None:
            if int(subset) < 2:
                raise ValueError(f"Argument `subset` must be >= 2 images (--child_subset). "
                                 f"Received: subset={subset}")
            keep = min(int(subset), len(x_train))
            order = order[:keep]
            n_test = max(1, int(round(len(x_test) * keep / len(x_train))))
            x_test, y_test = x_test[:n_test], y_test[:n_test]
        if self.x_valid is not None:
            train_idx, x_valid, y_valid = np.sort(order), self.x_valid, self.y_valid
        else:
            if not 0.0 < validation_fraction < 1.0:
                raise ValueError("Argument `validation_fraction` must be in (0, 1). "
                                 f"Received: validation_fraction={validation_fraction}")
            n_valid = max(1, int(round(len(order) * validation_fraction)))
            valid_idx, train_idx = np.sort(order[:n_valid]), np.sort(order[n_valid:])
            x_valid, y_valid = x_train[valid_idx], y_train[valid_idx]
        if len(train_idx) == 0:
            raise DataError(f"no training images are left after holding out validation "
                            f"({len(order)} images): give more images or a smaller fraction")
        xt = x_train[train_idx]
        scale = pixel_scale(xt.dtype)
        pixels = xt.reshape(-1, xt.shape[-1]).astype(np.float64) / scale
        mean = pixels.mean(axis=0).astype(np.float32)
        std = np.maximum(pixels.std(axis=0), 1e-8).astype(np.float32)
        record = dict(self.record, split={
            "validation_fraction": None if self.x_valid is not None else validation_fraction,
            "seed": int(seed), "subset": subset, "pixel_scale": scale,
            "sizes": {"train": len(xt), "valid": len(x_valid), "test": len(x_test)},
            "mean": mean.tolist(), "std": std.tolist()})
        return ImageSplits(
            x_train=whiten(xt, mean, std, scale), y_train=y_train[train_idx],
            x_valid=whiten(x_valid, mean, std, scale), y_valid=y_valid,
            x_test=whiten(x_test, mean, std, scale), y_test=y_test, mean=mean, std=std,
            num_classes=self.num_classes, pixel_scale=scale, class_names=self.class_names,
            record=provenance.to_json(record))


def augment(image, pad: int = 4, flip: bool = True, seed: Any = None):
    """One whitened image ``(h, w, c)``: zero-pad by ``pad``, random crop back, random flip."""
    import tensorflow as tf

    shape = tf.shape(image)
    if pad:
        image = tf.image.random_crop(tf.pad(image, [[pad, pad], [pad, pad], [0, 0]]), shape,
                                     seed=seed)
    return tf.image.random_flip_left_right(image, seed=seed) if flip else image


def image_pipelines(splits, batch_size: int, augment_train: bool = True, flip: bool = True,
                    pad: int = 4, seed: int = 0):
    """``(train, valid, test)`` `tf.data.Dataset`s for any `ImageSplits`."""
    import tensorflow as tf

    if int(batch_size) < 1:
        raise ValueError(f"Argument `batch_size` must be >= 1. Received: batch_size={batch_size}")
    if len(splits.x_train) < batch_size:
        raise DataError(f"{len(splits.x_train)} training images are fewer than one batch of "
                        f"{batch_size}: use a smaller batch (--child_batch_size) or more images")
    train = tf.data.Dataset.from_tensor_slices((splits.x_train, splits.y_train)).cache()
    train = train.shuffle(len(splits.x_train), seed=seed, reshuffle_each_iteration=True)
    if augment_train and (pad or flip):
        train = train.map(lambda x, y: (augment(x, pad, flip), y),
                          num_parallel_calls=tf.data.AUTOTUNE)
    train = train.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def plain(x, y):
        return (tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache()
                .prefetch(tf.data.AUTOTUNE))

    return train, plain(splits.x_valid, splits.y_valid), plain(splits.x_test, splits.y_test)


# --- arrays and tf.data from Python --------------------------------------------------------------


def _images(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:  # (N, H, W): one channel
        x = x[..., None]
    if x.ndim != 4 or min(x.shape[1:]) < 1:
        raise DataError(f"`{name}` must be images of shape (N, height, width) or (N, height, "
                        f"width, channels). Received shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"`{name}` must hold numbers (uint8 pixels or floats). Received dtype "
                        f"{x.dtype}")
    if len(x) == 0:
        raise DataError(f"`{name}` is empty: every split needs at least one image")
    return x


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and len(y) == n:
        raise DataError(f"`{name}` has shape {y.shape}, like one-hot labels: pass integer class "
                        f"ids 0..K-1 instead, e.g. np.argmax({name}, axis=1)")
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"`{name}` must be {n} integer labels, one per image. Received shape "
                        f"{y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.mod(y, 1) == 0):
            raise DataError(f"`{name}` must be integer class ids 0..K-1 (not one-hot or text). "
                            f"Received dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise DataError(f"`{name}` has negative labels ({int(y.min())}); use class ids 0..K-1")
    return y


def image_arrays(x_train: Any, y_train: Any, x_test: Any = None, y_test: Any = None, *,
                 x_valid: Any = None, y_valid: Any = None, num_classes: Optional[int] = None,
                 class_names: Optional[Sequence[str]] = None,
                 test_fraction: float = TEST_FRACTION, seed: int = 0,
                 record: Optional[Dict[str, Any]] = None) -> ImageData:
    """`ImageData` from NumPy arrays (images ``(N, H, W[, C])``, integer labels).

    Without ``x_test``, ``test_fraction`` of the training images become the test split
    (seeded). ``num_classes`` defaults to ``len(class_names)`` or the largest label + 1.

    Raises:
        DataError: an empty split, mismatched lengths or shapes, labels out of range.
    """
    xs = {"train": _images(x_train, "x_train")}
    ys = {"train": _labels(y_train, len(xs["train"]), "y_train")}
    for s, x, y in (("test", x_test, y_test), ("valid", x_valid, y_valid)):
        if (x is None) != (y is None):
            raise ValueError(f"Arguments `x_{s}` and `y_{s}` go together: pass both or neither")
        if x is not None:
            xs[s] = _images(x, f"x_{s}")
            ys[s] = _labels(y, len(xs[s]), f"y_{s}")
            if xs[s].shape[1:] != xs["train"].shape[1:]:
                raise DataError(f"x_{s} images are {xs[s].shape[1:]} but x_train images are "
                                f"{xs['train'].shape[1:]}: all splits need one image shape")
    record = dict(record or {"source": "arrays"})
    if "test" not in xs:
        keep, held = carve(len(xs["train"]), test_fraction, seed)
        if len(keep) == 0:
            raise DataError("too few images to hold out a test split: give x_test and y_test")
        xs["test"], ys["test"] = xs["train"][held], ys["train"][held]
        xs["train"], ys["train"] = xs["train"][keep], ys["train"][keep]
        record["test_split"] = {"fraction": test_fraction, "seed": int(seed)}
    largest = int(max(y.max() for y in ys.values()))
    if num_classes is None:
        num_classes = len(class_names) if class_names is not None else largest + 1
    if largest >= num_classes:
        raise DataError(f"labels go up to {largest} but there are {num_classes} classes; pass "
                        f"num_classes={largest + 1} or fix the labels")
    if class_names is not None and len(class_names) != num_classes:
        raise DataError(f"{len(class_names)} class names for {num_classes} classes")
    missing = sorted(set(range(num_classes)) - set(np.unique(ys["train"]).tolist()))
    if missing:
        logging.warning("classes %s have no training images", missing[:10])
    parts = [a for s in ("train", "valid", "test") if s in xs for a in (xs[s], ys[s])]
    record.update({
        "kind": "images", "image_shape": list(xs["train"].shape[1:]),
        "num_classes": int(num_classes), "dtype": str(xs["train"].dtype),
        "class_names": list(class_names) if class_names is not None else None,
        "examples": {s: int(len(x)) for s, x in xs.items()},
        "fingerprint": provenance.fingerprint(*parts)})
    return ImageData(xs["train"], ys["train"], xs["test"], ys["test"], int(num_classes),
                     provenance.to_json(record),
                     list(class_names) if class_names is not None else None,
                     xs.get("valid"), ys.get("valid"))


def dataset_to_arrays(ds, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of a finite `tf.data.Dataset` of ``(image, label)`` pairs or
    ``{"image", "label"}`` dicts, batched or not."""
    import tensorflow as tf

    if ds.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise DataError(f"`{name}` is an infinite dataset (a .repeat()?): pass one pass over "
                        "the data")
    spec = ds.element_spec
    if isinstance(spec, dict):
        if not {"image", "label"} <= set(spec):
            raise DataError(f"`{name}` yields dicts with keys {sorted(spec)}; it needs 'image' "
                            "and 'label' (or (image, label) pairs)")
        ds = ds.map(lambda d: (d["image"], d["label"]))
    elif not (isinstance(spec, tuple) and len(spec) == 2):
        raise DataError(f"`{name}` must yield (image, label) pairs. Received elements {spec}")
    if ds.element_spec[0].shape.rank == 4:  # batched
        ds = ds.unbatch()
    xs, ys = [], []
    for x, y in ds.batch(1024).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DataError(f"`{name}` is empty: every split needs at least one image")
    return np.concatenate(xs), np.concatenate(ys)


def split_kwargs(arrays: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> Dict[str, np.ndarray]:
    """``{"x_test": .., "y_test": .., "x_valid": .., ...}`` for `image_arrays` from
    ``{split: (images, labels)}`` (the "train" entry is left out)."""
    return {f"{a}_{s}": v for s, (x, y) in arrays.items() if s != "train"
            for a, v in (("x", x), ("y", y))}


def image_tf_datasets(train, test=None, valid=None, *, num_classes: Optional[int] = None,
                      class_names: Optional[Sequence[str]] = None,
                      test_fraction: float = TEST_FRACTION, seed: int = 0) -> ImageData:
    """`ImageData` from `tf.data.Dataset`s of ``(image, label)`` (read once into memory)."""
    arrays = {"train": dataset_to_arrays(train, "train")}
    for s, ds in (("test", test), ("valid", valid)):
        if ds is not None:
            arrays[s] = dataset_to_arrays(ds, s)
    return image_arrays(*arrays["train"], **split_kwargs(arrays), num_classes=num_classes,
                        class_names=class_names, test_fraction=test_fraction, seed=seed,
                        record={"source": "tf.data"})


def as_image_data(data: Any, **kwargs) -> ImageData:
    """An `ImageData` from what a notebook has at hand.

    ``data`` may be an `ImageData`; a tuple ``(x_train, y_train, x_test, y_test)`` or
    ``(x_train, y_train)`` of arrays; a dict of those names; a `tf.data.Dataset` (training data)
    or a tuple of two (train, test). ``kwargs`` go to `image_arrays` / `image_tf_datasets`.
    """
    if isinstance(data, ImageData):
        return data
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        return image_tf_datasets(data, **kwargs)
    if isinstance(data, dict):
        return image_arrays(**data, **kwargs)
    if isinstance(data, (tuple, list)):
        if data and all(isinstance(d, tf.data.Dataset) for d in data) and len(data) <= 3:
            return image_tf_datasets(*data, **kwargs)
        if len(data) in (2, 4):
            return image_arrays(*data, **kwargs)
    raise TypeError("Argument `data` must be an ImageData, (x_train, y_train[, x_test, y_test]) "
                    "arrays, a dict of them, or tf.data.Dataset(s) of (image, label). "
                    f"Received: data of type {type(data).__name__}")
