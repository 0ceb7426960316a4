"""Text corpora from your own files or from Python, for the recurrent-cell children.

A `TextCorpus` is the token ids of three splits ("train", "valid", "test"), the `Vocabulary`
that made them, and a provenance record (`nascell.search.data.provenance`).

Where the text comes from:

* `text_corpus(path)` with ``path`` a folder holding, for each split, a file (or a folder of
  files) whose name has the split as one of its dot-separated parts: ``train``; ``valid``,
  ``validation``, ``val`` or ``dev``; ``test`` (e.g. ``train.txt``, ``ptb.valid.txt``,
  ``wiki.test.tokens``, ``train/``). ``pattern="ptb.{split}.txt"`` names them exactly instead.
  A split that has no file is cut from the end of the training text (see *Fractions*).
* `text_corpus(path)` with ``path`` a folder without such names (all its files, sorted by
  name, read as one text) or one file: the text is cut into the three splits.
* `text_corpus_from_texts`: strings (or lists of lines) from Python; `text_corpus_from_tokens`:
  token lists; `named_corpus`: Penn Treebank (word or character level) and Tiny Shakespeare.

Tokens: ``level="word"``: every line's whitespace-separated words followed by ``<eos>`` (the
Penn Treebank rule); ``level="char"``: every character, newlines included (the char-rnn rule).
Files are read as ``encoding`` (UTF-8 by default); ``\\r\\n`` line ends read as ``\\n``.

Fractions: ``fractions=(train, valid, test)`` (default 0.9 / 0.05 / 0.05, as tensorflow-datasets
splits Tiny Shakespeare). The splits that have no file are cut contiguously from the end of the
training tokens, in the order train | valid | test, each taking its share of the fractions of
the splits being cut (one text: exactly ``fractions``).

Vocabulary, built from the training split, most frequent first, ties alphabetical:

* ``vocab_size=None``: every training token; ``vocab_size=N``: at most N ids, ``<unk>``
  included. When the training split has more than N distinct tokens, the N-1 most frequent
  are kept, ``<unk>`` is the last id and the others map to it.
* ``<unk>`` is added (as the last id) only when something maps to it: tokens cut by the cap,
  or validation / test tokens never seen in training. A corpus that already contains ``<unk>``
  tokens (PTB) keeps it where its frequency puts it.
* ``unk=False``: nothing may map to ``<unk>``; a vocabulary over the cap, or an unseen
  validation / test token, is a `DataError` that says how many and what to change.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from absl import logging

from nascell.search.data import provenance
from nascell.search.data.provenance import DataError
from nascell.search.data.text import EOS, SPLITS, UNK, DataNotFoundError, Vocabulary, text_to_tokens
from nascell.search.data.vocabulary import build_vocabulary, listed_vocabulary, load_vocabulary

LEVELS = ("word", "char")
DEFAULT_FRACTIONS = (0.9, 0.05, 0.05)
SPLIT_NAMES = {"train": ("train",), "valid": ("valid", "validation", "val", "dev"),
               "test": ("test",)}
TextLike = Union[str, Sequence[str]]


@dataclasses.dataclass
class TextCorpus:
    """Token ids of the three splits, their vocabulary, and where they came from.

    Attributes:
        vocabulary: the `Vocabulary` (``id_to_token``, ``encode``, ``decode``).
        ids: {"train" | "valid" | "test": int32 ids}.
        record: the provenance record (JSON-serializable): kind, source, paths, level,
            vocabulary size and cap, tokens per split, fingerprint.
    """

    vocabulary: Vocabulary
    ids: Dict[str, np.ndarray]
    record: Dict[str, Any]

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def level(self) -> Optional[str]:
        return self.record.get("level")

    def lm_data(self) -> Tuple[Vocabulary, Dict[str, np.ndarray]]:
        """``(vocabulary, {split: ids})``: what the language-model children train on."""
        return self.vocabulary, self.ids

    def enas_data(self) -> Dict[str, Any]:
        """``{"train": ids, "valid": ids, "vocab_size": V}``: what ENAS' recurrent search takes."""
        return {"train": self.ids["train"], "valid": self.ids["valid"],
                "vocab_size": self.vocab_size}

    def save_vocabulary(self, path: str) -> None:
        """Write the vocabulary as JSON (``{"tokens": [...], "unk": ..., "level": ...}``); tokens
        may be spaces or newlines at character level, so not one token a line."""
        from nascell import _io

        data = {"tokens": self.vocabulary.id_to_token, "level": self.level,
                "unk": UNK if self.vocabulary.unk_id is not None else None,
                "fingerprint": self.record.get("fingerprint")}
        _io.atomic_write_bytes(path, json.dumps(data, ensure_ascii=False).encode("utf-8"))


