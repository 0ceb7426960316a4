"""Truncated BPTT with the state carried across batches (nascell.search.training)."""

import math

import keras
import numpy as np
import pytest
from tolerance import ATOL, RTOL

from nascell.enas_spec import enas_rnn_cell_spec
from nascell.search.data.text import batchify
from nascell.search.evaluators.rnn_lm import build_language_model, language_model_params
from nascell.search.training.lm_fit import fit_language_model, learning_rate
from nascell.search.training.stateful_lm import StatefulLMTrainer
from nascell.spec import FIGURE5_SPEC

VOCAB = 11
# An ENAS cell (one state, h): two loose ends, every activation once.
ENAS_SPEC = enas_rnn_cell_spec(inputs=[0, 1, 0], activations=["tanh", "relu", "sigmoid",
                                                              "identity"])


def _model(spec, units=4, seed=3, scale=1.0):
    model = build_language_model(spec, VOCAB, units, num_layers=2, tie_weights=False,
                                 seed=seed, return_state=True)
    if scale != 1.0:  # weights large enough that the state visibly changes the outputs
        model.set_weights([w * scale for w in model.get_weights()])
    return model


def _ids(n, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=n).astype(np.int32)


# The ENAS cell's highway gates keep the state's effect on the outputs small (under 1e-2 nats
# at weights in [-1, 1]); at [-3, 3] it is over 1 nat.
@pytest.mark.parametrize("spec, scale", [("lstm", 10.0), (FIGURE5_SPEC, 10.0),
                                         (ENAS_SPEC, 30.0)],
                         ids=["lstm", "tree_cell", "enas_cell"])
def test_carried_state_equals_one_long_sequence(spec, scale):
    """A sequence cut in pieces, the state carried, scores exactly what it scores whole; with
    the state reset at every piece it does not."""
    trainer = StatefulLMTrainer(_model(spec, scale=scale), keras.optimizers.SGD(1.0))
    ids = _ids(2 * 13)  # two rows of 13 tokens: 12 predictions a row
    whole = trainer.evaluate(ids, batch_size=2, seq_len=12)
    pieces = trainer.evaluate(ids, batch_size=2, seq_len=4)
    assert whole.tokens == pieces.tokens == 24 and pieces.steps == 3
    assert pieces.loss == pytest.approx(whole.loss, rel=RTOL, abs=ATOL)

    # The same pieces without the state carried (a reset before each) differ.
    x, y = batchify(ids, 2, 4)
    reset = 0.0
    for i in range(len(x)):
        logits, *_ = trainer.model([keras.ops.convert_to_tensor(x[i]), *trainer.zero_state(2)])
        reset += float(keras.ops.sum(keras.losses.sparse_categorical_crossentropy(
            y[i], logits, from_logits=True)))
    assert abs(reset / 24 - whole.loss) > 1e-2
    # Every pass starts from a zero state: a second evaluation gives the same figure.
    assert trainer.evaluate(ids, batch_size=2, seq_len=4).loss == pytest.approx(pieces.loss,
                                                                                 rel=1e-6)


def test_zero_max_batches_means_every_batch():
    """``max_valid_steps=0`` is "all batches" (as the flags and the stateless scoring read
    it), not an empty pass scored as perplexity 1."""
    trainer = StatefulLMTrainer(_model("lstm"), keras.optimizers.SGD(1.0))
    ids = _ids(2 * 13, seed=4)
    every = trainer.evaluate(ids, batch_size=2, seq_len=4)
    assert every.steps == 3 and every.loss > 1.0
    for cap in (0, None):
        got = trainer.evaluate(ids, batch_size=2, seq_len=4, max_batches=cap)
        assert got.steps == 3 and got.loss == pytest.approx(every.loss, rel=1e-6)
    assert trainer.evaluate(ids, batch_size=2, seq_len=4, max_batches=1).steps == 1


def test_training_pass_carries_the_state():
    """With a zero learning rate a training pass is a forward pass: its loss equals the carried
    evaluation's, and with dropout off and lr 0 the weights do not move."""
    model = _model("lstm")
    trainer = StatefulLMTrainer(model, keras.optimizers.SGD(1.0))
    ids = _ids(2 * 13, seed=1)
    before = [w.copy() for w in model.get_weights()]
    x, y = batchify(ids, 2, 4)
    train = trainer.train_pass(x, y, lr=0.0)
    assert train.loss == pytest.approx(trainer.evaluate(ids, 2, 12).loss, rel=1e-5)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_gradient_of_summed_loss_is_seq_len_times_the_mean():
    """sum_over_time scales the objective by the unrolled length (Zaremba's loss): one SGD step
    of lr on the sum moves the weights as a step of seq_len * lr on the mean."""
    ids = _ids(2 * 9, seed=2)
    x, y = batchify(ids, 2, 8)
    moved = []
    for sum_over_time, lr in ((True, 0.01), (False, 0.08)):
        model = _model("lstm", seed=5)
        start = [w.copy() for w in model.get_weights()]
        StatefulLMTrainer(model, keras.optimizers.SGD(1.0),
                          sum_over_time=sum_over_time).train_pass(x, y, lr=lr)
        moved.append([w - s for w, s in zip(model.get_weights(), start)])
    for a, b in zip(*moved):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_learning_rate_schedule_is_zarembas():
    rates = [learning_rate(e, 1.0, 0.5, 5) for e in range(1, 14)]
    assert rates[:4] == [1.0] * 4 and rates[4] == 0.5 and rates[5] == 0.25
    assert rates[-1] == pytest.approx(1 / 512)
    assert learning_rate(7, 0.3) == 0.3


