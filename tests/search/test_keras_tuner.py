"""nascell.search.keras_tuner: KerasTuner hyperparameters as a nascell space, and the Oracle.

A real tiny KerasTuner search runs for every registered strategy; the oracle's logic (rewards,
failures, repeats, growth, save/reload) is checked with a tuner whose trial is a function of
the hyperparameters, so those tests train nothing.
"""

import json
import math

import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner")

import nascell.search.keras_tuner as nkt  # noqa: E402
from nascell.search.core import strategy as strategy_registry  # noqa: E402
from nascell.search.integrations.keras_tuner.hp_space import HPSpace  # noqa: E402

# Every strategy nascell registers (not those other test modules register for themselves).
STRATEGIES = [n for n in strategy_registry.available_strategies()
              if strategy_registry._REGISTRY[n].__module__.startswith("nascell.")]

# The controller strategies skip XLA here: compiling costs more than these few trials.
FAST = {"reinforce": {"jit_compile": False}, "enas": {"jit_compile": False}}
COMPLETED = kt.engine.trial.TrialStatus.COMPLETED
FAILED = kt.engine.trial.TrialStatus.FAILED


def _options(name, **extra):
    return {**FAST.get(name, {}), **extra}


# --- translation -------------------------------------------------------------------------------

def _space(build):
    hp = kt.HyperParameters()
    build(hp)
    return HPSpace(hp)


def test_choice_boolean_fixed_int():
    def build(hp):
        hp.Choice("act", ["relu", "tanh", "gelu"])
        hp.Boolean("bn")
        hp.Fixed("epochs", 3)
        hp.Int("units", 8, 32, step=8)
        hp.Int("layers", 1, 3)
        hp.Int("batch", 16, 128, step=2, sampling="log")

    s = _space(build)
    assert [d.name for d in s.space.decisions] == ["act", "bn", "units", "layers", "batch"]
    assert s.space["act"].choices == ("relu", "tanh", "gelu")
    assert s.space["bn"].choices == (False, True)
    assert s.space["units"].choices == (8, 16, 24, 32)
    assert s.space["layers"].choices == (1, 2, 3)
    assert s.space["batch"].choices == (16, 32, 64, 128)
    assert s.num_configurations() == 3 * 2 * 4 * 3 * 4
    d = {"act": "tanh", "bn": True, "units": 24, "layers": 2, "batch": 64}
    values = s.values(d)
    assert values == {**d, "epochs": 3}  # Fixed values come along
    assert s.decisions(values) == d