def text_corpus_from_tokens(tokens: Dict[str, Sequence[str]], vocab_size: Optional[int] = None,
                            unk: bool = True, record: Optional[Dict[str, Any]] = None
                            ) -> TextCorpus:
    """A corpus from ``{"train" | "valid" | "test": tokens}`` (all three, none empty).

    Args:
        tokens: the token lists of the three splits.
        vocab_size, unk: the vocabulary cap and ``<unk>`` rule (module docstring).
        record: provenance fields describing the source (``source``, ``level``, ``paths``...);
            the vocabulary, token counts and fingerprint are added here.
    """
    missing = [s for s in SPLITS if s not in tokens]
    if missing:
        raise ValueError(f"Argument `tokens` must have the keys {list(SPLITS)}. "
                         f"Received keys: {sorted(tokens)}")
    record = dict(record or {})
    where = record.get("files") or {}
    for s in SPLITS:
        if len(tokens[s]) == 0:
            shown = ", ".join(where.get(s, ())) if s in where else None
            raise DataError(
                f"the {s} split of the text is empty{f' ({shown})' if shown else ''}: give it "
                "text (a non-empty file), or change `fractions` so every split gets tokens")
    vocab = build_vocabulary(tokens, vocab_size, unk)
    known = vocab.token_to_id
    mapped = {s: int(sum(1 for t in tokens[s] if t not in known)) for s in SPLITS}
    ids = {s: vocab.encode(tokens[s]) for s in SPLITS}
    record.update({
        "kind": "text",
        "vocab_size": len(vocab),
        "vocab_cap": None if vocab_size is None else int(vocab_size),
        "unk": bool(unk),
        "has_unk": vocab.unk_id is not None,
        "tokens": {s: int(len(ids[s])) for s in SPLITS},
        "mapped_to_unk": mapped,
        "fingerprint": provenance.fingerprint(vocab.id_to_token, *(ids[s] for s in SPLITS)),
    })
    record.setdefault("source", "tokens")
    logging.info("text corpus (%s): %d-token vocabulary, %s tokens", record["source"],
                 len(vocab), record["tokens"])
    return TextCorpus(vocab, ids, provenance.to_json(record))


def tokenize(text: str, level: str) -> List[str]:
    """``text`` as tokens at ``level`` ("word": words and ``<eos>``; "char": characters)."""
    if level == "word":
        return text_to_tokens(text)
    if level == "char":
        return list(text)
    raise ValueError(f"Argument `level` must be one of {list(LEVELS)}. Received: level={level!r}")


def _check_fractions(fractions: Sequence[float]) -> Tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or min(f) <= 0 or abs(sum(f) - 1.0) > 1e-6:
        raise ValueError("Argument `fractions` must be three positive numbers (train, valid, "
                         f"test) summing to 1. Received: fractions={tuple(fractions)!r}")
    return f


def cut_missing_splits(tokens: Dict[str, List[str]],
                       fractions: Sequence[float] = DEFAULT_FRACTIONS) -> Dict[str, List[str]]:
    """Cut the splits absent from ``tokens`` off the end of ``tokens["train"]`` (module
    docstring, *Fractions*); with only "train" given this is `text.split_tokens`."""
    f = dict(zip(SPLITS, _check_fractions(fractions)))
    cut = ["train"] + [s for s in ("valid", "test") if s not in tokens]
    if len(cut) == 1:
        return dict(tokens)
    train = tokens["train"]
    total = sum(f[s] for s in cut)
    out = dict(tokens)
    start = 0
    for i, s in enumerate(cut):
        end = len(train) if i == len(cut) - 1 else start + int(round(len(train) * f[s] / total))
        out[s] = list(train[start:end])
        start = end
    return out


