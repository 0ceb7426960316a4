"""Data pipelines for the child networks: text corpora (PTB, Tiny Shakespeare) and CIFAR-10.

Every loader reads local files or an installed package by default and fails within seconds,
naming the flag to pass, when the data is absent; a download happens only when asked for.
"""

from nascell.search.data.cifar10 import (CifarSplits, augment, cifar_datasets, load_cifar10,
                                         split_cifar10, whiten)
from nascell.search.data.text import (EOS, PTB_TOKEN_COUNTS, DataNotFoundError, Vocabulary,
                                      batchify, lm_dataset, load_ptb, load_ptb_chars,
                                      load_text_file, load_tiny_shakespeare, num_lm_batches,
                                      ptb_char_line, ptb_char_text, split_tokens,
                                      text_to_tokens)

__all__ = ["CifarSplits", "DataNotFoundError", "EOS", "PTB_TOKEN_COUNTS", "Vocabulary",
           "augment", "batchify", "cifar_datasets", "lm_dataset", "load_cifar10", "load_ptb",
           "load_ptb_chars", "load_text_file", "load_tiny_shakespeare", "num_lm_batches",
           "ptb_char_line", "ptb_char_text", "split_cifar10", "split_tokens", "text_to_tokens",
           "whiten"]