def test_float_rule():
    def build(hp):
        hp.Float("drop", 0.0, 0.5, step=0.1)
        hp.Float("lr", 1e-4, 1e-1, sampling="log")
        hp.Float("mom", 0.5, 0.9)
        hp.Float("wd", 1e-5, 1e-1, step=10, sampling="log")
        hp.Int("width", 1, 1000, sampling="log")

    s = _space(build)
    assert s.space["drop"].choices == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # 12 significant digits
    lr = s.space["lr"].choices
    assert len(lr) == 10 and lr[0] == 1e-4 and lr[-1] == 0.1
    np.testing.assert_allclose(np.diff(np.log(lr)), np.log(1000) / 9, rtol=1e-9)
    np.testing.assert_allclose(s.space["mom"].choices, np.linspace(0.5, 0.9, 10))
    np.testing.assert_allclose(s.space["wd"].choices, [1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    assert s.space["width"].choices == (1, 2, 5, 10, 22, 46, 100, 215, 464, 1000)
    # off-grid values (a default, a user's value) snap to the nearest point of the scale
    assert s.decisions({"drop": 0.26, "lr": 1.1e-4, "mom": 0.9, "wd": 3e-3, "width": 30}) == {
        "drop": 0.3, "lr": 1e-4, "mom": 0.9, "wd": 1e-3, "width": 22}


def test_float_points_and_max_choices():
    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    hp.Int("units", 1, 1000)
    s = HPSpace(hp, float_points=3, max_choices=5)
    assert s.space["x"].choices == (0.0, 0.5, 1.0)
    assert s.space["units"].choices == (1, 251, 500, 750, 1000)  # thinned, ends kept


def test_conditional_scopes_are_handled():
    def build(hp):
        model = hp.Choice("model", ["mlp", "cnn"])
        with hp.conditional_scope("model", ["mlp"]):
            hp.Int("units", 8, 16, step=8)
        with hp.conditional_scope("model", ["cnn"]):
            hp.Int("units", 4, 12, step=4)
            hp.Boolean("pool")
        return model

    s = _space(build)
    assert [d.name for d in s.space.decisions] == ["model", "units", "units#2", "pool"]
    assert s.num_configurations() is None  # not a product: conditions
    d = {"model": "mlp", "units": 16, "units#2": 12, "pool": True}
    assert s.values(d) == {"model": "mlp", "units": 16}  # inactive hps dropped
    assert s.values({**d, "model": "cnn"}) == {"model": "cnn", "units": 12, "pool": True}


def test_unknown_hp_type_and_bad_arguments():
    class Odd(kt.engine.hyperparameters.Fixed):
        pass

    hp = kt.HyperParameters()
    hp._register(Odd("x", 1))
    assert HPSpace(hp).space is None  # a Fixed subclass is still Fixed

    class Weird:
        name, conditions = "w", []

    with pytest.raises(TypeError, match="Choice, Int, Float, Boolean and Fixed"):
        nkt.hp_space._choices(Weird(), 10, 100)
    with pytest.raises(ValueError, match="Argument `strategy` must be one of"):
        nkt.Oracle("nope")
    with pytest.raises(ValueError, match="Argument `float_points` must be an integer >= 2"):
        nkt.Oracle("random", float_points=1)
    with pytest.raises(ValueError, match="`strategy_options` does not suit strategy 'evolution'"):
        nkt.Oracle("evolution", strategy_options={"population_size": 4})  # tournament 5 > 4
    assert nkt.Oracle("random", seed=0).seed == 0  # KerasTuner alone would draw a random seed


# --- a tuner that trains nothing: the trial's score is a function of its values ---------------

class FnTuner(kt.engine.base_tuner.BaseTuner):
    def run_trial(self, trial, fn):
        return fn(trial.hyperparameters)


def _fn_tuner(tmp_path, name, build, max_trials, objective="score", direction="max",
              overwrite=True, project_name="p", **oracle_kwargs):
    oracle = nkt.Oracle(name, objective=kt.Objective(objective, direction),
                        max_trials=max_trials, seed=7,
                        strategy_options=_options(name, **oracle_kwargs.pop("options", {})),
                        **oracle_kwargs)
    tuner = FnTuner(oracle=oracle, hypermodel=build, directory=str(tmp_path),
                    project_name=project_name, overwrite=overwrite)
    tuner.oracle.verbose = 0
    return tuner


def _build_grid(hp):
    hp.Choice("a", [0, 1, 2, 3])
    hp.Choice("b", ["x", "y", "z"])


def _score(hp):
    return {"score": hp["a"] + (1.5 if hp["b"] == "y" else 0.0)}


def _values(tuner):
    o = tuner.oracle
    return [o.trials[t].hyperparameters.values for t in o.start_order]


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.slow
def test_every_strategy_exhausts_a_small_space_without_repeats(tmp_path, name):
    def build(hp):
        hp.Choice("a", [1, 2, 3])
        hp.Choice("b", ["x", "y"])

    tuner = _fn_tuner(tmp_path, name, build, max_trials=20)
    tuner.search(_score)
    values = _values(tuner)
    assert len(values) == 6  # stopped once every configuration had run
    assert len({json.dumps(v, sort_keys=True) for v in values}) == 6
    assert tuner.oracle._told == set(tuner.oracle.end_order)
    assert tuner.get_best_hyperparameters()[0].values == {"a": 3, "b": "y"}


def test_min_objective_is_negated_and_failures_get_the_worst_reward(tmp_path):
    def score(hp):
        if hp["a"] == 2:
            raise RuntimeError("this configuration does not train")
        return {"loss": 10.0 - hp["a"]}

    tuner = _fn_tuner(tmp_path, "evolution", _build_grid, max_trials=8, objective="loss",
                      direction="min", max_consecutive_failed_trials=12)
    tuner.search(score)
    o = tuner.oracle
    done = [o.trials[t] for t in o.end_order if o.trials[t].status == COMPLETED]
    failed = [o.trials[t] for t in o.end_order if o.trials[t].status == FAILED]
    assert failed and done and len(o._told) == 8
    expected = [-t.score for t in done]  # a loss is negated into a reward
    for t in failed:  # the worst reward of the trials completed before it (or the first one)
        k = o.end_order.index(t.trial_id)
        before = [-d.score for d in done if o.end_order.index(d.trial_id) < k] or [-done[0].score]
        expected.append(min(before))
    assert sorted(r for _, _, r in o.strategy.population) == sorted(expected)


def test_failures_before_any_result_are_told_later(tmp_path):
    state = {"calls": 0}

    def score(hp):
        state["calls"] += 1
        if state["calls"] <= 2:
            raise RuntimeError("fails")
        return {"score": float(hp["a"])}

    tuner = _fn_tuner(tmp_path, "random", _build_grid, max_trials=4)
    tuner.search(score)
    o = tuner.oracle
    assert [o.trials[t].status for t in o.end_order] == [FAILED, FAILED, COMPLETED, COMPLETED]
    assert o._told == set(o.end_order) and o.strategy.num_told == 4


def test_repeats_are_told_the_known_reward_not_rerun(tmp_path):
    # evolution without its own dedupe proposes repeats; the oracle answers them itself
    tuner = _fn_tuner(tmp_path, "evolution", _build_grid, max_trials=12,
                      options={"dedupe": False, "population_size": 2, "tournament_size": 2})
    tuner.search(_score)
    o = tuner.oracle
    assert len({json.dumps(v, sort_keys=True) for v in _values(tuner)}) == len(o.trials) == 12
    assert o.strategy.num_told > 12  # the extra tells are repeats answered from known rewards


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.slow
def test_reload_continues_the_search(tmp_path, name):
    def build(hp):
        hp.Int("a", 0, 9)
        hp.Choice("b", ["x", "y", "z"])
        hp.Float("c", 0.0, 1.0)

    def score(hp):
        return {"score": hp["a"] - 3 * abs(hp["c"] - 0.5) + (hp["b"] == "z")}

    straight = _fn_tuner(tmp_path / "straight", name, build, max_trials=10)
    straight.search(score)
    first = _fn_tuner(tmp_path / "resumed", name, build, max_trials=6)
    first.search(score)
    again = _fn_tuner(tmp_path / "resumed", name, build, max_trials=10, overwrite=False)
    assert again.oracle.strategy is not None and len(again.oracle.trials) == 6
    again.search(score)
    assert _values(again) == _values(straight)  # exactly the uninterrupted search
    assert again.oracle._told == set(again.oracle.end_order) and len(again.oracle._told) == 10
    with pytest.raises(ValueError, match="searched with strategy"):
        _fn_tuner(tmp_path / "resumed", "random" if name != "random" else "evolution", build,
                  max_trials=10, overwrite=False)


def test_hyperparameters_declared_late_rebuild_the_strategy(tmp_path):
    def score(hp):
        extra = hp.Int("late", 0, 4)  # registered by KerasTuner when the trial ends
        return {"score": hp["a"] + extra}

    tuner = _fn_tuner(tmp_path, "evolution", _build_grid, max_trials=6)
    tuner.search(score)
    o = tuner.oracle
    assert o.trials[o.start_order[0]].hyperparameters.values.get("late", 0) == 0
    assert "late" in [d.name for d in o.strategy.space.decisions]
    assert len(o.strategy.population) == 6  # the first trial was replayed into the new one
    assert {o.trials[t].hyperparameters.values["late"] for t in o.start_order[1:]} != {0}


def test_trials_the_strategy_did_not_propose_never_reuse_its_ids(tmp_path):
    # runs_helpers' toy_random refuses a trial id told twice; after the space grows, the
    # finished trials are replayed into a fresh strategy under ids of their own
    import runs_helpers  # noqa: F401 - registers toy_random

    def score(hp):
        return {"score": hp["a"] + hp.Int("late", 0, 2)}

    tuner = _fn_tuner(tmp_path, "toy_random", _build_grid, max_trials=10)
    tuner.search(score)
    told = tuner.oracle.strategy.told
    assert len(tuner.oracle._told) == 10 and len(told) == len(set(told)) >= 10
    assert min(told) < 0 <= max(told)  # replayed (negative ids) and proposed trials


def test_conditional_search(tmp_path):
    def build(hp):
        hp.Choice("model", ["small", "big"])
        with hp.conditional_scope("model", ["big"]):
            hp.Int("width", 2, 4)

    def score(hp):
        return {"score": 1.0 if hp["model"] == "small" else float(hp["width"])}

    tuner = _fn_tuner(tmp_path, "random", build, max_trials=10)
    tuner.search(score)
    values = _values(tuner)
    assert len(values) == 4  # small, big/2, big/3, big/4: the space holds 4, not 2 x 3
    assert {"model": "small"} in values


# --- a real, tiny KerasTuner search -----------------------------------------------------------

def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6)).astype("float32")
    return x, (x[:, 0] - x[:, 1] > 0).astype("int32")


