"""Shared pieces of the ENAS benchmarks: PTB proxy data and a child language model.

A *child* is what NAS-RL trains for every architecture it scores: a fresh language model
(embedding -> ``keras.layers.RNN(ENASRNNCell(spec, units))`` -> softmax), trained from scratch
for a proxy budget and scored by validation perplexity. Every cell of an N-node ENAS space has
the same parameters (node 0's two matrices and one matrix per later node), so two children of
one space always have equal size.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

import numpy as np

SHARED_PTB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                          "data", "ptb")


def load_ptb_proxy(max_train: Optional[int], max_valid: Optional[int],
                   max_test: Optional[int], data_dir: Optional[str] = None) -> Dict[str, Any]:
    """PTB word ids (full 10k vocabulary), each split truncated to its first tokens."""
    from nascell.search.data.text import Vocabulary, load_ptb
    if data_dir is None and os.path.isdir(SHARED_PTB):
        data_dir = SHARED_PTB
    texts = load_ptb(data_dir)
    vocab = Vocabulary(texts["train"])
    out = {"vocab_size": vocab.size}
    for split, cap in (("train", max_train), ("valid", max_valid), ("test", max_test)):
        ids = vocab.encode(texts[split])
        out[split] = ids[:cap] if cap else ids
    return out


def build_child(spec, vocab_size: int, units: int):
    import keras

    from nascell.enas_cells import ENASRNNCell
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(vocab_size, units),
        keras.layers.RNN(ENASRNNCell(spec, units), return_sequences=True),
        keras.layers.Dense(vocab_size),
    ])
    return model


def _windows(ids: np.ndarray, batch_size: int, seq_len: int):
    from nascell.search.data.text import batchify
    x, y = batchify(ids, batch_size, seq_len)
    return x.reshape(-1, seq_len), y.reshape(-1, seq_len)


def train_child(spec, data: Dict[str, Any], units: int, epochs: int, batch_size: int = 20,
                seq_len: int = 35, learning_rate: float = 2e-3, seed: int = 0
                ) -> Dict[str, float]:
    """Train a fresh child for ``epochs`` passes over ``data["train"]``; score valid and test."""
    import keras
    keras.utils.set_random_seed(seed)
    model = build_child(spec, data["vocab_size"], units)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=5.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _windows(data["train"], batch_size, seq_len)
    start = time.time()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    train_s = time.time() - start
    start = time.time()
    vx, vy = _windows(data["valid"], batch_size, seq_len)
    valid = float(np.exp(model.evaluate(vx, vy, batch_size=batch_size, verbose=0)))
    eval_s = time.time() - start
    out = {"train_s": train_s, "eval_s": eval_s, "valid_ppl": valid,
           "params": int(model.count_params()), "steps": epochs * len(x) // batch_size}
    if data.get("test") is not None and len(data["test"]):
        tx, ty = _windows(data["test"], batch_size, seq_len)
        out["test_ppl"] = float(np.exp(model.evaluate(tx, ty, batch_size=batch_size,
                                                      verbose=0)))
    keras.backend.clear_session()
    return out
