"""Real child trainers on the shared PTB and CIFAR-10 files: rewards, failures, flags."""

import math
import pickle

import pytest
from absl import app

from nascell.search.bin import child_flags
from nascell.search.evaluators import create_evaluator
from nascell.search.evaluators.conv_classifier import ConvClassifierEvaluator, conv_reward
from nascell.search.evaluators.rnn_lm import (
    RNNLanguageModelEvaluator,
    build_language_model,
    language_model_params,
    units_for_params,
)
from nascell.spec import FIGURE5_SPEC, ConvLayer, ConvSpec

TINY_CONV = ConvSpec(layers=(ConvLayer(3, 3, 4), ConvLayer(1, 3, 4, 2, 2, inputs=(0,)),
                             ConvLayer(3, 1, 4, inputs=(0, 1))))


def tiny_lm(ptb_dir, **kwargs):
    options = dict(data_dir=str(ptb_dir), units=8, epochs=2, steps_per_epoch=3, batch_size=4,
                   seq_len=5, max_valid_steps=2, optimizer="sgd", lr=1.0)
    options.update(kwargs)
    return RNNLanguageModelEvaluator(**options)


def tiny_conv(npz, **kwargs):
    options = dict(cifar_npz=str(npz), subset=200, epochs=6, steps_per_epoch=2, batch_size=16,
                   max_valid_steps=1)
    options.update(kwargs)
    return ConvClassifierEvaluator(**options)


@pytest.mark.slow
def test_rnn_lm_child_trains_and_rewards_80_over_ppl_squared(shared_data):
    evaluator = tiny_lm(shared_data("ptb"))
    result = evaluator.evaluate(FIGURE5_SPEC, trial_id=3)
    assert not result.failed, result.error
    m = result.metrics
    assert len(m["valid_ppl_history"]) == 2 and m["valid_ppl"] == min(m["valid_ppl_history"])
    assert 1.0 < m["valid_ppl"] < 20000  # a 10k-word vocabulary, barely trained
    assert result.reward == pytest.approx(80.0 / m["valid_ppl"] ** 2)
    assert m["params"] == language_model_params(10000, 8, FIGURE5_SPEC.base)
    assert m["steps"] == 6 and math.isfinite(m["train_loss"]) and m["seconds"] > 0
    pickle.loads(pickle.dumps(evaluator))  # still picklable after use (no heavy state)


def test_units_match_target_params():
    units = units_for_params(20_000_000, 10000, base=8)
    count = language_model_params(10000, units, base=8)
    assert abs(count - 20_000_000) <= language_model_params(10000, units + 1, 8) - count
    for tie in (True, False):  # the formula is the model's own count
        model = build_language_model(FIGURE5_SPEC, vocab_size=50, units=6, tie_weights=tie)
        assert model.count_params() == language_model_params(50, 6, 2, tie_weights=tie)


def test_units_for_params_with_a_fixed_embedding():
    """An untied model with its own embedding width is sized by its own count, and the
    evaluator sizes it that way (it used to count an embedding as wide as the hidden size)."""
    for target, dim in ((300_000, 16), (300_000, 128), (50_000, 4)):
        units = units_for_params(target, 50, base=8, num_layers=1, tie_weights=False,
                                 embedding_dim=dim)
        count = language_model_params(50, units, 8, 1, tie_weights=False, embedding_dim=dim)
        for other in (units - 1, units + 1):
            assert abs(count - target) <= abs(language_model_params(
                50, other, 8, 1, tie_weights=False, embedding_dim=dim) - target)
    ev = RNNLanguageModelEvaluator(dataset="ptb_char", target_params=300_000, num_layers=1,
                                   tie_weights=False, embedding_dim=16)
    units = ev.units_for(FIGURE5_SPEC, 50)
    model = build_language_model(FIGURE5_SPEC, 50, units, num_layers=1, tie_weights=False,
                                 embedding_dim=16)
    step = language_model_params(50, units + 1, 2, 1, False, 16) - model.count_params()
    assert abs(model.count_params() - 300_000) <= step
    with pytest.raises(ValueError, match="target_params"):
        units_for_params(0, 50, base=8)