def build_model(hp):
    import keras

    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(hp.Int("units", 4, 12, step=4),
                           activation=hp.Choice("act", ["relu", "tanh"])),
        keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
                  "sparse_categorical_crossentropy", metrics=["accuracy"],
                  run_eagerly=True)  # no tracing: these models train for 2 steps
    return model


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.slow
def test_real_keras_search(tmp_path, name):
    x, y = _data()
    tuner = kt.Tuner(oracle=nkt.Oracle(name, objective="val_accuracy", max_trials=3, seed=1,
                                       strategy_options=_options(name)),
                     hypermodel=build_model, directory=str(tmp_path), project_name="p")
    tuner.search(x, y, epochs=1, batch_size=32, validation_split=0.25, verbose=0)
    o = tuner.oracle
    assert len(o.trials) == 3 and all(t.status == COMPLETED for t in o.trials.values())
    assert all(math.isfinite(t.score) for t in o.trials.values())
    assert o._told == set(o.end_order)
    best = tuner.get_best_hyperparameters()[0].values
    assert best["units"] in (4, 8, 12) and best["act"] in ("relu", "tanh")
    assert tuner.get_best_models(1)[0].predict(x[:2], verbose=0).shape == (2, 2)


def test_strategy_search_is_a_ready_made_tuner(tmp_path):
    x, y = _data()
    tuner = nkt.StrategySearch(build_model, strategy="evolution", objective="val_loss",
                               max_trials=2, seed=3,
                               strategy_options={"population_size": 4, "tournament_size": 2},
                               directory=str(tmp_path), project_name="p")
    assert isinstance(tuner, kt.Tuner) and isinstance(tuner.oracle, nkt.Oracle)
    assert tuner.oracle.objective.direction == "min"
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    o = tuner.oracle
    assert len(o.trials) == 2 and o.strategy.population_size == 4
    assert sorted(r for _, _, r in o.strategy.population) == sorted(
        -t.score for t in o.trials.values())
