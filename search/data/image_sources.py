"""Image data from files: a folder of class sub-folders, a tensorflow-datasets name, CIFAR-10.

Each returns an `nascell.search.data.images.ImageData` (pixels in memory, a provenance record);
no default path touches the network.

* `image_folder(path)`: ``path/<class>/<images>`` (every image is training data; the test split
  is held out by the rule of `nascell.search.data.images`), or ``path/train/<class>/...`` with
  optional ``path/test/`` and ``path/valid/`` (or ``validation/``, ``val/``) holding the same
  class folders. Images (.png, .jpg, .jpeg, .bmp, .gif) are read with Keras' own
  ``keras.utils.image_dataset_from_directory``; classes are the sub-folder names, sorted. The
  folder is checked first: every class folder must hold images, and every image must have the
  same height and width unless ``image_size`` asks to resize them. The colour mode follows the
  images (all one channel: grayscale; all four: RGBA; else RGB) unless ``color_mode`` is given.
* `tfds_images(name)`: any tensorflow-datasets image classification data set (``(image,
  label)`` supervised keys, a ``ClassLabel``) prepared in ``data_dir``; its ``train`` split, and
  its ``test`` split if it has one. The prepared folder is looked for before tensorflow-datasets
  is called (an offline ``tfds.load`` retries the network for minutes); only ``download=True``
  lets tensorflow-datasets fetch and prepare it.
* `cifar10_images`: CIFAR-10 from `nascell.search.data.cifar10.load_cifar10`'s sources.

`nascell.search.data.sources.load_images` picks one of them from options (the binaries' flags).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from absl import logging

from nascell.search.data.images import (
    TEST_FRACTION,
    ImageData,
    dataset_to_arrays,
    image_arrays,
    split_kwargs,
)
from nascell.search.data.provenance import DataError
from nascell.search.data.text import DataNotFoundError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras reads
COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}
SPLIT_FOLDERS = {"train": "train", "test": "test", "valid": "valid", "validation": "valid",
                 "val": "valid"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
_PIL_CHANNELS = {"1": 1, "L": 1, "LA": 1, "I": 1, "I;16": 1, "F": 1, "RGBA": 4}


def _size_arg(image_size) -> Optional[Tuple[int, int]]:
    if image_size is None:
        return None
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    size = tuple(image_size)
    if len(size) != 2 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in size):
        raise ValueError("Argument `image_size` must be (height, width), two positive integers. "
                         f"Received: image_size={image_size!r}")
    return int(size[0]), int(size[1])


def _subdirs(path: str) -> List[str]:
    return sorted(e for e in os.listdir(path)
                  if not e.startswith(".") and os.path.isdir(os.path.join(path, e)))


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def scan_class_folders(path: str) -> Dict[str, List[str]]:
    """{class: image files} of a folder of class sub-folders (images found recursively, as
    Keras finds them).

    Raises:
        DataError: no class sub-folders, or a class folder without images.
    """
    classes = _subdirs(path)
    if not classes:
        loose = [f for f in os.listdir(path) if _is_image(f)]
        hint = f" (it holds {len(loose)} images directly)" if loose else ""
        raise DataError(f"{path} has no class sub-folders{hint}: put each class's images in a "
                        "sub-folder named for the class, e.g. DIR/cat/1.png and DIR/dog/2.png")
    out = {}
    for c in classes:
        files = []
        for folder, dirs, names in os.walk(os.path.join(path, c)):
            dirs.sort()
            files += [os.path.join(folder, n) for n in sorted(names) if _is_image(n)]
        if not files:
            raise DataError(f"class folder {os.path.join(path, c)} has no images "
                            f"({', '.join(IMAGE_EXTENSIONS)}): add images to it or remove it")
        out[c] = files
    return out


def image_header(path: str) -> Tuple[int, int, int]:
    """``(height, width, channels)`` of an image file: from its header with Pillow when it is
    installed, else by decoding it with TensorFlow."""
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        try:
            with Image.open(path) as im:
                return im.size[1], im.size[0], _PIL_CHANNELS.get(im.mode, 3)
        except OSError as e:
            raise DataError(f"{path} is not a readable image ({e}): fix or remove it") from None
    import tensorflow as tf

    try:
        shape = tf.io.decode_image(tf.io.read_file(path), expand_animations=False).shape
    except tf.errors.InvalidArgumentError as e:
        raise DataError(f"{path} is not a readable image ({e.message}): fix or remove it") \
            from None
    return int(shape[0]), int(shape[1]), 1 if int(shape[2]) == 2 else int(shape[2])


def _folder_splits(path: str) -> Dict[str, str]:
    """{split: folder of class sub-folders}: the split layout, or the whole folder as train."""
    split_dirs: Dict[str, str] = {}
    for d in _subdirs(path):
        s = SPLIT_FOLDERS.get(d.lower())
        if s is not None:
            if s in split_dirs:
                raise DataError(f"{path} has two {s} folders ({os.path.basename(split_dirs[s])}"
                                f", {d}): keep one")
            split_dirs[s] = os.path.join(path, d)
    if "train" in split_dirs and _subdirs(split_dirs["train"]):
        return split_dirs
    return {"train": path}


def _read_split(folder: str, classes: List[str], color_mode: str, size: Tuple[int, int],
                interpolation: str) -> Tuple[np.ndarray, np.ndarray]:
    import keras

    ds = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", label_mode="int", class_names=classes,
        color_mode=color_mode, batch_size=256, image_size=size, shuffle=False,
        interpolation=interpolation, verbose=False)
    xs, ys = [], []
    for x, y in ds.as_numpy_iterator():
        xs.append(np.clip(np.rint(x), 0, 255).astype(np.uint8))
        ys.append(y.astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def image_folder(path: str, image_size=None, color_mode: Optional[str] = None,
                 test_fraction: float = TEST_FRACTION, seed: int = 0,
                 interpolation: str = "bilinear") -> ImageData:
    """`ImageData` from a folder of class sub-folders (layouts in the module docstring).

    Args:
        path: the folder.
        image_size: ``(height, width)`` (or one int) to resize every image to; None keeps the
            images' own size, which must then be the same for all.
        color_mode: "grayscale", "rgb" or "rgba"; None follows the images.
        test_fraction: share held out as the test split when there is no ``test/`` folder.
        seed: seeds that held-out split.
        interpolation: resizing method (Keras' names), used only with ``image_size``.

    Raises:
        DataNotFoundError: ``path`` is not a folder.
        DataError: no class folders, an empty class folder, splits with different classes,
            images of different sizes without ``image_size``, an unreadable image.
    """
    size = _size_arg(image_size)
    if color_mode is not None and color_mode not in COLOR_MODES.values():
        raise ValueError(f"Argument `color_mode` must be one of {sorted(COLOR_MODES.values())} "
                         f"or None. Received: color_mode={color_mode!r}")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        raise DataNotFoundError(f"image folder {path!r} does not exist; pass a folder of class "
                                "sub-folders (--image_dir)")
    split_dirs = _folder_splits(path)
    scans = {s: scan_class_folders(d) for s, d in split_dirs.items()}
    classes = sorted(scans["train"])
    for s, scan in scans.items():
        if sorted(scan) != classes:
            raise DataError(f"{split_dirs[s]} has class folders {sorted(scan)} but "
                            f"{split_dirs['train']} has {classes}: every split needs the same "
                            "class folders")
    headers = {f: image_header(f) for scan in scans.values() for files in scan.values()
               for f in files}
    sizes = sorted({h[:2] for h in headers.values()})
    if size is None and len(sizes) > 1:
        examples = {}
        for f, h in headers.items():
            examples.setdefault(h[:2], f)
        shown = "; ".join(f"{os.path.relpath(examples[s], path)} is {s[0]}x{s[1]}"
                          for s in sizes[:3])
        raise DataError(f"the images in {path} have {len(sizes)} different sizes ({shown}): "
                        "pass image_size=(height, width) (--image_size=HxW) to resize them all "
                        "to one size")
    channels = sorted({h[2] for h in headers.values()})
    if color_mode is None:
        color_mode = COLOR_MODES.get(channels[0], "rgb") if len(channels) == 1 else "rgb"
    read_size = size or sizes[0]
    arrays = {s: _read_split(d, classes, color_mode, read_size, interpolation)
              for s, d in split_dirs.items()}
    logging.info("image folder %s: %d classes, %s images of %s (%s)", path, len(classes),
                 {s: len(a[0]) for s, a in arrays.items()}, read_size, color_mode)
    record = {"source": "folder", "path": path,
              "layout": "splits" if len(split_dirs) > 1 or split_dirs["train"] != path
              else "classes",
              "color_mode": color_mode, "image_size": list(size) if size else None,
              "interpolation": interpolation if size else None}
    return image_arrays(*arrays["train"], **split_kwargs(arrays), num_classes=len(classes),
                        class_names=classes, test_fraction=test_fraction, seed=seed,
                        record=record)


# --- tensorflow-datasets -------------------------------------------------------------------------


def default_tfds_dir() -> str:
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"),
                                                           "tensorflow_datasets")


def tfds_prepared(name: str, data_dir: str) -> Optional[str]:
    """The folder of ``name`` (``"mnist"``, ``"mnist:3.0.1"``, ``"name/config:1.*.*"``) that holds
    a prepared version (a ``dataset_info.json``) under ``data_dir``, or None."""
    base, _, version = name.partition(":")
    root = os.path.join(data_dir, *base.split("/"))
    if not os.path.isdir(root):
        return None
    exact = version if version and "*" not in version else None
    for folder, dirs, files in os.walk(root):
        depth = os.path.relpath(folder, root).count(os.sep)
        if depth >= 3:
            dirs[:] = []
        if "dataset_info.json" in files and (exact is None
                                             or os.path.basename(folder) == exact):
            return folder
    return None


def _resize_fn(size: Tuple[int, int], interpolation: str, dtype):
    import tensorflow as tf

    def resize(x, y):
        x = tf.image.resize(x, size, method=interpolation)
        if dtype == tf.uint8:
            x = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
        return x, y
    return resize


def tfds_images(name: str, data_dir: Optional[str] = None, download: bool = False,
                image_size=None, test_fraction: float = TEST_FRACTION, seed: int = 0,
                interpolation: str = "bilinear") -> ImageData:
    """`ImageData` from a tensorflow-datasets image classification data set.

    Args:
        name: the tfds name, optionally with config and version (``"mnist"``,
            ``"cifar10:3.0.2"``).
        data_dir: where it is prepared (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        download: let tensorflow-datasets download and prepare it when it is not there.
        image_size: ``(height, width)`` to resize to; required when the images vary in size.
        test_fraction, seed: the held-out test split when the data set has no ``test`` split.
        interpolation: resizing method, used only with ``image_size``.

    Raises:
        DataNotFoundError: within a second, when it is not prepared in ``data_dir`` and
            ``download`` is False; the message says what to pass.
        DataError: not an image classification data set, no ``train`` split, or images of
            varying size without ``image_size``.
    """
    size = _size_arg(image_size)
    data_dir = os.path.abspath(os.path.expanduser(data_dir or default_tfds_dir()))
    base = name.partition(":")[0]
    if not download and tfds_prepared(name, data_dir) is None:
        raise DataNotFoundError(
            f"tensorflow-datasets data set {name!r} is not prepared in {data_dir} (no "
            f"{base}/<version>/dataset_info.json there). Pass tfds_data_dir=DIR "
            f"(--tfds_data_dir) holding a prepared {base}/ folder (made with `tfds build "
            f"{base} --data_dir=DIR` on a machine with network), or download=True "
            "(--tfds_download) to let tensorflow-datasets fetch it")
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
        raise DataError(f"tensorflow-datasets {name!r} has no (image, label) supervised keys "
                        f"(it has {keys!r}): it is not an image classification data set")
    image_feature, label_feature = info.features[keys[0]], info.features[keys[1]]
    shape = tuple(getattr(image_feature, "shape", ()) or ())
    if len(shape) != 3 or not isinstance(label_feature, tfds.features.ClassLabel):
        raise DataError(f"tensorflow-datasets {name!r} maps {keys[0]!r} (shape {shape}) to "
                        f"{keys[1]!r} ({type(label_feature).__name__}); an image classification "
                        "data set has (height, width, channels) images and a ClassLabel")
    if size is None and (shape[0] is None or shape[1] is None):
        raise DataError(f"the images of tensorflow-datasets {name!r} vary in size: pass "
                        "image_size=(height, width) (--image_size=HxW) to resize them")
    splits = list(info.splits)
    if "train" not in splits:
        raise DataError(f"tensorflow-datasets {name!r} has no 'train' split (it has {splits})")
    arrays = {}
    for s in ("train", "test"):
        if s in splits:
            ds = builder.as_dataset(split=s, as_supervised=True, shuffle_files=False)
            if size is not None:
                ds = ds.map(_resize_fn(size, interpolation, image_feature.tf_dtype))
            arrays[s] = dataset_to_arrays(ds, f"{name} {s}")
    record = {"source": "tfds", "tfds_name": name, "tfds_full_name": info.full_name,
              "tfds_version": str(info.version), "data_dir": data_dir,
              "image_size": list(size) if size else None,
              "interpolation": interpolation if size else None}
    names = list(label_feature.names) if label_feature.names else None
    return image_arrays(*arrays["train"], **split_kwargs(arrays),
                        num_classes=int(label_feature.num_classes), class_names=names,
                        test_fraction=test_fraction, seed=seed, record=record)


def cifar10_images(data_dir: Optional[str] = None, npz: Optional[str] = None,
                   download: bool = False) -> ImageData:
    """CIFAR-10 from `nascell.search.data.cifar10.load_cifar10` as `ImageData`; its `split`
    is the split `nascell.search.data.cifar10.split_cifar10` makes (the same arrays)."""
    from nascell.search.data import cifar10

    arrays = cifar10.load_cifar10(data_dir=data_dir, npz=npz, download=download)
    return image_arrays(*arrays, num_classes=10, class_names=CIFAR10_CLASSES,
                        record={"source": "cifar10", "data_dir": data_dir, "path": npz})
