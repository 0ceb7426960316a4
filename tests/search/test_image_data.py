"""Image data from a folder of class sub-folders, a tensorflow-datasets name (through tfds'
own `tfds.testing.mock_data`), NumPy arrays and `tf.data`: shapes, splits, whitening, bad data."""

import json
import os
import sys

import numpy as np
import own_data_helpers as helpers
import pytest

from nascell.search.data import cifar10, image_sources, images, provenance
from nascell.search.data.provenance import DataError
from nascell.search.data.text import DataNotFoundError

CLASSES = ("circle", "cross", "square")


def write_png(path, pixels):
    import tensorflow as tf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.asarray(pixels, np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    tf.io.write_file(str(path), tf.io.encode_png(pixels))


def make_folder(root, per_class=6, size=(24, 24), seed=0):
    """A 3-class grayscale folder; class k's images are brightest in band k (a rule a tiny net
    can learn). Returns {relative path: pixels}."""
    rng = np.random.RandomState(seed)
    written = {}
    for k, name in enumerate(CLASSES):
        for i in range(per_class):
            img = rng.randint(0, 60, size).astype(np.uint8)
            band = slice(k * size[0] // 3, (k + 1) * size[0] // 3)
            img[band] += 150
            rel = os.path.join(name, f"{i}.png")
            write_png(os.path.join(root, rel), img)
            written[rel] = img
    return written


def test_folder_3_classes_24x24_grayscale(tmp_path):
    written = make_folder(tmp_path / "imgs")
    data = image_sources.image_folder(str(tmp_path / "imgs"), seed=3)
    assert data.image_shape == (24, 24, 1) and data.x_train.dtype == np.uint8
    assert data.num_classes == 3 and data.class_names == list(CLASSES)
    assert len(data.x_train) + len(data.x_test) == 18 and len(data.x_test) == 2  # 10 % of 18
    # Pixels are exactly the files' (no resize), labels follow the folder names.
    all_x = np.concatenate([data.x_train, data.x_test])
    all_y = np.concatenate([data.y_train, data.y_test])
    first = written[os.path.join("cross", "0.png")]
    hits = [i for i in range(len(all_x)) if np.array_equal(all_x[i, :, :, 0], first)]
    assert len(hits) == 1 and all_y[hits[0]] == 1
    r = data.record
    assert r["kind"] == "images" and r["source"] == "folder" and r["layout"] == "classes"
    assert r["image_shape"] == [24, 24, 1] and r["num_classes"] == 3
    assert r["color_mode"] == "grayscale" and r["test_split"] == {"fraction": 0.1, "seed": 3}
    json.dumps(r)
    # Same files elsewhere: same identity; the seed of the test split changes the data.
    make_folder(tmp_path / "copy")
    again = image_sources.image_folder(str(tmp_path / "copy"), seed=3)
    provenance.check_same_data(r, again.record)
    with pytest.raises(provenance.DataMismatchError):
        provenance.check_same_data(r, image_sources.image_folder(str(tmp_path / "copy")).record)


def test_split_whitens_and_batches_any_shape(tmp_path):
    make_folder(tmp_path / "imgs", per_class=10)
    data = image_sources.image_folder(str(tmp_path / "imgs"))
    splits = data.split(validation_fraction=0.2, seed=1)
    assert splits.image_shape == (24, 24, 1) and splits.num_classes == 3
    assert len(splits.x_valid) == round(27 * 0.2) and len(splits.x_train) == 27 - 5
    assert abs(float(splits.x_train.mean())) < 1e-4 and splits.x_train.dtype == np.float32
    assert splits.record["split"]["pixel_scale"] == 255.0
    assert splits.record["split"]["sizes"] == {"train": 22, "valid": 5, "test": 3}
    train, valid, test = splits.datasets(batch_size=4, flip=False)
    x, y = next(iter(train))
    assert tuple(x.shape) == (4, 24, 24, 1) and tuple(y.shape) == (4,)
    assert sum(int(b[1].shape[0]) for b in valid) == 5
    with pytest.raises(DataError, match="fewer than one batch"):
        splits.datasets(batch_size=64)


def test_split_layout_and_resize(tmp_path):
    root = tmp_path / "split"
    for split, n in (("train", 4), ("test", 2)):
        for k, name in enumerate(CLASSES):
            for i in range(n):
                write_png(root / split / name / f"{i}.png",
                          np.full((20 + i, 16, 3), 40 * k, np.uint8))
    with pytest.raises(DataError, match=r"different sizes.*image_size=\(height, width\)"):
        image_sources.image_folder(str(root))
    data = image_sources.image_folder(str(root), image_size=(12, 10))
    assert data.image_shape == (12, 10, 3) and len(data.x_test) == 6
    assert data.record["layout"] == "splits" and data.record["image_size"] == [12, 10]
    assert "test_split" not in data.record  # the folder's own test split
    assert data.record["color_mode"] == "rgb"
    os.makedirs(root / "test" / "extra")
    write_png(root / "test" / "extra" / "0.png", np.zeros((20, 16, 3)))
    with pytest.raises(DataError, match="same class folders"):
        image_sources.image_folder(str(root), image_size=(12, 10))


def test_bad_folders_name_the_problem(tmp_path):
    make_folder(tmp_path / "imgs", per_class=2)
    os.makedirs(tmp_path / "imgs" / "empty_class")
    with pytest.raises(DataError, match="empty_class has no images.*add images"):
        image_sources.image_folder(str(tmp_path / "imgs"))
    write_png(tmp_path / "flat" / "a.png", np.zeros((4, 4)))
    with pytest.raises(DataError, match="no class sub-folders.*holds 1 images"):
        image_sources.image_folder(str(tmp_path / "flat"))
    with pytest.raises(DataNotFoundError, match="--image_dir"):
        image_sources.image_folder(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="image_size"):
        image_sources.image_folder(str(tmp_path / "imgs"), image_size=(0, 3))


def test_header_scan_without_pillow(tmp_path, monkeypatch):
    make_folder(tmp_path / "imgs", per_class=2, size=(9, 7))
    with_pil = image_sources.image_folder(str(tmp_path / "imgs"))
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` raises ImportError
    assert image_sources.image_header(str(tmp_path / "imgs" / "circle" / "0.png")) == (9, 7, 1)
    without = image_sources.image_folder(str(tmp_path / "imgs"))
    assert without.record["fingerprint"] == with_pil.record["fingerprint"]


# --- tensorflow-datasets --------------------------------------------------------------------------


def test_tfds_by_name_through_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    version = helpers.prepare_tfds_metadata(str(tmp_path / "tfds"))
    with tfds.testing.mock_data(num_examples=30, data_dir=str(tmp_path / "tfds")):
        data = image_sources.tfds_images("mnist", data_dir=str(tmp_path / "tfds"))
        resized = image_sources.tfds_images("mnist", data_dir=str(tmp_path / "tfds"),
                                            image_size=(14, 14))
    assert data.image_shape == (28, 28, 1) and data.num_classes == 10
    assert len(data.x_train) == 30 and len(data.x_test) == 30 and data.x_train.dtype == np.uint8
    assert data.class_names == [str(i) for i in range(10)]
    r = data.record
    assert r["source"] == "tfds" and r["tfds_name"] == "mnist" and r["tfds_version"] == version
    assert resized.image_shape == (14, 14, 1) and resized.x_train.dtype == np.uint8
    splits = data.split(seed=0)
    assert splits.image_shape == (28, 28, 1) and len(splits.x_valid) == 3


def test_tfds_not_prepared_fails_without_calling_tfds(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def no_network(*args, **kwargs):
        raise AssertionError("tensorflow-datasets must not be called when nothing is prepared")

    monkeypatch.setattr(tfds, "builder", no_network)
    with pytest.raises(DataNotFoundError, match=r"'emnist' is not prepared in .*--tfds_data_dir"
                                                r".*tfds build emnist.*--tfds_download"):
        image_sources.tfds_images("emnist", data_dir=str(tmp_path))
    os.makedirs(tmp_path / "mnist" / "3.0.1")  # a folder without dataset_info.json
    with pytest.raises(DataNotFoundError, match="not prepared"):
        image_sources.tfds_images("mnist:3.0.1", data_dir=str(tmp_path))


# --- arrays and tf.data from Python ---------------------------------------------------------------


def test_arrays_from_python():
    rng = np.random.RandomState(0)
    x, y = rng.randint(0, 255, (50, 24, 24)).astype(np.uint8), rng.randint(0, 3, 50)
    data = images.image_arrays(x, y, x[:8], y[:8])
    assert data.image_shape == (24, 24, 1) and data.num_classes == 3
    assert data.record["source"] == "arrays" and data.record["examples"] == {"train": 50,
                                                                              "test": 8}
    no_test = images.image_arrays(x, y, seed=1)
    assert len(no_test.x_test) == 5 and len(no_test.x_train) == 45
    floats = images.image_arrays(x.astype(np.float32) / 255.0, y)
    a = data.split(seed=2)
    b = images.image_arrays(x / 255.0, y, x[:8] / 255.0, y[:8]).split(seed=2)
    np.testing.assert_allclose(a.x_train, b.x_train, atol=1e-4)  # scale-free whitening
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-6)
    assert floats.split().pixel_scale == 1.0
    with pytest.raises(DataError, match="labels go up to 2 but there are 2 classes"):
        images.image_arrays(x, y, num_classes=2)
    with pytest.raises(DataError, match="one per image"):
        images.image_arrays(x, y[:10])
    with pytest.raises(DataError, match="x_train` is empty"):
        images.image_arrays(x[:0], y[:0])
    with pytest.raises(DataError, match="one image shape"):
        images.image_arrays(x, y, x[:4, :10], y[:4])
    with pytest.raises(DataError, match="one-hot.*argmax"):
        images.image_arrays(x, np.eye(3)[y])
    with pytest.raises(DataError, match="integer class ids"):
        images.image_arrays(x, y + 0.5)


def test_tf_data_from_python():
    import tensorflow as tf

    rng = np.random.RandomState(0)
    x, y = rng.randint(0, 255, (20, 8, 8, 2)).astype(np.uint8), rng.randint(0, 4, 20)
    batched = tf.data.Dataset.from_tensor_slices((x, y)).batch(6)
    dicts = tf.data.Dataset.from_tensor_slices({"image": x[:5], "label": y[:5]})
    data = images.as_image_data((batched, dicts))
    np.testing.assert_array_equal(data.x_train, x)
    assert data.image_shape == (8, 8, 2) and len(data.x_test) == 5
    assert data.record["source"] == "tf.data"
    assert images.as_image_data((x, y, x, y)).record["source"] == "arrays"
    with pytest.raises(DataError, match="infinite"):
        images.as_image_data(batched.repeat())
    with pytest.raises(TypeError, match="`data` must be"):
        images.as_image_data("some/folder")


def test_cifar_rule_is_split_cifar10():
    rng = np.random.RandomState(0)
    arrays = (rng.randint(0, 255, (60, 32, 32, 3)).astype(np.uint8), rng.randint(0, 10, 60),
              rng.randint(0, 255, (20, 32, 32, 3)).astype(np.uint8), rng.randint(0, 10, 20))
    old = cifar10.split_cifar10(arrays, subset=40, seed=5)
    new = images.image_arrays(*arrays, num_classes=10).split(subset=40, seed=5)
    for field in ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test", "mean",
                  "std"):
        np.testing.assert_array_equal(getattr(old, field), getattr(new, field))


def test_cifar10_images_from_shared_npz(shared_data):
    data = image_sources.cifar10_images(npz=str(shared_data("cifar10", "cifar10_subset.npz")))
    assert data.image_shape == (32, 32, 3) and data.class_names[0] == "airplane"
    assert data.record["source"] == "cifar10" and len(data.x_train) == 5085
    # CIFAR-10 has one split path: split_cifar10 is ImageData.split, to the last bit.
    arrays = cifar10.load_cifar10(npz=str(shared_data("cifar10", "cifar10_subset.npz")))
    old = cifar10.split_cifar10(arrays, subset=1000, seed=3)
    new = data.split(subset=1000, seed=3)
    for field in ("x_train", "y_train", "x_valid", "y_valid", "x_test", "y_test", "mean",
                  "std"):
        np.testing.assert_array_equal(getattr(old, field), getattr(new, field))
    assert old.num_classes == new.num_classes == 10 and len(old.x_valid) == 100


def test_cifar_pixels_of_another_dtype_split_as_uint8():
    rng = np.random.RandomState(1)
    arrays = (rng.randint(0, 256, (30, 32, 32, 3)).astype(np.uint8), rng.randint(0, 10, 30),
              rng.randint(0, 256, (10, 32, 32, 3)).astype(np.uint8), rng.randint(0, 10, 10))
    as_uint8 = cifar10.split_cifar10(arrays, seed=2)
    wide = cifar10.split_cifar10((arrays[0].astype(np.int64), arrays[1],
                                  arrays[2].astype(np.float32), arrays[3]), seed=2)
    for field in ("x_train", "x_valid", "x_test", "mean", "std"):
        np.testing.assert_array_equal(getattr(as_uint8, field), getattr(wide, field))
    with pytest.raises(ValueError, match="Argument `x_train` of CIFAR-10 must hold pixels "
                                         "0..255"):
        cifar10.split_cifar10((arrays[0] / 255.0,) + arrays[1:])


def test_load_images_is_the_one_image_loader(tmp_path):
    import warnings

    from nascell.search import data as data_lib
    from nascell.search.data import sources

    make_folder(tmp_path / "imgs", per_class=4)
    assert data_lib.load_images is sources.load_images
    by_option = data_lib.load_images(image_dir=str(tmp_path / "imgs"), seed=2)
    assert data_lib.load_images({"image_dir": str(tmp_path / "imgs"), "seed": 2}) is by_option
    assert by_option.record["source"] == "folder" and by_option.num_classes == 3
    by_path = data_lib.load_images(str(tmp_path / "imgs"))
    assert by_path.record["fingerprint"] != by_option.record["fingerprint"]  # seed 0 vs 2
    assert data_lib.load_images(by_option) is by_option
    arrays = data_lib.load_images((by_option.x_train, by_option.y_train))
    assert arrays.record["source"] == "arrays"
    with pytest.raises(ValueError, match="must name one source: image_dir"):
        data_lib.load_images(tfds_data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="not both"):
        data_lib.load_images(by_option, image_dir=str(tmp_path / "imgs"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert data_lib.CifarSplits is images.ImageSplits
        assert cifar10.CifarSplits is images.ImageSplits
    assert [str(w.message).count("removed in nascell 0.3.0") for w in caught] == [1, 1]
    assert all(w.category is DeprecationWarning for w in caught)
