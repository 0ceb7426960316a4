"""The search loop: failures, best specs, resume after crashes at awkward moments.

A real `kill -9` of a (parallel) search and its resume: tests/search/test_search_cli.py.
"""

import json
import os

import pytest
import runs_helpers as h

from nascell.search.core.loop import run_search
from nascell.search.core.trial import TrialStatus
from nascell.search.rundir.run_dir import ConfigMismatchError
from nascell.search.rundir.store import TrialStore


def _store(run_dir):
    return TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True)


def _strategy_state(run_dir):
    root = os.path.join(run_dir, "strategy")
    newest = sorted(os.listdir(root))[-1]
    return json.load(open(os.path.join(root, newest, "strategy_state.json")))


def test_failures_are_recorded_and_the_search_goes_on(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    strategy = h.ToyRandomStrategy(space, seed=3)
    result = run_search(space, strategy, h.ToySlowEvaluator(sleep=0, fail_a=9, nan_a=8),
                        run_dir, num_trials=25, m=4)
    assert result.num_done + result.num_failed == 25 and result.num_failed > 0
    for t in result.trials:
        a = t.decisions["a"]
        if a in (8, 9):
            assert t.status == TrialStatus.FAILED and t.reward == 0.0
            assert ("toy failure" if a == 9 else "non-finite reward") in t.error
        else:
            assert t.status == TrialStatus.DONE and t.reward == h.toy_reward(t.spec)
    assert sorted(strategy.told) == list(range(25))
    done = [t for t in result.trials if t.status == TrialStatus.DONE]
    assert result.best_reward == max(t.reward for t in done)
    best = json.load(open(os.path.join(run_dir, "best", "best.json")))
    assert best["trial_id"] == result.best.trial_id and best["spec"] == result.best.spec
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("trials 0/25") and "waiting for the first result" in lines[0]
    line = lines[-1]
    assert line.startswith("trials 25/25") and f"failed {result.num_failed}" in line
    assert "trials/min" in line and "ETA" in line


def test_a_search_whose_trials_all_fail_stops_and_resumes(tmp_path):
    """The failure guard: N failures in a row stop the search with the first errors quoted;
    once the cause is fixed, the same search resumes where it stopped."""
    from nascell.search.core.evaluator import FunctionEvaluator
    from nascell.search.core.failures import SearchFailedError
    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    broken = {"yes": True}

    def reward(spec):
        if broken["yes"]:
            raise FileNotFoundError("no data under /nowhere; pass --data_dir")
        return h.toy_reward(spec)

    evaluator = FunctionEvaluator(reward, name="maybe_broken")
    with pytest.raises(SearchFailedError) as info:
        run_search(space, h.ToyRandomStrategy(space, seed=2), evaluator, run_dir,
                   num_trials=40, m=2, progress=False, max_consecutive_failures=4)
    message = str(info.value)
    assert "the last 4 trials all failed" in message
    assert "trial 0: FileNotFoundError: no data under /nowhere; pass --data_dir" in message
    assert "run the same search again to resume" in message
    assert [t for t, _ in info.value.failures] == [0, 1, 2, 3]
    assert _store(run_dir).counts()["failed"] == 4
    broken["yes"] = False
    result = run_search(space, h.ToyRandomStrategy(space, seed=2), evaluator, run_dir,
                        num_trials=10, m=2, progress=False, max_consecutive_failures=4)
    assert result.num_failed == 4 and result.num_done == 6
    with pytest.raises(ValueError, match="Argument `max_consecutive_failures` must be"):
        run_search(space, h.ToyRandomStrategy(space), evaluator, str(tmp_path / "other"),
                   num_trials=3, max_consecutive_failures=-1)


def test_every_trial_failed_is_returned_and_logged_as_an_error(tmp_path, caplog):
    """Fewer trials than the failure guard's limit, all failed: `run_search` returns (as
    before) a result whose ``all_failed`` says so, and logs the first error as an error."""
    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    result = run_search(space, h.ToyRandomStrategy(space, seed=1),
                        h.ToySlowEvaluator(sleep=0, fail_a="all"), run_dir, num_trials=3,
                        progress=False)
    assert result.all_failed and result.best is None and result.num_failed == 3
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("every one of the 3 trials failed")
    assert "RuntimeError: toy failure for" in errors[0] and "trials.sqlite" in errors[0]
    ok = run_search(space, h.ToyRandomStrategy(space, seed=1), h.ToySlowEvaluator(sleep=0),
                    str(tmp_path / "ok"), num_trials=3, progress=False)
    assert not ok.all_failed and ok.best is not None


class _BadData(h.ToySlowEvaluator):
    """Its data is unusable for any architecture: `check_data` says so."""

    def check_data(self):
        from nascell.search.data import DataError
        raise DataError("the valid split has 3 tokens, too few for one batch")

    def evaluate(self, spec, trial_id=0):
        raise AssertionError("evaluate must not run when check_data fails")


def test_check_data_stops_the_search_before_anything_is_written(tmp_path):
    from nascell.search.data import DataError
    space = h.toy_space()
    run_dir = str(tmp_path / "run")
    with pytest.raises(DataError, match="the valid split has 3 tokens"):
        run_search(space, h.ToyRandomStrategy(space), _BadData(sleep=0), run_dir,
                   num_trials=3, progress=False)
    assert not os.path.exists(run_dir)


def test_resume_extends_and_continues_the_strategy(tmp_path):
    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    run_search(space, h.ToyRandomStrategy(space, seed=1), h.ToySlowEvaluator(sleep=0),
               run_dir, num_trials=6, m=4, progress=False)
    strategy = h.ToyRandomStrategy(space, seed=1)
    result = run_search(space, strategy, h.ToySlowEvaluator(sleep=0), run_dir, num_trials=10,
                        m=4, progress=False)
    assert result.resumed and len(result.trials) == 10
    # The restored strategy knew the first run's trials; it was told each trial exactly once.
    assert strategy.told == sorted(strategy.told) == list(range(10))
    assert strategy.asked[:8] == list(range(8))  # 2 asks of 4 in the first run
    # Asking for fewer trials than are done evaluates nothing more.
    again = run_search(space, h.ToyRandomStrategy(space, seed=1), h.ToySlowEvaluator(sleep=0),
                       run_dir, num_trials=5, m=4, progress=False)
    assert len(again.trials) == 10


def test_a_different_search_is_refused(tmp_path):
    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    run_search(space, h.ToyRandomStrategy(space, seed=1), h.ToySlowEvaluator(sleep=0),
               run_dir, num_trials=2, progress=False)
    with pytest.raises(ConfigMismatchError, match="strategy.seed"):
        run_search(space, h.ToyRandomStrategy(space, seed=2), h.ToySlowEvaluator(sleep=0),
                   run_dir, num_trials=4, progress=False)
    assert _store(run_dir).counts()["done"] == 2


class _Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


class _CrashingEvaluator(h.ToySlowEvaluator):
    def __init__(self, crash_on, log_path):
        super().__init__(sleep=0, log_path=log_path)
        self.crash_on = crash_on

    def config(self):
        return {"name": self.name, "fail_a": -1, "nan_a": -1}

    def evaluate(self, spec, trial_id=0):
        if trial_id == self.crash_on:
            raise _Crash()
        return super().evaluate(spec, trial_id)


@pytest.mark.parametrize("checkpoint_every", [1, 4])
def test_crash_mid_trial_reevaluates_same_decisions_once(tmp_path, checkpoint_every):
    run_dir, log = str(tmp_path / "run"), str(tmp_path / "evals.log")
    space = h.toy_space()
    first = h.ToyRandomStrategy(space, seed=5)
    with pytest.raises(_Crash):
        run_search(space, first, _CrashingEvaluator(6, log), run_dir, num_trials=12, m=3,
                   progress=False, checkpoint_every=checkpoint_every)
    store = _store(run_dir)
    crashed = store.get(6)
    assert crashed.status == TrialStatus.RUNNING
    assert store.counts()["done"] == 6
    store.close()
    strategy = h.ToyRandomStrategy(space, seed=5)
    result = run_search(space, strategy, _CrashingEvaluator(-1, log), run_dir, num_trials=12,
                        m=3, progress=False, checkpoint_every=checkpoint_every)
    ids = [int(line.split()[0]) for line in open(log)]
    assert sorted(ids) == list(range(12))  # every trial evaluated to the end exactly once
    assert result.trials[6].decisions == crashed.decisions
    assert strategy.told == sorted(strategy.told) or sorted(strategy.told) == list(range(12))
    assert sorted(strategy.told) == list(range(12))
    assert len(strategy.told) == 12  # re-told from the store, never twice
    assert _store(run_dir).attempts(6) == 2


def test_the_contracts_are_declared(tmp_path):
    """Strategy and Evaluator are abstract classes; their optional hooks are documented
    defaults the loop calls; run_search refuses an object that is neither, before any work."""
    from nascell.search.core.evaluator import Evaluator, FunctionEvaluator
    from nascell.search.core.strategy import Proposal, Strategy

    class HalfStrategy(Strategy):  # propose without observe
        name = "half"

        def propose(self, n):
            return [Proposal({"a": 0, "b": 0})]

    space = h.toy_space(3)
    with pytest.raises(TypeError, match="observe"):
        HalfStrategy(space)
    with pytest.raises(TypeError, match="evaluate"):
        type("NoEvaluate", (Evaluator,), {})()
    strategy, evaluator = h.ToyRandomStrategy(space), FunctionEvaluator(lambda spec: 1.0)
    assert (strategy.m, strategy.checkpoint_every, strategy.planned_trials()) == (None, 1, None)
    assert strategy.bind(None) is None and strategy.result_phase is None
    assert evaluator.shared_task(space) is None and evaluator.in_process_only is False
    assert Evaluator.trained_weights(None, {}) is None
    run_dir = tmp_path / "run"
    with pytest.raises(TypeError, match="Argument `evaluator` must be a nascell.search.Evaluator"):
        run_search(space, strategy, lambda spec: 1.0, str(run_dir), num_trials=1, progress=False)
    with pytest.raises(TypeError, match="Argument `strategy` must be a nascell.search.Strategy"):
        run_search(space, object(), evaluator, str(run_dir), num_trials=1, progress=False)
    assert not run_dir.exists()
    # a strategy's before_evaluate runs before each evaluation, in order
    seen = []
    strategy.before_evaluate = lambda trial: seen.append(trial.trial_id)
    result = run_search(space, strategy, evaluator, str(run_dir), num_trials=3, m=3,
                        progress=False)
    assert result.num_done == 3 and seen == [0, 1, 2]


def test_the_progress_line_shows_the_best_trials_score_beside_its_reward(tmp_path, capsys):
    """An evaluator's `score_metric` (what a user reads: validation perplexity, accuracy) is
    shown beside the best reward; a resumed search shows the stored best trial's."""
    from nascell.search.core.evaluator import EvalResult, Evaluator
    from nascell.search.core.progress import score_text

    class Perplexity(Evaluator):
        name = "toy_ppl"
        score_metric = "valid_ppl"

        def evaluate(self, spec, trial_id=0):
            ppl = 100.0 + h.toy_reward(spec) * 10
            return EvalResult(reward=80.0 / ppl ** 2, metrics={"valid_ppl": ppl})

    run_dir = str(tmp_path / "run")
    space = h.toy_space()
    result = run_search(space, h.ToyRandomStrategy(space, seed=1), Perplexity(), run_dir,
                        num_trials=6)
    best_ppl = result.best.metrics["valid_ppl"]
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"best {result.best.reward:.4g} (valid ppl {best_ppl:.4g})" in line
    run_search(space, h.ToyRandomStrategy(space, seed=1), Perplexity(), run_dir, num_trials=6)
    first = capsys.readouterr().err.strip().splitlines()[0]
    assert f"(valid ppl {best_ppl:.4g})" in first  # known at once on resume
    assert score_text(None, {"valid_ppl": 1.0}) == ""
    assert score_text("valid_acc", {"valid_acc": 0.91234}) == "valid acc 0.9123"
    assert score_text("valid_acc", {}) == ""
