r"""Encoder-decoder translation with attention, whose recurrent layers are an exported cell.

The encoder and the decoder are each a copy of an exported cell (`nascell.export.load`, in
place of ``keras.layers.LSTM``): the encoder reads the source, its final state starts the
decoder (``[h, c]`` for a tree cell or an LSTM, ``[h]`` for an ENAS cell, whose only state is
its output; --export_dir and --spec_json take either kind), and ``keras.layers.Attention``
(or ``AdditiveAttention``) lets every decoder step look at all encoder outputs;
``[decoder output, context]`` feeds the softmax. Training uses teacher forcing; the held-out
split is scored by token accuracy and perplexity (teacher forced) and by corpus BLEU of
greedy decodes.

Data, one of:
  * --corpus=FILE: a tab-separated parallel corpus, one ``source<TAB>target`` pair a line
    (e.g. the Tatoeba/ManyThings ``deu.txt`` files; extra columns are ignored);
  * --tfds: tensorflow-datasets ``wmt14_translate/<--tfds_config>`` (downloads; only then);
  * neither (the default): a small synthetic language pair generated here (a word cipher
    with reversed word order), which trains in seconds.

    python examples/translate.py                                    # seconds, synthetic
    python examples/translate.py --corpus=deu.txt --max_pairs=50000 --units=256 \
        --embedding_dim=128 --epochs=10 --steps=0 --max_len=20
    python examples/translate.py --tfds --tfds_config=de-en --max_pairs=200000 ...
    python examples/translate.py --cell=lstm                        # the LSTM baseline
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import random
import re
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import app, flags, logging

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"


@dataclasses.dataclass
class Config:
    corpus: Optional[str] = None
    tfds: bool = False
    tfds_config: str = "de-en"
    max_pairs: int = 0                 # 0: all
    synthetic_pairs: int = 3000
    export_dir: Optional[str] = None
    spec_json: Optional[str] = None
    cell: str = "exported"             # or "lstm"
    units: int = 32
    embedding_dim: int = 32
    attention: str = "dot"             # or "additive"
    max_len: int = 10
    max_vocab: int = 8000
    batch_size: int = 64
    epochs: int = 10
    steps: int = 0                     # steps per epoch; 0: one pass over the training pairs
    learning_rate: float = 1e-2
    clipnorm: float = 1.0
    heldout_fraction: float = 0.1
    bleu_sentences: int = 200
    seed: int = 0


def define_flags() -> None:
    """The flags of `Config` (defined only when run as a script)."""
    c = Config()
    flags.DEFINE_string("corpus", c.corpus, "Tab-separated parallel corpus (source<TAB>target).")
    flags.DEFINE_boolean("tfds", c.tfds, "Use tensorflow-datasets wmt14_translate (downloads).")
    flags.DEFINE_string("tfds_config", c.tfds_config, "wmt14_translate config, e.g. de-en, fr-en.")
    flags.DEFINE_integer("max_pairs", c.max_pairs, "Use at most N sentence pairs (0: all).")
    flags.DEFINE_integer("synthetic_pairs", c.synthetic_pairs, "Pairs of the synthetic corpus.")
    flags.DEFINE_string("export_dir", c.export_dir, "An export folder whose cell to use.")
    flags.DEFINE_string("spec_json", c.spec_json, "A cell spec JSON file to export and use "
                        "(default: the NAS cell).")
    flags.DEFINE_enum("cell", c.cell, ["exported", "lstm"], "The recurrent layers.")
    flags.DEFINE_integer("units", c.units, "Cell units (when not from --export_dir).")
    flags.DEFINE_integer("embedding_dim", c.embedding_dim, "Word embedding size.")
    flags.DEFINE_enum("attention", c.attention, ["dot", "additive"], "Attention layer.")
    flags.DEFINE_integer("max_len", c.max_len, "Drop pairs with a side longer than this.")
    flags.DEFINE_integer("max_vocab", c.max_vocab, "Vocabulary size per language.")
    flags.DEFINE_integer("batch_size", c.batch_size, "Batch size.")
    flags.DEFINE_integer("epochs", c.epochs, "Epochs.")
    flags.DEFINE_integer("steps", c.steps, "Steps per epoch (0: one pass).")
    flags.DEFINE_float("learning_rate", c.learning_rate, "Adam learning rate.")
    flags.DEFINE_float("clipnorm", c.clipnorm, "Global gradient norm clip.")
    flags.DEFINE_float("heldout_fraction", c.heldout_fraction, "Fraction of pairs held out.")
    flags.DEFINE_integer("bleu_sentences", c.bleu_sentences, "Held-out sentences to decode.")
    flags.DEFINE_integer("seed", c.seed, "Random seed.")


# --- data ---------------------------------------------------------------------------------------


def synthetic_pairs(num_pairs: int, seed: int = 0, vocab: int = 24) -> List[Tuple[str, str]]:
    """A toy language pair: every source word has one target word, and the order reverses."""
    rng = random.Random(seed)
    src_words = [f"s{i}" for i in range(vocab)]
    tgt_words = [f"t{i}" for i in range(vocab)]
    rng.shuffle(tgt_words)
    table = dict(zip(src_words, tgt_words))
    pairs = []
    for _ in range(num_pairs):
        words = [rng.choice(src_words) for _ in range(rng.randint(3, 7))]
        pairs.append((" ".join(words), " ".join(table[w] for w in reversed(words))))
    return pairs


def write_synthetic_corpus(path: str, num_pairs: int, seed: int = 0) -> str:
    """Write `synthetic_pairs` as a tab-separated corpus file; returns the path."""
    with open(path, "w", encoding="utf-8") as f:
        for src, tgt in synthetic_pairs(num_pairs, seed):
            f.write(f"{src}\t{tgt}\n")
    return path


def read_corpus(path: str) -> List[Tuple[str, str]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--corpus {path} does not exist; pass a tab-separated file "
                                f"with one 'source<TAB>target' pair a line")
    pairs = []
    with open(path, "r", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 2:
                if line.strip():
                    raise ValueError(f"{path}:{n} has no tab; each line must be "
                                     f"'source<TAB>target'")
                continue
            pairs.append((cols[0], cols[1]))
    return pairs


def tfds_pairs(config: str, max_pairs: int) -> List[Tuple[str, str]]:
    import tensorflow_datasets as tfds
    src, tgt = config.split("-")
    ds = tfds.load(f"wmt14_translate/{config}", split="train")
    if max_pairs:
        ds = ds.take(max_pairs)
    return [(ex[src].numpy().decode("utf-8"), ex[tgt].numpy().decode("utf-8")) for ex in ds]


def tokenize(text: str) -> List[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


class Vocab:
    def __init__(self, sentences: Sequence[List[str]], max_size: int):
        counts = collections.Counter(t for s in sentences for t in s)
        words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        self.itos = [PAD, UNK, BOS, EOS] + words[:max(0, max_size - 4)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: List[str]) -> List[int]:
        return [self.stoi.get(t, 1) for t in tokens]


def _pad(rows: List[List[int]], length: int) -> np.ndarray:
    out = np.zeros((len(rows), length), np.int32)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def prepare(pairs: List[Tuple[str, str]], cfg: Config) -> Dict:
    """Tokenize, drop long pairs, split train / held-out, build vocabularies and arrays."""
    tok = [(tokenize(s), tokenize(t)) for s, t in pairs]
    tok = [(s, t) for s, t in tok if 0 < len(s) <= cfg.max_len and 0 < len(t) <= cfg.max_len]
    if len(tok) < 20:
        raise ValueError(f"only {len(tok)} pairs have both sides of 1..{cfg.max_len} tokens; "
                         f"pass a larger corpus or a larger --max_len")
    random.Random(cfg.seed).shuffle(tok)
    n_held = max(10, int(len(tok) * cfg.heldout_fraction))
    held, train = tok[:n_held], tok[n_held:]
    src_vocab = Vocab([s for s, _ in train], cfg.max_vocab)
    tgt_vocab = Vocab([t for _, t in train], cfg.max_vocab)

    def arrays(split):
        src = _pad([src_vocab.encode(s) for s, _ in split], cfg.max_len)
        tgt = [[2] + tgt_vocab.encode(t) + [3] for _, t in split]
        tgt_in = _pad([t[:-1] for t in tgt], cfg.max_len + 1)
        tgt_out = _pad([t[1:] for t in tgt], cfg.max_len + 1)
        return {"src": src, "tgt_in": tgt_in, "tgt_out": tgt_out,
                "refs": [t for _, t in split]}

    return {"train": arrays(train), "heldout": arrays(held), "src_vocab": src_vocab,
            "tgt_vocab": tgt_vocab}


# --- the model -----------------------------------------------------------------------------------


def recurrent_layers(cfg: Config, workdir: str):
    """Two recurrent layers (encoder, decoder) returning ``outputs, *states`` (``h, c`` for a
    tree cell or the LSTM, ``h`` for an ENAS cell), and the embedding size they read."""
    import keras
    if cfg.cell == "lstm":
        return (keras.layers.LSTM(cfg.units, return_sequences=True, return_state=True,
                                  name="encoder"),
                keras.layers.LSTM(cfg.units, return_sequences=True, return_state=True,
                                  name="decoder"), cfg.embedding_dim)
    from nascell.export import export_spec, load
    from nascell.spec import NAS_CELL_SPEC
    path = cfg.export_dir
    if path is None:
        spec = NAS_CELL_SPEC if cfg.spec_json is None else cfg.spec_json
        path = export_spec(spec, os.path.join(workdir, "cell"), units=cfg.units,
                           input_dim=cfg.embedding_dim,
                           layer_config={"use_bias": False} if cfg.spec_json is None else None)
    # Each a nascell.RNN: the loaded cell and weights, on the fast path.
    encoder = load(path, name="encoder")
    decoder = load(path, name="decoder")
    return encoder, decoder, int(encoder.cell.kernel.shape[0])


def build_model(cfg: Config, src_vocab: int, tgt_vocab: int, workdir: str):
    import keras
    encoder, decoder, embedding_dim = recurrent_layers(cfg, workdir)
    src = keras.Input((None,), dtype="int32", name="source")
    tgt_in = keras.Input((None,), dtype="int32", name="target_in")
    # However many states the cell has (h, c for a tree cell or an LSTM; h for an ENAS
    # cell), the encoder's final ones start the decoder.
    enc_out, *states = encoder(keras.layers.Embedding(src_vocab, embedding_dim, mask_zero=True,
                                                      name="source_embedding")(src))
    dec_out, *_ = decoder(keras.layers.Embedding(tgt_vocab, embedding_dim, mask_zero=True,
                                                 name="target_embedding")(tgt_in),
                          initial_state=list(states))
    attention = (keras.layers.Attention(name="attention") if cfg.attention == "dot"
                 else keras.layers.AdditiveAttention(name="attention"))
    context = attention([dec_out, enc_out])
    x = keras.layers.Concatenate()([dec_out, context])
    logits = keras.layers.Dense(tgt_vocab, name="softmax")(x)
    return keras.Model([src, tgt_in], logits, name="translator")


# --- evaluation ---------------------------------------------------------------------------------


def teacher_forced_metrics(model, data: Dict, batch_size: int) -> Dict[str, float]:
    logits = model.predict([data["src"], data["tgt_in"]], batch_size=batch_size, verbose=0)
    mask = data["tgt_out"] > 0
    logits = logits - logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, data["tgt_out"][..., None], -1)[..., 0]
    correct = logits.argmax(-1) == data["tgt_out"]
    n = mask.sum()
    return {"token_accuracy": float((correct & mask).sum() / n),
            "perplexity": float(math.exp((nll * mask).sum() / n))}


def greedy_decode(model, src: np.ndarray, max_len: int) -> List[List[int]]:
    """Greedy decoding with the training model (the prefix grows one token a pass)."""
    out = np.full((len(src), 1), 2, np.int32)  # <s>
    for _ in range(max_len + 1):
        logits = np.asarray(model([src, out], training=False))
        out = np.concatenate([out, logits[:, -1].argmax(-1)[:, None].astype(np.int32)], 1)
    result = []
    for row in out[:, 1:]:
        ids = []
        for i in row:
            if i == 3:
                break
            ids.append(int(i))
        result.append(ids)
    return result


def corpus_bleu(hypotheses: List[List[str]], references: List[List[str]],
                max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al. 2002), one reference each, in [0, 100]; zero n-gram
    matches are smoothed with 0.1 (NLTK's method1) so short test sets do not read 0."""
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        hyp_len, ref_len = hyp_len + len(hyp), ref_len + len(ref)
        for n in range(1, max_n + 1):
            h = collections.Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
            r = collections.Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    if hyp_len == 0:
        return 0.0
    log_p = sum(math.log((m if m else 0.1) / t) if t else math.log(1e-9)
                for m, t in zip(matches, totals)) / max_n
    brevity = min(0.0, 1.0 - ref_len / hyp_len)
    return 100.0 * math.exp(log_p + brevity)


