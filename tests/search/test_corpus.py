"""Text corpora from your own files and from Python: layouts, levels, the vocabulary cap and
``<unk>`` rule, bad data, and the provenance record."""

import json

import numpy as np
import pytest

from nascell.search.data import corpus, provenance, text
from nascell.search.data.provenance import DataError
from nascell.search.data.text import DataNotFoundError

TRAIN = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n"
VALID = "the cat sat\n"
TEST = "the bird sat on the mat\n"


def write_splits(folder, names=("train.txt", "valid.txt", "test.txt"),
                 texts=(TRAIN, VALID, TEST)):
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in zip(names, texts):
        (folder / name).write_text(body, encoding="utf-8")
    return folder


def test_word_folder_tokens_vocab_and_unk(tmp_path):
    c = corpus.text_corpus(str(write_splits(tmp_path / "txt")))
    v = c.vocabulary
    assert v.decode(c.ids["valid"]) == ["the", "cat", "sat", "<eos>"]
    # "bird" is not in training: <unk> is added as the last id, and only because of it.
    assert v.id_to_token[-1] == "<unk>" and v.decode(c.ids["test"])[1] == "<unk>"
    assert v.id_to_token[0] == "the"  # most frequent first
    counts = {"train": 20, "valid": 4, "test": 7}
    r = c.record
    assert r["kind"] == "text" and r["source"] == "folder" and r["level"] == "word"
    assert r["tokens"] == counts and r["vocab_size"] == len(v) == c.vocab_size
    assert r["mapped_to_unk"] == {"train": 0, "valid": 0, "test": 1}
    assert r["files"] == {"train": ["train.txt"], "valid": ["valid.txt"], "test": ["test.txt"]}
    assert r["cut_from_train"] == [] and r["fingerprint"].startswith("sha256:")
    json.dumps(r)  # serializable
    vocab, ids = c.lm_data()
    assert ids["train"].dtype == np.int32 and len(ids["train"]) == 20
    assert c.enas_data()["vocab_size"] == len(vocab)


def test_char_level_and_split_names(tmp_path):
    folder = write_splits(tmp_path / "c", names=("ptb.train.txt", "ptb.valid.txt",
                                                   "wiki.test.tokens"))
    c = corpus.text_corpus(str(folder), level="char")
    assert c.vocabulary.decode(c.ids["valid"]) == list(VALID)
    assert "\n" in c.vocabulary.token_to_id and " " in c.vocabulary.token_to_id
    assert c.record["tokens"]["train"] == len(TRAIN)
    # "b", "i" are in training ("a dog", "sat on"): only unseen characters map to <unk>.
    unseen = sorted(set(TEST) - set(TRAIN))
    assert c.record["mapped_to_unk"]["test"] == sum(TEST.count(ch) for ch in unseen)


def test_split_folders_of_documents(tmp_path):
    for split, docs in (("train", [TRAIN, "one more line"]), ("validation", [VALID]),
                        ("test", [TEST])):
        d = tmp_path / "docs" / split
        d.mkdir(parents=True)
        for i, body in enumerate(docs):
            (d / f"{i}.txt").write_text(body, encoding="utf-8")
    c = corpus.text_corpus(str(tmp_path / "docs"))
    assert c.record["tokens"]["train"] == 20 + 4
    assert c.record["files"]["valid"] == ["validation/0.txt"]


def test_one_file_is_cut_like_tiny_shakespeare(tmp_path):
    body = "".join(f"line {i} of some text\n" for i in range(200))
    (tmp_path / "input.txt").write_text(body, encoding="utf-8")
    c = corpus.text_corpus(str(tmp_path / "input.txt"), level="char")
    expected = text.split_tokens(text.load_text_file(str(tmp_path / "input.txt"), "char"))
    for s in text.SPLITS:
        assert c.vocabulary.decode(c.ids[s]) == expected[s]
    assert c.record["source"] == "file" and c.record["cut_from_train"] == ["valid", "test"]
    # A folder without split names: its files, in name order, as one text.
    (tmp_path / "more.txt").write_text("x\n", encoding="utf-8")
    both = corpus.text_corpus(str(tmp_path), level="char")
    assert both.record["files"]["train"] == ["input.txt", "more.txt"]
    assert sum(both.record["tokens"].values()) == len(body) + 2


def test_missing_split_is_cut_from_train_end(tmp_path):
    folder = write_splits(tmp_path / "t", names=("train.txt", "test.txt"), texts=(TRAIN * 10,
                                                                                  TEST))
    c = corpus.text_corpus(str(folder), fractions=(0.8, 0.1, 0.1))
    n = 200  # 10 copies of 20 training tokens: valid takes 0.1 / (0.8 + 0.1) of them
    assert c.record["tokens"] == {"train": n - round(n / 9), "valid": round(n / 9), "test": 7}
    assert c.record["cut_from_train"] == ["valid"]


def test_vocab_cap_keeps_most_frequent_and_maps_rest_to_unk(tmp_path):
    c = corpus.text_corpus(str(write_splits(tmp_path / "t")), vocab_size=5)
    assert len(c.vocabulary) == 5
    assert c.vocabulary.id_to_token == ["the", "<eos>", "a", "cat", "<unk>"]
    assert c.record["vocab_cap"] == 5 and c.record["has_unk"]
    assert c.record["mapped_to_unk"]["train"] == 20 - (4 + 3 + 2 + 2)


