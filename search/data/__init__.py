"""Data pipelines for the child networks: text corpora (PTB, Tiny Shakespeare, your own),
CIFAR-10 and your own images (a folder, a tensorflow-datasets name, arrays, tf.data).

Every loader reads local files or an installed package by default and fails within seconds,
naming the flag to pass, when the data is absent; a download happens only when asked for.
Your own data: `nascell.search.data.corpus` (text), `nascell.search.data.images` and
`nascell.search.data.image_sources` (images), `nascell.search.data.provenance` (the record a
run directory keeps of it), `nascell.search.data.sources` (the evaluators' data argument, and
`load_images`, the one image loader).
"""

from nascell.search.data.cifar10 import (
    augment,
    cifar_datasets,
    load_cifar10,
    split_cifar10,
    whiten,
)
from nascell.search.data.corpus import (
    TextCorpus,
    as_text_corpus,
    load_vocabulary,
    named_corpus,
    text_corpus,
    text_corpus_from_texts,
    text_corpus_from_tokens,
)
from nascell.search.data.image_sources import cifar10_images, image_folder, tfds_images
from nascell.search.data.images import (
    ImageData,
    ImageSplits,
    as_image_data,
    image_arrays,
    image_tf_datasets,
)
from nascell.search.data.provenance import DataError, DataMismatchError
from nascell.search.data.sources import load_images
from nascell.search.data.text import (
    EOS,
    PTB_TOKEN_COUNTS,
    DataNotFoundError,
    Vocabulary,
    batchify,
    lm_dataset,
    load_ptb,
    load_ptb_chars,
    load_text_file,
    load_tiny_shakespeare,
    num_lm_batches,
    ptb_char_line,
    ptb_char_text,
    split_tokens,
    text_to_tokens,
)

__all__ = ["DataError", "DataMismatchError", "DataNotFoundError", "EOS",
           "ImageData", "ImageSplits", "PTB_TOKEN_COUNTS", "TextCorpus", "Vocabulary",
           "as_image_data", "as_text_corpus", "augment", "batchify", "cifar10_images",
           "cifar_datasets", "image_arrays", "image_folder", "image_tf_datasets",
           "lm_dataset", "load_cifar10", "load_images", "load_ptb", "load_ptb_chars",
           "load_text_file", "load_tiny_shakespeare", "load_vocabulary", "named_corpus",
           "num_lm_batches", "ptb_char_line", "ptb_char_text", "split_cifar10", "split_tokens",
           "text_corpus", "text_corpus_from_texts", "text_corpus_from_tokens", "text_to_tokens",
           "tfds_images", "whiten"]


def __getattr__(name: str):
    if name == "CifarSplits":  # deprecated (removed in 0.3.0): warns, then images.ImageSplits
        import warnings

        from nascell.search.data import cifar10
        warnings.warn(cifar10._CIFAR_SPLITS_MOVED, DeprecationWarning, stacklevel=2)
        return ImageSplits
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
