"""The examples (char-level PTB LM, translation) run end to end at tiny sizes.

They are loaded from examples/ by path and driven through their `run(Config)` functions (their
absl flags are only defined when they run as scripts, so nothing here touches global flags).
"""

import importlib.util
import math
import os
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples")


def _example(name):
    spec = importlib.util.spec_from_file_location(f"nascell_example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def char_ptb():
    return _example("char_ptb")


@pytest.fixture(scope="module")
def translate():
    return _example("translate")


def _lm_params(vocab, dim, units):
    """Embedding(vocab, dim) -> LSTM(units) -> Dense(vocab), counted by hand."""
    return vocab * dim + 4 * (units * (dim + units) + units) + (units + 1) * vocab


def test_lstm_units_match_the_parameter_count(char_ptb):
    for target, vocab, dim in ((27566, 46, 16), (6_570_000, 50, 128), (5000, 50, 8)):
        u = char_ptb.lstm_units_for(target, vocab, dim)
        diff = abs(_lm_params(vocab, dim, u) - target)
        assert diff <= abs(_lm_params(vocab, dim, u + 1) - target)
        assert diff <= abs(_lm_params(vocab, dim, max(1, u - 1)) - target)


def test_char_ptb_reads_the_childrens_corpus(char_ptb, tmp_path):
    """The example's data is the search's ptb_char corpus (training-split vocabulary), cut."""
    from nascell.search.evaluators.rnn_lm import load_corpus

    text = "ab c\nc ba\n"
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text(text * 50)
    data = char_ptb.load_data(char_ptb.Config(data_dir=str(tmp_path), max_train_chars=30,
                                              max_eval_chars=0))
    vocab, ids = load_corpus("ptb_char", str(tmp_path))
    assert data["vocab"] is vocab and len(data["train"]) == 30
    assert list(data["train"]) == list(ids["train"][:30])
    assert list(data["valid"]) == list(ids["valid"])


@pytest.mark.slow
def test_char_ptb_tiny(char_ptb, tmp_path):
    text = "the cat sat on the mat\na dog ran in the park\nthe end of the line\n"
    for split, copies in (("train", 30), ("valid", 4), ("test", 4)):
        lines = "".join([text] * copies).strip().split("\n")
        content = "".join(" ".join(list("_".join(line.split())) + ["\n"]) + " " for line in lines)
        (tmp_path / f"ptb.char.{split}.txt").write_text(content)
    cfg = char_ptb.Config(data_dir=str(tmp_path), units=8, embedding_dim=8, batch_size=4,
                          seq_len=10, steps=6, max_train_chars=0, max_eval_chars=0)
    results = char_ptb.run(cfg, workdir=str(tmp_path / "work"))
    cell, lstm = results["cell"], results["lstm"]
    vocab = results["data"]["vocab"]
    assert os.path.isfile(tmp_path / "work" / "cell" / "spec.json")  # went through export
    step = _lm_params(vocab, 8, lstm["units"] + 1) - _lm_params(vocab, 8, lstm["units"])
    assert abs(lstm["params"] - cell["params"]) <= step
    for r in (cell, lstm):
        for key in ("valid_bpc", "test_bpc"):
            assert math.isfinite(r[key]) and 0 < r[key] < 2 * math.log2(vocab), (key, r)


def test_bleu(translate):
    ref = "a b c d e".split()
    assert translate.corpus_bleu([ref], [ref]) == pytest.approx(100.0)
    assert translate.corpus_bleu([["x", "y"]], [ref]) < 5
    assert 0 < translate.corpus_bleu([["a", "b", "c", "x", "e"]], [ref]) < 100


@pytest.mark.slow
def test_translate_tiny_from_corpus(translate, tmp_path):
    from nascell.spec import FIGURE5_SPEC
    corpus = translate.write_synthetic_corpus(str(tmp_path / "pairs.tsv"), 300, seed=1)
    spec_json = tmp_path / "fig5.json"
    spec_json.write_text(FIGURE5_SPEC.to_json())
    cfg = translate.Config(corpus=corpus, spec_json=str(spec_json), units=8, embedding_dim=8,
                           max_len=7, batch_size=32, epochs=1, bleu_sentences=10)
    r = translate.run(cfg, workdir=str(tmp_path / "work"))
    assert r["source"] == corpus and r["train_pairs"] == 270 and r["heldout_pairs"] == 30
    assert os.path.isfile(tmp_path / "work" / "cell" / "spec.json")
    assert 0.0 <= r["token_accuracy"] <= 1.0
    assert math.isfinite(r["perplexity"]) and r["perplexity"] > 1.0
    assert 0.0 <= r["bleu"] <= 100.0
    with pytest.raises(ValueError, match="no tab"):
        bad = tmp_path / "bad.tsv"
        bad.write_text("no tab here\n")
        translate.read_corpus(str(bad))


def test_examples_run_the_exported_cell_on_the_fast_path(char_ptb, translate, tmp_path):
    """Both examples load the exported cell into nascell.RNN (the fast path), weights kept."""
    import nascell
    from nascell.fast_rnn import has_fast_path

    layer = char_ptb.exported_cell_layer(char_ptb.Config(units=4, embedding_dim=3),
                                         str(tmp_path / "char"))
    encoder, decoder, dim = translate.recurrent_layers(
        translate.Config(units=4, embedding_dim=3), str(tmp_path / "translate"))
    assert dim == 3
    for rnn in (layer, encoder, decoder):
        assert isinstance(rnn, nascell.RNN) and rnn.fast_path and has_fast_path(rnn.cell)
        assert rnn.cell.built and rnn.cell.kernel.shape[0] == 3