def test_vocab_over_cap_without_unk_is_a_clear_error(tmp_path):
    folder = str(write_splits(tmp_path / "t"))
    with pytest.raises(DataError, match=r"10 distinct tokens, more than vocab_size=5.*"
                                        r"vocab_size>=10"):
        corpus.text_corpus(folder, vocab_size=5, unk=False)
    with pytest.raises(DataError, match="never seen in the training split.*'bird'"):
        corpus.text_corpus(folder, unk=False)  # "bird" would need <unk>
    with pytest.raises(ValueError, match="vocab_size"):
        corpus.text_corpus(folder, vocab_size=1)


def test_ptb_style_unk_keeps_its_frequency_rank():
    tokens = {"train": ["a", "<unk>", "<unk>", "b", "a", "<unk>"], "valid": ["a"],
              "test": ["zzz"]}
    c = corpus.text_corpus_from_tokens(tokens)
    assert c.vocabulary.id_to_token == ["<unk>", "a", "b"]  # as text.Vocabulary orders it
    assert c.vocabulary.id_to_token == text.Vocabulary(tokens["train"]).id_to_token
    assert c.vocabulary.decode(c.ids["test"]) == ["<unk>"]


def test_from_python_strings_and_lines():
    c = corpus.text_corpus_from_texts(TRAIN, VALID, TEST.splitlines(), level="word")
    from_lines = corpus.text_corpus_from_texts(TRAIN.splitlines(), VALID, TEST)
    assert c.record["fingerprint"] == from_lines.record["fingerprint"]
    assert c.record["source"] == "python"
    one = corpus.text_corpus_from_texts(TRAIN * 20, level="char")
    assert one.record["cut_from_train"] == ["valid", "test"]
    with pytest.raises(TypeError, match="`valid` must be a string or a list of strings"):
        corpus.text_corpus_from_texts(TRAIN, valid=3)
    with pytest.raises(ValueError, match="level"):
        corpus.text_corpus_from_texts(TRAIN, level="byte")
    as_dict = corpus.as_text_corpus({"train": TRAIN, "valid": VALID, "test": TEST})
    assert as_dict.record["fingerprint"] == c.record["fingerprint"]
    assert corpus.as_text_corpus(as_dict) is as_dict
    with pytest.raises(DataNotFoundError, match=r"read as a path.*\{'train': text\}"):
        corpus.as_text_corpus(TRAIN)
    with pytest.raises(TypeError, match="`data` must be"):
        corpus.as_text_corpus(3)


def test_bad_folders_name_the_problem(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        corpus.text_corpus(str(tmp_path / "nope"))
    empty_valid = write_splits(tmp_path / "e", texts=(TRAIN, "\n\n", TEST))
    with pytest.raises(DataError, match=r"the valid split of the text is empty \(valid.txt\)"):
        corpus.text_corpus(str(empty_valid))
    two = write_splits(tmp_path / "two", names=("ptb.train.txt", "ptb.char.train.txt"),
                       texts=(TRAIN, TRAIN))
    with pytest.raises(DataError, match="several train files.*pattern="):
        corpus.text_corpus(str(two))
    c = corpus.text_corpus(str(two), pattern="ptb.{split}.txt")  # valid and test cut
    assert c.record["files"]["train"] == ["ptb.train.txt"]
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "train.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="not utf-8 text.*encoding"):
        corpus.text_corpus(str(tmp_path / "bin"))
    short = tmp_path / "short.txt"
    short.write_text("a b c\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.*fractions"):
        corpus.text_corpus(str(short))


def test_vocabulary_round_trip_keeps_space_and_newline_tokens(tmp_path):
    c = corpus.text_corpus_from_texts("ab a\nb\n" * 30, level="char")
    path = tmp_path / "vocab.json"
    c.save_vocabulary(str(path))
    loaded = corpus.load_vocabulary(str(path))
    assert loaded.id_to_token == c.vocabulary.id_to_token and "\n" in loaded.token_to_id
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(DataError, match="not a saved vocabulary"):
        corpus.load_vocabulary(str(path))


def test_identity_ignores_location_but_not_content(tmp_path):
    a = corpus.text_corpus(str(write_splits(tmp_path / "a")))
    b = corpus.text_corpus(str(write_splits(tmp_path / "b")))
    assert a.record["path"] != b.record["path"]
    provenance.check_same_data(a.record, b.record)  # moved, same data: fine
    changed = corpus.text_corpus(str(write_splits(tmp_path / "c", texts=(TRAIN + "x\n", VALID,
                                                                         TEST))))
    with pytest.raises(provenance.DataMismatchError, match="fingerprint.*new run directory"):
        provenance.check_same_data(a.record, changed.record, "runs/x")


def test_named_corpus_matches_the_existing_loader(shared_data):
    folder = str(shared_data("tinyshakespeare"))
    c = corpus.named_corpus("tiny_shakespeare", folder)
    tokens = text.load_tiny_shakespeare(folder)
    vocab = text.Vocabulary(tokens["train"])
    assert c.vocabulary.id_to_token == vocab.id_to_token  # no <unk> added
    for s in text.SPLITS:
        np.testing.assert_array_equal(c.ids[s], vocab.encode(tokens[s]))
    assert c.record["source"] == "tiny_shakespeare" and c.record["level"] == "char"