@pytest.mark.parametrize("return_state", [False, True])
def test_language_model_children_run_on_the_fast_path(return_state):
    """The children's recurrent layers are nascell.RNN around cells with the hook (the fast
    path); the LSTM baseline's cells have none and run step by step in the same layer."""
    import nascell
    from nascell.fast_rnn import has_fast_path

    for spec, fast in ((FIGURE5_SPEC, True), ("lstm", False)):
        model = build_language_model(spec, vocab_size=20, units=4, return_state=return_state)
        rnns = [layer for layer in model.layers if layer.name.startswith("rnn_")]
        assert len(rnns) == 2
        assert all(isinstance(r, nascell.RNN) and r.fast_path for r in rnns)
        assert all(has_fast_path(r.cell) == fast for r in rnns)

@pytest.mark.slow
def test_rnn_lm_child_that_diverges_fails_with_reward_zero(shared_data):
    evaluator = tiny_lm(shared_data("ptb"), optimizer="adam", lr=1e30, clipnorm=None)
    result = evaluator.evaluate(FIGURE5_SPEC)
    assert result.failed and result.reward == 0.0
    assert "not finite" in result.error


@pytest.mark.slow
def test_conv_child_trains_and_rewards_cubed_max_of_last_5_epochs(shared_data):
    result = tiny_conv(shared_data("cifar10", "cifar10_subset.npz")).evaluate(TINY_CONV)
    assert not result.failed, result.error
    history = result.metrics["valid_acc_history"]
    assert len(history) == 6
    assert result.metrics["valid_acc"] == max(history[-5:])
    assert result.reward == pytest.approx(max(history[-5:]) ** 3)
    assert conv_reward([0.9, 0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx((0.5 ** 3, 0.5))
    assert result.metrics["params"] > 0 and result.metrics["steps"] == 12


@pytest.mark.slow
def test_conv_child_failures_are_isolated(shared_data):
    npz = shared_data("cifar10", "cifar10_subset.npz")
    diverged = tiny_conv(npz, epochs=1, lr=1e8).evaluate(TINY_CONV)
    assert diverged.failed and diverged.reward == 0.0 and "not finite" in diverged.error
    # a spec the conv builder cannot compile: a failed trial, not a crash
    broken = tiny_conv(npz, epochs=1).evaluate(FIGURE5_SPEC)
    assert broken.failed and broken.reward == 0.0 and broken.error


def test_missing_data_raises_naming_the_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data_dir"):
        tiny_lm(tmp_path).evaluate(FIGURE5_SPEC)
    with pytest.raises(FileNotFoundError, match="--cifar_npz"):
        ConvClassifierEvaluator(data_dir=str(tmp_path)).evaluate(TINY_CONV)


def test_child_flags_build_evaluators(parsed_flags, tmp_path):
    rnn = child_flags.evaluator_from_flags("rnn_lm")
    assert isinstance(rnn, RNNLanguageModelEvaluator)
    assert rnn.units == child_flags.PROXY_DEFAULTS["rnn_lm"]["units"]
    parsed_flags.child_target_params = 1_000_000
    parsed_flags.child_steps_per_epoch = 0
    parsed_flags.data_dir = str(tmp_path)
    rnn = child_flags.evaluator_from_flags("rnn_lm")
    assert rnn.units is None and rnn.target_params == 1_000_000
    assert rnn.steps_per_epoch is None and rnn.data_dir == str(tmp_path)
    conv = child_flags.evaluator_from_flags("conv_classifier", epochs=7)
    assert isinstance(conv, ConvClassifierEvaluator) and conv.epochs == 7
    assert conv.config()["subset"] == child_flags.PROXY_DEFAULTS["conv_classifier"]["subset"]
    assert isinstance(create_evaluator("rnn_lm", units=4), RNNLanguageModelEvaluator)


@pytest.mark.parametrize("name, value, message", [
    ("child_dropout", 1.5,
     r"Argument `--child_dropout` must be in \[0, 1\)\. Received: --child_dropout=1\.5"),
    ("child_epochs", 0, r"Argument `--child_epochs` must be >= 1\. Received: --child_epochs=0"),
    ("child_lr", -1.0, r"Argument `--child_lr` must be > 0\. Received: --child_lr=-1\.0"),
    ("cifar_npz", "/nonexistent.npz", "--cifar_npz"),
])
def test_validate_child_flags_rejects_bad_values(parsed_flags, name, value, message):
    setattr(parsed_flags, name, value)
    with pytest.raises(app.UsageError, match=message):
        child_flags.validate_child_flags()


def test_validate_child_flags_rejects_conflicts(parsed_flags):
    parsed_flags.child_units = 10
    parsed_flags.child_target_params = 1000
    with pytest.raises(app.UsageError, match="not both"):
        child_flags.validate_child_flags("rnn_lm")
