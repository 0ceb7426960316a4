"""TensorBoard summaries of a search, read back from the event files: the scalar curves
(reward, best so far, the strategy's baseline and entropy) and the HParams plugin's experiment
and one session per finished trial."""

import glob
import math
import os
import random
from typing import Any, Dict, List

import pytest
import runs_helpers as h

from nascell.search.core.evaluator import EvalResult, FunctionEvaluator
from nascell.search.core.loop import run_search
from nascell.search.core.space import Categorical, SearchSpace, Skips
from nascell.search.core.strategy import Proposal
from nascell.search.core.trial import TrialStatus
from nascell.search.rundir.store import TrialStore
from nascell.search.rundir.summaries import ScalarWriter, hparam_value

tf = pytest.importorskip("tensorflow")
hp_metadata = pytest.importorskip("tensorboard.plugins.hparams.metadata")


# -- reading event files back -----------------------------------------------------------------

def _values(logdir: str) -> List[Any]:
    """(step, Summary.Value) of every event file directly in `logdir` (not its sub-runs)."""
    out = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            out.extend((event.step, v) for v in event.summary.value)
    return out


def _scalars(logdir: str) -> Dict[str, List[tuple]]:
    """tag -> [(step, value)] of the scalars plugin's summaries in `logdir`."""
    out: Dict[str, List[tuple]] = {}
    for step, v in _values(logdir):
        if v.metadata.plugin_data.plugin_name == "scalars":
            out.setdefault(v.tag, []).append((step, float(tf.make_ndarray(v.tensor))))
    return out


def _hparams_data(logdir: str, parse) -> List[Any]:
    return [parse(v.metadata.plugin_data.content) for _, v in _values(logdir)
            if v.metadata.plugin_data.plugin_name == "hparams"
            and parse is _PARSERS.get(v.tag)]


_PARSERS = {"_hparams_/experiment": hp_metadata.parse_experiment_plugin_data,
            "_hparams_/session_start_info": hp_metadata.parse_session_start_info_plugin_data}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)  # float32 in the event file


# -- a small search whose every summary is known ------------------------------------------------

def _space() -> SearchSpace:
    return SearchSpace("summaries_toy",
                       [Categorical("op", ["conv3", "pool"]), Categorical("k", [1, 3, 5]),
                        Skips("in0", 0), Skips("in1", 1)],
                       decode=lambda d: f"{d['op']}/{d['k']}/{list(d['in1'])}")


def _evaluate(spec: str) -> EvalResult:
    op, k, skips = spec.split("/")
    if op == "pool" and k == "5":
        return EvalResult.failure("toy failure", {"accuracy": 0.0})
    accuracy = 0.1 * int(k) + (0.2 if op == "conv3" else 0.0) + (0.05 if skips != "[]" else 0)
    return EvalResult(reward=accuracy, metrics={"accuracy": accuracy, "note": "text"})


class _StatsStrategy(h.ToyRandomStrategy):
    """Random sampling that reports a known baseline and entropy after every tell."""

    name = "summaries_stats"

    def __init__(self, space, seed=0, **options):
        super().__init__(space, seed=seed, **options)
        self.reported: List[Dict[str, float]] = []

    def propose(self, n):
        out = []
        for i in range(n):
            tid = self.next_trial_id + i
            rng = random.Random(self.seed * 1009 + tid)
            decisions = {"op": rng.choice(["conv3", "pool"]), "k": rng.choice([1, 3, 5]),
                         "in0": (), "in1": (0,) if rng.random() < 0.5 else ()}
            out.append(Proposal(decisions))
            self.asked.append(tid)
        return out

    def summary_scalars(self) -> Dict[str, float]:
        stats = {"baseline": sum(self.rewards) / len(self.rewards),
                 "entropy": 1.0 / (1 + len(self.told))}
        self.reported.append(stats)
        return stats


def _run(tmp_path, num_trials=12):
    space = _space()
    strategy = _StatsStrategy(space, seed=4)
    run_dir = str(tmp_path / "run")
    result = run_search(space, strategy, FunctionEvaluator(_evaluate), run_dir,
                        num_trials=num_trials, m=1, progress=False)
    return run_dir, result, strategy


def test_search_scalars_are_written_with_their_values(tmp_path):
    run_dir, result, strategy = _run(tmp_path)
    scalars = _scalars(os.path.join(run_dir, "tensorboard"))
    trials = sorted(result.trials, key=lambda t: t.trial_id)  # m=1: finish order == id order
    assert len(trials) == 12 and any(t.status == TrialStatus.FAILED for t in trials)
    steps = list(range(1, 13))
    assert [s for s, _ in scalars["trial/reward"]] == steps
    assert all(_close(v, t.reward) for (_, v), t in zip(scalars["trial/reward"], trials))
    assert [v for _, v in scalars["trial/failed"]] == [
        float(t.status == TrialStatus.FAILED) for t in trials]
    best, expected = None, []
    for t in trials:
        if t.status == TrialStatus.DONE:
            best = t.reward if best is None else max(best, t.reward)
        expected.append(best)
    got_best = dict(scalars["search/best_reward"])
    assert all(_close(got_best[s], b) for s, b in zip(steps, expected) if b is not None)
    assert [s for s, _ in scalars["strategy/baseline"]] == steps
    assert all(_close(v, r["baseline"]) and _close(e, r["entropy"])
               for (_, v), (_, e), r in zip(scalars["strategy/baseline"],
                                            scalars["strategy/entropy"], strategy.reported))
    assert all(_close(v, t.metrics["accuracy"])
               for (_, v), t in zip(scalars["metrics/accuracy"], trials))
    assert "metrics/note" not in scalars  # not a number


