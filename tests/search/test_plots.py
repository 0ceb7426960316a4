"""The reward plot of a run directory: a real PNG with every trial, failures marked, the best
so far; clear errors for a folder that is not a run or a run with nothing finished."""

import os

import pytest

from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.rundir.plots import REWARDS_FILE, draw_rewards, plot_rewards, run_title
from nascell.search.rundir.run_dir import RunDir, RunDirError

CONFIG = {"space": {"name": "toy"}, "strategy": {"name": "random"},
          "evaluator": {"name": "toy_eval"}, "m": 1}


def _run(path, outcomes):
    """A run directory whose trials finished as ``outcomes`` (a reward, or None: failed)."""
    run = RunDir.open_or_create(str(path), CONFIG)
    trials = [Trial(trial_id=i, decisions={"a": i}) for i in range(len(outcomes))]
    run.store.add(trials)
    for t, reward in zip(trials, outcomes):
        run.store.mark_running(t.trial_id)
        if reward is None:
            t.status, t.reward, t.error = TrialStatus.FAILED, 0.0, "diverged"
        else:
            t.status, t.reward = TrialStatus.DONE, reward
        run.store.finish(t)
    run.close()


def _png(path):
    import matplotlib.image
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05
    return image


def test_plot_rewards_writes_the_run_png(tmp_path):
    outcomes = [0.2, 0.5, None, 0.4, 0.7, 0.1, None, 0.65]
    _run(tmp_path / "run", outcomes)
    path = plot_rewards(str(tmp_path / "run"))
    assert path == str(tmp_path / "run" / REWARDS_FILE)
    _png(path)
    assert not [n for n in os.listdir(tmp_path / "run") if n.startswith(".tmp")]
    # Only the plot was added (the store was opened read-only).
    names = {n for n in os.listdir(tmp_path / "run") if not n.startswith("trials.sqlite-")}
    assert names == {"config.json", "trials.sqlite", REWARDS_FILE}


def test_draw_rewards_marks_failures_and_the_best(tmp_path):
    from matplotlib.figure import Figure

    trials = [Trial(i, {}, status=TrialStatus.DONE, reward=r) for i, r in
              enumerate([0.3, 0.1, 0.8, 0.5])]
    trials.insert(2, Trial(9, {}, status=TrialStatus.FAILED, reward=0.0, error="x"))
    trials.append(Trial(10, {}, status=TrialStatus.PENDING))
    saved = {}
    original = Figure.savefig

    def spy(fig, *args, **kwargs):
        ax = fig.axes[0]
        saved["labels"] = [t.get_text() for t in ax.get_legend().get_texts()]
        saved["texts"] = [t.get_text() for t in ax.texts]
        steps = [ln for ln in ax.get_lines() if ln.get_label() == "best so far"]
        saved["best"] = list(steps[0].get_ydata())
        return original(fig, *args, **kwargs)

    Figure.savefig = spy
    try:
        draw_rewards(trials, str(tmp_path / "r.png"), title="t")
    finally:
        Figure.savefig = original
    _png(str(tmp_path / "r.png"))
    assert saved["labels"] == ["trial", "failed (1)", "best so far"]
    assert saved["best"] == [0.3, 0.3, 0.3, 0.8, 0.8]  # a failure never counts as best
    assert saved["texts"] == ["best: trial 2, 0.8"]


def test_errors(tmp_path):
    with pytest.raises(RunDirError, match="not a nascell run directory"):
        plot_rewards(str(tmp_path))
    _run(tmp_path / "empty", [])
    with pytest.raises(ValueError, match="at least one finished trial"):
        plot_rewards(str(tmp_path / "empty"))
    assert not os.path.exists(tmp_path / "empty" / REWARDS_FILE)
    _run(tmp_path / "failed", [None, None])  # no plot of failures alone
    with pytest.raises(ValueError, match="at least one successful trial; all 2 finished"):
        plot_rewards(str(tmp_path / "failed"))
    assert not os.path.exists(tmp_path / "failed" / REWARDS_FILE)


def test_run_title_reads_both_config_styles():
    assert run_title(CONFIG, "/x/run1") == "run1: toy space, random, toy_eval evaluator"
    assert run_title({"space": "ptb", "strategy": "enas"}, "/x/r/") == "r: ptb space, enas"