def test_lstm_baseline_parameter_count():
    """Zaremba's small model: 2 x 200 LSTM, untied softmax, 10k words: 4,651,600 parameters."""
    assert language_model_params(10_000, 200, 4, 2, tie_weights=False) == 4_651_600
    model = build_language_model("lstm", 50, 6, num_layers=2, tie_weights=False)
    assert model.count_params() == language_model_params(50, 6, 4, 2, tie_weights=False)


def test_fit_keeps_the_best_weights_in_memory():
    """Without a checkpoint folder the best epoch's weights are held in memory and restored."""
    ids = {s: _ids(2 * 41, seed=i) for i, s in enumerate(("train", "valid", "test"))}
    model = _model(FIGURE5_SPEC)
    # Random tokens: after the second epoch the fit to the training split makes the validation
    # perplexity worse, so the best epoch is not the last one.
    result = fit_language_model(model, keras.optimizers.SGD(1.0), ids, epochs=4, lr=1.0,
                                batch_size=2, seq_len=5, evaluate_test=True)
    ppls = [h["valid_ppl"] for h in result.history]
    assert result.best_epoch < len(ppls)
    assert result.best_valid_ppl == min(ppls) and result.best_epoch == 1 + ppls.index(min(ppls))
    trainer = StatefulLMTrainer(model, keras.optimizers.SGD(1.0))
    assert math.exp(trainer.evaluate(ids["valid"], 2, 5).loss) == pytest.approx(
        result.best_valid_ppl, rel=1e-5)
    assert result.test_ppl > 1


def test_rnn_lm_children_can_carry_the_state(shared_data):
    """carry_state=True: a child trains through the stateful trainer; its metrics and reward
    have the usual form, and the option is recorded in its config."""
    from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator

    evaluator = RNNLanguageModelEvaluator(
        data_dir=str(shared_data("ptb")), units=8, epochs=2, steps_per_epoch=3, batch_size=4,
        seq_len=5, max_valid_steps=2, carry_state=True)
    result = evaluator.evaluate(FIGURE5_SPEC)
    assert not result.failed, result.error
    m = result.metrics
    assert m["carry_state"] and m["steps"] == 6 and len(m["valid_ppl_history"]) == 2
    assert m["valid_ppl"] == min(m["valid_ppl_history"])
    assert result.reward == pytest.approx(80.0 / m["valid_ppl"] ** 2)
    assert evaluator.config()["carry_state"] is True
    assert "carry_state" not in RNNLanguageModelEvaluator().config()  # old run dirs still match


@pytest.mark.parametrize("spec", ["lstm", FIGURE5_SPEC])
def test_stateful_and_stateless_models_share_a_weights_file(spec, tmp_path):
    """The final stage saves the stateful model's weights; the ids -> logits model (what an
    export serves) loads them and computes the same logits from a zero state."""
    stateful = _model(spec, scale=5.0)
    path = str(tmp_path / "m.weights.h5")
    stateful.save_weights(path)
    stateless = build_language_model(spec, VOCAB, 4, num_layers=2, tie_weights=False, seed=9)
    stateless.load_weights(path)
    ids = keras.ops.convert_to_tensor(_ids(2 * 6).reshape(2, 6))
    trainer = StatefulLMTrainer(stateful, keras.optimizers.SGD(1.0))
    expected = stateful([ids, *trainer.zero_state(2)])[0]
    np.testing.assert_allclose(stateless(ids), expected, rtol=1e-5, atol=1e-6)


def test_training_stops_at_the_first_check_once_the_loss_is_far_over_the_guess():
    """A pass whose mean loss is over twice the uniform guess's (``2 ln V``) has diverged: it
    stops at the first check (step 50), not at the end of the epoch, and says why."""
    from nascell.search.evaluators._child import ChildDiverged

    model = _model("lstm", scale=60.0)
    softmax = model.layers[-1]  # logits a thousand times too large: a loss far over ln V
    softmax.set_weights([w * 1000.0 for w in softmax.get_weights()])
    trainer = StatefulLMTrainer(model, keras.optimizers.SGD(0.0))
    x, y = batchify(_ids(2 * 4 * 120 + 1, seed=5), 2, 4)
    assert len(x) > 100
    with pytest.raises(ChildDiverged, match=r"at step 50 of \d+, over 4\.8 \(twice"):
        trainer.train_pass(x, y, lr=0.0)
    # The same data through a sanely initialized model trains the whole pass.
    stats = StatefulLMTrainer(_model("lstm"), keras.optimizers.SGD(0.1)).train_pass(x, y, 0.1)
    assert stats.steps == len(x) and stats.loss < 2 * math.log(VOCAB)
