"""The data argument of the evaluators: your own text or images, as an object or as options.

The child trainers (`RNNLanguageModelEvaluator`, `ConvClassifierEvaluator`) and ENAS'
`SupernetEvaluator` take their own data through one argument each:

* ``corpus=``: a `TextCorpus`, a path (str / `os.PathLike`) of a text folder or file, a dict of
  texts ``{"train": ..., "valid": ..., "test": ...}``, or a dict of `text_corpus` options
  (``{"path": ..., "level": "char", "vocab_size": 10000, ...}``, what the flags give);
* ``images=``: an `ImageData`, arrays ``(x_train, y_train[, x_test, y_test])``, `tf.data`
  dataset(s), or a dict of `load_images` options (``{"image_dir": ...}`` or ``{"tfds_name":
  ...}``, what the flags give).

Options stay options (JSON, light to send to worker processes) and are loaded once per process
(cached here); anything else becomes a `TextCorpus` / `ImageData` at once, held by the
evaluator and sent with it. Either way the evaluator's config records the data's provenance
record (`record_of`), with the options under ``"options"`` so the data can be loaded again
(``nascell-train --run_dir``).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Sequence, Union

from nascell.search.data import corpus as corpus_lib
from nascell.search.data import image_sources, images

TEXT_OPTIONS = ("path", "level", "vocab_size", "unk", "fractions", "pattern", "encoding")
IMAGE_OPTIONS = ("image_dir", "tfds_name", "tfds_data_dir", "tfds_download", "image_size",
                 "test_fraction", "seed")

TextArg = Union[corpus_lib.TextCorpus, Dict[str, Any]]
ImageArg = Union[images.ImageData, Dict[str, Any]]

_LOADED: Dict[str, Any] = {}  # options (as JSON) -> loaded data, per process
# The vocabulary of a run's own text, in its run directory (exports hold it as vocab.json).
VOCAB_FILE = os.path.join("data", "vocab.json")


def _abs(path: Any) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _check_keys(options: Dict[str, Any], allowed, name: str) -> Dict[str, Any]:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"Argument `{name}` has unknown options {unknown}; the options are "
                         f"{list(allowed)}. Received: {name}={options!r}")
    return {k: v for k, v in options.items() if v is not None}


def text_arg(corpus: Any) -> TextArg:
    """``corpus`` as the evaluators keep it: a `TextCorpus` or checked `text_corpus` options."""
    if isinstance(corpus, corpus_lib.TextCorpus):
        return corpus
    if isinstance(corpus, (str, os.PathLike)):
        corpus = {"path": corpus}
    if isinstance(corpus, dict) and "path" in corpus:
        options = _check_keys(corpus, TEXT_OPTIONS, "corpus")
        options["path"] = _abs(options["path"])
        if "fractions" in options:
            options["fractions"] = [float(f) for f in options["fractions"]]
        corpus_lib.tokenize("", options.get("level", "word"))  # checks the level now
        return options
    return corpus_lib.as_text_corpus(corpus)  # a dict of texts; other types raise TypeError


def image_arg(data: Any) -> ImageArg:
    """``images`` as the evaluators keep it: an `ImageData` or checked `load_images` options."""
    if isinstance(data, dict) and ("image_dir" in data or "tfds_name" in data):
        options = _check_keys(data, IMAGE_OPTIONS, "images")
        if ("image_dir" in options) == ("tfds_name" in options):
            raise ValueError("Argument `images` must name one source: image_dir or tfds_name. "
                             f"Received: images={data!r}")
        for key in ("image_dir", "tfds_data_dir"):
            if key in options:
                options[key] = _abs(options[key])
        if "image_size" in options:
            size = options["image_size"]
            options["image_size"] = [int(size), int(size)] if isinstance(size, int) else \
                [int(d) for d in size]
        return options
    return images.as_image_data(data)


def _cached(kind: str, options: Dict[str, Any], load):
    key = kind + json.dumps(options, sort_keys=True)
    if key not in _LOADED:
        _LOADED[key] = load()
    return _LOADED[key]


def load_text(corpus: TextArg) -> corpus_lib.TextCorpus:
    """The `TextCorpus` of a `text_arg` value (read once per process for options)."""
    if isinstance(corpus, corpus_lib.TextCorpus):
        return corpus
    return _cached("text", corpus, lambda: corpus_lib.text_corpus(**corpus))


def load_images(data: Any = None, **options: Any) -> images.ImageData:
    """Your images as an `ImageData`: the one image loader, for the evaluators and for you.

    Args:
        data: anything `image_arg` takes (an `ImageData`, arrays, `tf.data`, a dict of the
            options below), or the path of a folder of class sub-folders.
        **options: instead of ``data``: ``image_dir`` (a folder of class sub-folders,
            `image_sources.image_folder`) or ``tfds_name`` (a tensorflow-datasets name,
            `image_sources.tfds_images`), with ``tfds_data_dir``, ``tfds_download``,
            ``image_size``, ``seed`` and ``test_fraction`` (the binaries' flags).

    Images given as options are read once per process (cached by their options).
    """
    if options:
        if data is not None:
            raise ValueError("Pass your images as `data` or as options, not both. Received: "
                             f"data={data!r}, options={options!r}")
        data = {k: v for k, v in options.items() if v is not None}
        if "image_dir" not in data and "tfds_name" not in data:
            raise ValueError("Argument `images` must name one source: image_dir "
                             f"(--image_dir) or tfds_name (--tfds_name). Received: {options!r}")
    elif isinstance(data, (str, os.PathLike)):
        data = {"image_dir": data}
    data = image_arg(data)
    if isinstance(data, images.ImageData):
        return data
    return _cached("images", data, lambda: _images_from_options(**data))


def _images_from_options(image_dir: Optional[str] = None, tfds_name: Optional[str] = None,
                         tfds_data_dir: Optional[str] = None, tfds_download: bool = False,
                         image_size: Optional[Sequence[int]] = None, seed: int = 0,
                         test_fraction: float = images.TEST_FRACTION) -> images.ImageData:
    if image_dir is not None:
        return image_sources.image_folder(image_dir, image_size=image_size,
                                          test_fraction=test_fraction, seed=seed)
    return image_sources.tfds_images(tfds_name, data_dir=tfds_data_dir, download=tfds_download,
                                     image_size=image_size, test_fraction=test_fraction,
                                     seed=seed)


def record_of(arg: Any, loaded: Any) -> Dict[str, Any]:
    """The provenance record for an evaluator's config: the data's, plus the options that load
    it again when it came from options."""
    record = dict(loaded.record)
    if isinstance(arg, dict):
        record["options"] = dict(arg)
    return record


def save_run_vocabulary(run_dir: str, corpus: TextArg) -> str:
    """Write the vocabulary of ``corpus`` to ``<run_dir>/data/vocab.json`` (once; atomic), so
    an export of the run carries the vocabulary its cells were searched with."""
    path = os.path.join(run_dir, VOCAB_FILE)
    if not os.path.isfile(path):
        load_text(corpus).save_vocabulary(path)
    return path