def test_hparams_experiment_and_one_session_per_finished_trial(tmp_path):
    run_dir, result, _ = _run(tmp_path)
    logdir = os.path.join(run_dir, "tensorboard")
    experiments = _hparams_data(logdir, _PARSERS["_hparams_/experiment"])
    assert experiments, "no HParams experiment config was written"
    experiment = experiments[-1]
    infos = {i.name: i for i in experiment.hparam_infos}
    assert sorted(infos) == ["in0", "in1", "k", "op"]
    assert list(infos["op"].domain_discrete.values[i].string_value for i in range(2)) == [
        "conv3", "pool"]
    assert sorted(v.string_value for v in infos["k"].domain_discrete.values) == ["1", "3", "5"]
    assert not infos["in1"].HasField("domain_discrete")  # Skips: a free string
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {"reward", "failed", "accuracy"} <= metric_tags

    with TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True) as store:
        finished = store.finished()
    assert len(finished) == 12
    sessions = sorted(os.listdir(os.path.join(logdir, "trials")))
    assert sessions == sorted(str(t.trial_id) for t in finished)
    for t in finished:
        trial_dir = os.path.join(logdir, "trials", str(t.trial_id))
        (start,) = _hparams_data(trial_dir, _PARSERS["_hparams_/session_start_info"])
        assert start.group_name == str(t.trial_id)
        hparams = {k: v.string_value for k, v in start.hparams.items()}
        assert hparams == {k: hparam_value(v) for k, v in t.decisions.items()}
        assert hparams["in0"] == "[]" and hparams["in1"] in ("[]", "[0]")
        scalars = _scalars(trial_dir)
        assert scalars["reward"] == [(0, pytest.approx(t.reward, abs=1e-6))]
        assert scalars["failed"] == [(0, float(t.status == TrialStatus.FAILED))]
        assert scalars["accuracy"] == [(0, pytest.approx(t.metrics["accuracy"], abs=1e-6))]


def test_resume_adds_sessions_for_the_new_trials_only(tmp_path):
    run_dir, _, _ = _run(tmp_path, num_trials=4)
    space = _space()
    run_search(space, _StatsStrategy(space, seed=4), FunctionEvaluator(_evaluate), run_dir,
               num_trials=7, m=1, progress=False)
    logdir = os.path.join(run_dir, "tensorboard")
    assert sorted(os.listdir(os.path.join(logdir, "trials")), key=int) == [
        str(i) for i in range(7)]
    assert len(glob.glob(os.path.join(logdir, "trials", "0", "events.out.tfevents.*"))) == 1
    assert len(_hparams_data(logdir, _PARSERS["_hparams_/experiment"])) == 2  # one per run
    assert [s for s, _ in _scalars(logdir)["trial/reward"]] == [1, 2, 3, 4, 5, 6, 7]


def test_no_summaries_when_tensorboard_is_off(tmp_path):
    space = _space()
    run_search(space, _StatsStrategy(space), FunctionEvaluator(_evaluate),
               str(tmp_path / "run"), num_trials=3, progress=False, tensorboard=False)
    assert not os.path.exists(tmp_path / "run" / "tensorboard")


def test_writer_skips_non_numbers_and_learns_new_metrics(tmp_path):
    w = ScalarWriter(str(tmp_path))
    w.write(3, {"a": 1.5, "nan": float("nan"), "inf": float("inf"), "none": None,
                "flag": True, "text": "x"})
    w.write(4, {"nan": float("nan")})  # nothing finite: nothing written
    w.write_hparams_config(["x"], ["loss"])
    w.write_trial("7", {"x": 2}, 0.25, {"loss": 1.0})
    w.write_trial("8", {"x": 3}, float("nan"), {"loss": 2.0, "valid_ppl": 80.0})
    w.close()
    assert _scalars(str(tmp_path)) == {"a": [(3, 1.5)]}
    experiments = _hparams_data(str(tmp_path), _PARSERS["_hparams_/experiment"])
    assert [[m.name.tag for m in e.metric_infos] for e in experiments] == [
        ["reward", "loss"], ["reward", "loss", "valid_ppl"]]
    assert _scalars(str(tmp_path / "trials" / "7")) == {"reward": [(0, 0.25)],
                                                      "loss": [(0, 1.0)]}
    assert _scalars(str(tmp_path / "trials" / "8")) == {"loss": [(0, 2.0)],
                                                      "valid_ppl": [(0, 80.0)]}


def test_reinforce_search_logs_its_baseline(tmp_path):
    from nascell.search.core.strategy import create_strategy
    space = _space()
    strategy = create_strategy("reinforce", space, seed=1, preset="small_budget", m=2,
                               units=8, jit_compile=False)
    run_dir = str(tmp_path / "run")
    run_search(space, strategy, FunctionEvaluator(_evaluate), run_dir, num_trials=4, m=2,
               progress=False)
    scalars = _scalars(os.path.join(run_dir, "tensorboard"))
    assert scalars["strategy/baseline"], "the REINFORCE baseline was not logged"
    assert _close(scalars["strategy/baseline"][-1][1], strategy.last_stats["baseline"])
    assert len(scalars["strategy/log_prob"]) == 4  # per trial, from the trial's meta
    assert len(os.listdir(os.path.join(run_dir, "tensorboard", "trials"))) == 4
