"""The search keeps the trained weights of its best trials: top K by reward, written whole
(a crash mid-write leaves nothing taken for a whole folder), pruned as better trials come,
cleaned up on resume, and switched off with keep_weights=0."""

import os

import pytest
import runs_helpers as h

from nascell.search.core.evaluator import EvalResult
from nascell.search.core.loop import run_search
from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.rundir.store import TrialStore
from nascell.search.rundir.weights import WeightsKeeper, trial_folder


def _kept(run_dir):
    root = os.path.join(run_dir, "weights")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def _top(trials, k):
    done = [t for t in trials if t.status == TrialStatus.DONE]
    done.sort(key=lambda t: (-t.reward, t.trial_id))
    return sorted(f"trial_{t.trial_id}" for t in done[:k])


def test_the_best_k_trials_keep_their_weights(tmp_path):
    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    result = run_search(space, h.ToyRandomStrategy(space, seed=1), h.WeightsEvaluator(nan_a=4),
                        run_dir, num_trials=12, keep_weights=3, progress=False,
                        tensorboard=False)
    assert result.num_failed > 0  # failed trials (NaN) never keep weights
    assert _kept(run_dir) == _top(result.trials, 3)
    assert f"trial_{result.best.trial_id}" in _kept(run_dir)
    folder = trial_folder(run_dir, result.best.trial_id)
    assert sorted(os.listdir(folder)) == ["model.json", "model.weights.h5"]
    with open(os.path.join(folder, "model.weights.h5"), "rb") as f:
        assert f.read() == result.best.spec.encode() * 1000

    # More trials on the same run directory: still the best 3 of all of them.
    result = run_search(space, h.ToyRandomStrategy(space, seed=1), h.WeightsEvaluator(nan_a=4),
                        run_dir, num_trials=30, keep_weights=3, progress=False,
                        tensorboard=False)
    assert _kept(run_dir) == _top(result.trials, 3)


def test_keep_weights_zero_keeps_none_and_asks_for_none(tmp_path):
    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    evaluator = h.WeightsEvaluator()
    run_search(space, h.ToyRandomStrategy(space), evaluator, run_dir, num_trials=5,
               keep_weights=0, progress=False, tensorboard=False)
    assert evaluator.return_weights is False and _kept(run_dir) == []
    with pytest.raises(ValueError, match="Argument `keep_weights` must be a non-negative"):
        run_search(space, h.ToyRandomStrategy(space), evaluator, run_dir, num_trials=5,
                   keep_weights=-1)


def test_offer_decides_at_once_and_drops_the_bytes(tmp_path):
    keeper = WeightsKeeper(str(tmp_path), keep=2)
    results = []
    for trial_id, reward in enumerate([0.5, 0.7, 0.2, 0.9]):
        trial = Trial(trial_id, {}, None, status=TrialStatus.DONE, reward=reward)
        result = EvalResult(reward=reward, weights={"model.json": b"{}"})
        results.append(keeper.offer(trial, result))
        assert result.weights is None  # never held after the decision
        keeper.prune()
    # 0.2 never entered the top 2; 0.5 entered, then fell out when 0.9 came.
    assert results == [True, True, False, True]
    assert _kept(str(tmp_path)) == ["trial_1", "trial_3"]
    failed = Trial(9, {}, None, status=TrialStatus.FAILED, reward=0.0)
    assert not keeper.offer(failed, EvalResult(reward=0.0, weights={"model.json": b"{}"}))
    with pytest.raises(ValueError, match="non-negative"):
        WeightsKeeper(str(tmp_path), keep=-1)


def test_resume_cleans_half_writes_and_weights_of_unfinished_trials(tmp_path):
    """What a kill -9 can leave: a half-written hidden folder, a half-removed one, the whole
    folder of a trial the store never committed (killed between the write and the commit),
    and more folders than K (killed before the pruning)."""
    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    result = run_search(space, h.ToyRandomStrategy(space, seed=2), h.WeightsEvaluator(),
                        run_dir, num_trials=6, keep_weights=4, progress=False,
                        tensorboard=False)
    weights = os.path.join(run_dir, "weights")
    os.makedirs(os.path.join(weights, ".trial_7.tmp-abc"))
    with open(os.path.join(weights, ".trial_7.tmp-abc", "model.weights.h5"), "wb") as f:
        f.write(b"half")
    os.makedirs(os.path.join(weights, ".trial_1.old-xyz"))
    os.makedirs(os.path.join(weights, "trial_6"))  # trial 6: pending in the store
    with open(os.path.join(weights, "notes.txt"), "w") as f:
        f.write("a user's file is left alone")
    with TrialStore(os.path.join(run_dir, "trials.sqlite")) as store:
        store.add([Trial(6, {"a": 0, "b": 0}, "0-0")])
    assert len([n for n in _kept(run_dir) if n.startswith("trial_")]) == 5
    # Resumed with a smaller K: leftovers gone, trial 6 evaluated again, the best 2 kept.
    result = run_search(space, h.ToyRandomStrategy(space, seed=2), h.WeightsEvaluator(),
                        run_dir, num_trials=7, keep_weights=2, progress=False,
                        tensorboard=False)
    assert _kept(run_dir) == sorted(_top(result.trials, 2) + ["notes.txt"])