def _as_text(value: TextLike, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise TypeError(f"Argument `{name}` must be a string or a list of strings (lines). "
                    f"Received: {name} of type {type(value).__name__}")


def _normalize(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def text_corpus_from_texts(train: TextLike, valid: Optional[TextLike] = None,
                           test: Optional[TextLike] = None, level: str = "word",
                           vocab_size: Optional[int] = None, unk: bool = True,
                           fractions: Sequence[float] = DEFAULT_FRACTIONS) -> TextCorpus:
    """A corpus from Python strings (or lists of lines); absent splits are cut from ``train``.

    Example:
        corpus = text_corpus_from_texts(open("novel.txt").read(), level="char")
    """
    tokenize("", level)  # checks level
    texts = {s: _normalize(_as_text(v, s)) for s, v in
             (("train", train), ("valid", valid), ("test", test)) if v is not None}
    tokens = cut_missing_splits({s: tokenize(t, level) for s, t in texts.items()}, fractions)
    record = {"source": "python", "level": level,
              "cut_from_train": [s for s in ("valid", "test") if s not in texts],
              "fractions": list(_check_fractions(fractions))}
    return text_corpus_from_tokens(tokens, vocab_size, unk, record)


# --- files -------------------------------------------------------------------------------------


def _read_file(path: str, encoding: str) -> str:
    try:
        with open(path, encoding=encoding) as f:
            return _normalize(f.read())
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not {encoding} text (undecodable byte at offset {e.start}): "
                        "pass the file's encoding (encoding=..., --text_encoding), or remove "
                        "non-text files from the folder") from None


def _join(texts: List[str]) -> str:
    """Files read as one text: each file but the last ends with a newline."""
    return "".join(t if t.endswith("\n") or i == len(texts) - 1 else t + "\n"
                   for i, t in enumerate(texts))


def _files_under(path: str) -> List[str]:
    """Regular, non-hidden files: ``path`` itself, or everything under it, sorted."""
    if os.path.isfile(path):
        return [path]
    out = []
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [os.path.join(folder, f) for f in sorted(files) if not f.startswith(".")]
    return out


def _split_of(name: str) -> Optional[str]:
    parts = [p.lower() for p in name.split(".")]
    hits = [s for s, aliases in SPLIT_NAMES.items() if any(a in parts for a in aliases)]
    return hits[0] if len(hits) == 1 else None


def find_split_files(folder: str, pattern: Optional[str] = None) -> Dict[str, str]:
    """{split: file or folder} of the splits present in ``folder`` (module docstring)."""
    entries = sorted(e for e in os.listdir(folder) if not e.startswith("."))
    if pattern is not None:
        if "{split}" not in pattern:
            raise ValueError("Argument `pattern` must contain '{split}', e.g. "
                             f"'ptb.{{split}}.txt'. Received: pattern={pattern!r}")
        found = {}
        for s, aliases in SPLIT_NAMES.items():
            hits = [a for a in aliases if pattern.format(split=a) in entries]
            if hits:
                found[s] = os.path.join(folder, pattern.format(split=hits[0]))
        if "train" not in found:
            raise DataNotFoundError(f"no {pattern.format(split='train')!r} in {folder}; "
                                    f"check `pattern` (--text_pattern)")
        return found
    found: Dict[str, List[str]] = collections.defaultdict(list)
    for e in entries:
        s = _split_of(e)
        if s is not None:
            found[s].append(e)
    for s, names in found.items():
        if len(names) > 1:
            raise DataError(
                f"{folder} has several {s} files: {names}. Name the ones to use with "
                "pattern='NAME.{split}.txt' (--text_pattern), or move the others away")
    if found and "train" not in found:
        raise DataError(f"{folder} has {sorted(found)} files but no training file: add one whose "
                        "name has 'train' as a dot-separated part (e.g. train.txt)")
    return {s: os.path.join(folder, names[0]) for s, names in found.items()}


def text_corpus(path: str, level: str = "word", vocab_size: Optional[int] = None,
                unk: bool = True, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                pattern: Optional[str] = None, encoding: str = "utf-8") -> TextCorpus:
    """A corpus from a folder of split files, a folder of documents, or one file.

    Args:
        path: the folder or file (see the module docstring for the layouts).
        level: "word" or "char".
        vocab_size: vocabulary cap (``<unk>`` included), or None for every training token.
        unk: allow mapping tokens to ``<unk>`` (see the module docstring).
        fractions: (train, valid, test) shares for splits cut from the training text.
        pattern: exact split file names, e.g. ``"ptb.{split}.txt"``.
        encoding: the files' text encoding.

    Raises:
        DataNotFoundError: ``path`` does not exist or holds no files.
        DataError: an empty split, undecodable text, ambiguous split files, a vocabulary over
            its cap with ``unk=False``.
    """
    tokenize("", level)
    fractions = _check_fractions(fractions)
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(path):
        raise DataNotFoundError(f"text path {path!r} does not exist; pass a folder with "
                                "train / valid / test files, or one text file (--text_dir)")
    splits = find_split_files(path, pattern) if os.path.isdir(path) else {}
    if not splits:
        splits = {"train": path}
    files = {s: _files_under(p) for s, p in splits.items()}
    for s, names in files.items():
        if not names:
            raise DataNotFoundError(f"{splits[s]} holds no files for the {s} split")
    texts = {s: _join([_read_file(f, encoding) for f in names]) for s, names in files.items()}
    tokens = cut_missing_splits({s: tokenize(t, level) for s, t in texts.items()}, fractions)
    record = {"source": "folder" if os.path.isdir(path) else "file", "level": level,
              "path": path,
              "files": {s: [os.path.relpath(f, path) if f != path else os.path.basename(f)
                            for f in names] for s, names in files.items()},
              "cut_from_train": [s for s in ("valid", "test") if s not in splits],
              "fractions": list(fractions), "encoding": encoding}
    return text_corpus_from_tokens(tokens, vocab_size, unk, record)


def as_text_corpus(data: Any, **kwargs) -> TextCorpus:
    """A `TextCorpus` from what a notebook has at hand.

    ``data`` may be a `TextCorpus`; a path (str or `os.PathLike`) of a folder or file, read by
    `text_corpus`; or a dict ``{"train": text, "valid": text, "test": text}`` of strings or
    lists of lines (valid and test optional), read by `text_corpus_from_texts`. ``kwargs`` go
    to those functions (``level``, ``vocab_size``, ``unk``, ``fractions``...).
    """
    if isinstance(data, TextCorpus):
        return data
    if isinstance(data, dict):
        return text_corpus_from_texts(**data, **kwargs)
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(os.path.expanduser(path)):
            shown = path if len(path) <= 60 else path[:57] + "..."
            raise DataNotFoundError(
                f"text path {shown!r} does not exist. A string is read as a path; to pass the "
                "text itself, pass {'train': text} or call text_corpus_from_texts(text)")
        return text_corpus(path, **kwargs)
    raise TypeError("Argument `data` must be a TextCorpus, a path, or a dict of texts "
                    f"{{'train': ..., 'valid': ..., 'test': ...}}. Received: data of type "
                    f"{type(data).__name__}")


def named_corpus(name: str, data_dir: Optional[str] = None, download: bool = False,
                 vocab_size: Optional[int] = None, unk: bool = True) -> TextCorpus:
    """Penn Treebank (``"ptb"``, ``"ptb_char"``) or Tiny Shakespeare (``"tiny_shakespeare"``)
    from the loaders of `nascell.search.data.text`, as a `TextCorpus` (same tokens, same ids
    as ``Vocabulary(train tokens)`` when no cap is given)."""
    from nascell.search.data import text

    loaders = {"ptb": (lambda: text.load_ptb(data_dir, download=download), "word"),
               "ptb_char": (lambda: text.load_ptb_chars(data_dir, download=download), "char"),
               "tiny_shakespeare": (lambda: text.load_tiny_shakespeare(data_dir,
                                                                       use_tfds=download),
                                    "char")}
    if name not in loaders:
        raise ValueError(f"Argument `name` must be one of {sorted(loaders)}. "
                         f"Received: name={name!r}")
    load, level = loaders[name]
    record = {"source": name, "level": level, "data_dir": data_dir}
    return text_corpus_from_tokens(load(), vocab_size, unk, record)


__all__ = ["DEFAULT_FRACTIONS", "EOS", "LEVELS", "TextCorpus", "as_text_corpus",
           "build_vocabulary",
           "cut_missing_splits", "find_split_files", "listed_vocabulary", "load_vocabulary",
           "named_corpus", "text_corpus", "text_corpus_from_texts", "text_corpus_from_tokens",
           "tokenize"]
