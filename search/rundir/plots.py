"""A finished search at a glance: every trial's reward, failures marked, the best so far.

    from nascell.search.rundir.plots import plot_rewards
    plot_rewards("runs/ptb")              # writes runs/ptb/rewards.png

Trials are drawn in the order they finished (what the strategy learned from, and what
"best so far" means when children run in parallel): done trials as dots, failed trials as red
crosses at their reward (0 by convention), the best reward so far as a step line, and the best
trial named. The figure is drawn with matplotlib's object API (no pyplot, no display), so it
works in any thread and on a machine without a screen.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.rundir.run_dir import RunDir

REWARDS_FILE = "rewards.png"

__all__ = ["REWARDS_FILE", "plot_rewards", "draw_rewards", "run_title"]


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name", "?"))
    return "?" if value is None else str(value)


def run_title(config: Dict[str, Any], path: str) -> str:
    """``"<run folder>: <space> space, <strategy>"`` from a run directory's config."""
    parts = [f"{_name(config.get('space'))} space", _name(config.get("strategy"))]
    if config.get("evaluator") is not None:
        parts.append(f"{_name(config.get('evaluator'))} evaluator")
    return f"{os.path.basename(os.path.normpath(path))}: {', '.join(parts)}"


def draw_rewards(trials: Sequence[Trial], path: str, title: str = "rewards",
                 dpi: int = 120) -> str:
    """Plot finished ``trials`` (in the order given: their finish order) into ``path`` (a PNG,
    or any format matplotlib writes, by extension); returns ``path``.

    Raises:
        ValueError: no trial has succeeded (none finished, or every one failed), so there is
            no reward to plot.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    finished = [t for t in trials if t.status in (TrialStatus.DONE, TrialStatus.FAILED)]
    if not finished:
        raise ValueError("Argument `trials` must hold at least one finished trial; none of "
                         f"the {len(trials)} given has finished, so there is nothing to plot")
    if not any(t.status == TrialStatus.DONE for t in finished):
        raise ValueError(f"Argument `trials` must hold at least one successful trial; all "
                         f"{len(finished)} finished trials failed, so there is no reward to "
                         "plot")
    done_x, done_y, fail_x, fail_y = [], [], [], []
    best_x: List[float] = []
    best_y: List[float] = []
    best: Optional[Trial] = None
    best_at = 0
    for i, t in enumerate(finished, start=1):
        reward = float(t.reward) if t.reward is not None else 0.0
        if t.status == TrialStatus.FAILED:
            fail_x.append(i)
            fail_y.append(reward)
        else:
            done_x.append(i)
            done_y.append(reward)
            if best is None or reward > float(best.reward):
                best, best_at = t, i
        if best is not None:
            best_x.append(i)
            best_y.append(float(best.reward))

    fig = Figure(figsize=(8.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(done_x, done_y, s=14, color="#4f81bd", alpha=0.75, label="trial", zorder=2)
    if fail_x:
        ax.scatter(fail_x, fail_y, s=36, marker="x", color="#c0504d", linewidths=1.5,
                   label=f"failed ({len(fail_x)})", zorder=3)
    if best is not None:
        ax.step(best_x, best_y, where="post", color="#222222", lw=1.6, label="best so far",
                zorder=4)
        ax.scatter([best_at], [float(best.reward)], s=90, marker="*", color="#f2b600",
                   edgecolors="#222222", linewidths=0.6, zorder=5)
        right = best_at > 0.6 * len(finished)
        ax.annotate(f"best: trial {best.trial_id}, {float(best.reward):.4g}",
                    (best_at, float(best.reward)), xytext=(-8 if right else 8, 6),
                    textcoords="offset points", ha="right" if right else "left", fontsize=9)
    ax.set_xlabel("trials finished")
    ax.set_ylabel("reward")
    ax.set_title(title, fontsize=11)
    ax.grid(True, color="#dddddd", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_xlim(0, len(finished) + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are counted
    ax.margins(y=0.1)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)  # where it hides the fewest points
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        fig.savefig(tmp, dpi=dpi, format=os.path.splitext(path)[1][1:] or "png")
        os.replace(tmp, path)  # a reader sees the old plot or the new one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def plot_rewards(run_dir: str, path: Optional[str] = None) -> str:
    """Write ``<run_dir>/rewards.png`` (or ``path``) for the trials the run has finished.

    Reads the run through `RunDir.open_existing` (read-only), so it is safe on a run that is
    still going. Raises `RunDirError` for a folder that is not a run directory, and
    ValueError when no trial has succeeded yet (none finished, or every one failed).
    """
    run = RunDir.open_existing(run_dir, readonly=True)
    try:
        trials = run.store.finished()
        title = run_title(run.config, run.path)
        target = path or os.path.join(run.path, REWARDS_FILE)
    finally:
        run.close()
    return draw_rewards(trials, target, title=title)