# --- the experiment ---------------------------------------------------------------------------


def load_pairs(cfg: Config) -> Tuple[List[Tuple[str, str]], str]:
    if cfg.corpus and cfg.tfds:
        raise ValueError("pass --corpus or --tfds, not both")
    if cfg.corpus:
        pairs, source = read_corpus(cfg.corpus), cfg.corpus
    elif cfg.tfds:
        pairs, source = tfds_pairs(cfg.tfds_config, cfg.max_pairs), f"wmt14 {cfg.tfds_config}"
    else:
        pairs, source = synthetic_pairs(cfg.synthetic_pairs, cfg.seed), "synthetic"
    if cfg.max_pairs:
        pairs = pairs[:cfg.max_pairs]
    return pairs, source


def run(cfg: Config, workdir: Optional[str] = None) -> Dict:
    """Train the translator and score the held-out pairs; returns the numbers."""
    import keras
    keras.utils.set_random_seed(cfg.seed)
    pairs, source = load_pairs(cfg)
    data = prepare(pairs, cfg)
    train, held = data["train"], data["heldout"]
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(cfg, len(data["src_vocab"]), len(data["tgt_vocab"]), workdir or tmp)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=cfg.clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    weights = (train["tgt_out"] > 0).astype("float32")
    steps = cfg.steps or None
    start = time.time()
    model.fit([train["src"], train["tgt_in"]], train["tgt_out"], sample_weight=weights,
              batch_size=cfg.batch_size, epochs=cfg.epochs, steps_per_epoch=steps,
              shuffle=True, verbose=0)
    seconds = time.time() - start
    metrics = teacher_forced_metrics(model, held, cfg.batch_size)
    k = min(cfg.bleu_sentences, len(held["src"]))
    decoded = greedy_decode(model, held["src"][:k], cfg.max_len)
    itos = data["tgt_vocab"].itos
    hyps = [[itos[i] for i in ids] for ids in decoded]
    metrics["bleu"] = corpus_bleu(hyps, held["refs"][:k])
    metrics.update(params=int(model.count_params()), train_seconds=seconds, source=source,
                   train_pairs=len(train["src"]), heldout_pairs=len(held["src"]),
                   bleu_sentences=k, cell=cfg.cell,
                   example={"source": " ".join(data["src_vocab"].itos[i]
                                               for i in held["src"][0] if i),
                            "reference": " ".join(held["refs"][0]),
                            "output": " ".join(hyps[0])})
    return metrics


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    cfg = Config(**{f.name: flags.FLAGS[f.name].value for f in dataclasses.fields(Config)})
    if cfg.corpus and cfg.tfds:
        raise app.UsageError("pass --corpus or --tfds, not both")
    if cfg.export_dir and cfg.spec_json:
        raise app.UsageError("pass --export_dir or --spec_json, not both")
    r = run(cfg)
    print(f"{r['source']}: {r['train_pairs']} training pairs, {r['heldout_pairs']} held out; "
          f"{r['cell']} cell, {r['params']} parameters, {r['train_seconds']:.1f}s training")
    print(f"held-out token accuracy {r['token_accuracy']:.4f}  perplexity "
          f"{r['perplexity']:.3f}  BLEU {r['bleu']:.2f} ({r['bleu_sentences']} sentences, "
          f"greedy)")
    ex = r["example"]
    print(f"example: {ex['source']!r} -> {ex['output']!r} (reference {ex['reference']!r})",
          flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
