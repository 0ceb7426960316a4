"""The search's progress line on the console: trials done/total, failed, best, rate, ETA.

`run_search` (``progress=True``) writes one line per update, rewritten in place on a terminal
and appended otherwise (a log file), at most once a second.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional, TextIO


def score_text(metric: Optional[str], metrics: Optional[Dict[str, Any]]) -> str:
    """``"valid ppl 462.1"``: the evaluator's `score_metric` of a trial's metrics, as a user
    reads it, or "" when there is none."""
    if not metric or not metrics or not isinstance(metrics.get(metric), (int, float)):
        return ""
    return f"{metric.replace('_', ' ')} {float(metrics[metric]):.4g}"


class Progress:
    """One console line: trials done/total, failed, best reward, trials/min, ETA."""

    def __init__(self, total: int, stream: TextIO, every: float = 1.0):
        self.total, self.stream, self.every = total, stream, every
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start_time = time.time()
        self.start_done = 0
        self.last = 0.0
        self.line = ""

    def start(self, done: int, failed: int, best: Optional[float], score: str = "") -> None:
        self.start_time, self.start_done = time.time(), done
        self.update(done, failed, best, force=True, score=score)

    def update(self, done: int, failed: int, best: Optional[float], force: bool = False,
               score: str = "") -> None:
        """``best``: the best reward so far; ``score``: its trial's `score_text` (shown
        beside it, e.g. ``best 0.000375 (valid ppl 462.1)``)."""
        now = time.time()
        if not force and done < self.total and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.start_time, 1e-9)
        rate = (done - self.start_done) / elapsed * 60.0
        remaining = self.total - done
        eta = "?" if rate <= 0 else _duration(remaining / rate * 60.0)
        best_text = "-" if best is None else f"{best:.4g}" + (f" ({score})" if score else "")
        self.line = (f"trials {done}/{self.total}  failed {failed}  best {best_text}  "
                     f"{rate:.1f} trials/min  ETA {eta}")
        if done == self.start_done and done < self.total:  # the long first step, said once
            self.line = (f"trials {done}/{self.total}  failed {failed}  best {best_text}  "
                         f"waiting for the first result (loading data, building and tracing "
                         f"the first child)")
        if self.tty:
            self.stream.write("\r" + self.line + "\033[K")
        else:
            self.stream.write(self.line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    mnt, s = divmod(rest, 60)
    return f"{h}h{mnt:02d}m" if h else f"{mnt}m{s:02d}s"
