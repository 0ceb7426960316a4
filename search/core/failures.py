"""A guard against a search that only fails: stop after N failed trials in a row.

A failing child (a NaN loss, a build error, out of memory) is recorded with reward 0 and the
search goes on; that is right for the odd bad architecture, but when *every* trial fails (no
data, a broken evaluator, a bad flag the evaluator only notices when it runs) the search would
spend its whole budget at reward 0. `FailureStreak` counts consecutive failures; once the
limit is reached, the loop stops with `SearchFailedError`, whose message quotes the first
errors of the streak and says how to resume. Everything already finished stays in the run
directory. A search that ends with every trial failed (too few trials for the guard) is
reported with `all_failed_message`.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

DEFAULT_LIMIT = 10
_QUOTED = 3  # distinct errors quoted in the message


class SearchFailedError(RuntimeError):
    """The last ``limit`` trials of a search all failed; the message quotes their errors."""

    def __init__(self, message: str, failures: List[Tuple[int, str]]):
        super().__init__(message)
        self.failures = failures


class FailureStreak:
    """Consecutive failed trials, in finish order, and the errors of the first ones.

    Args:
      limit: stop after this many failures in a row; None or 0: never.
    """

    def __init__(self, limit: Optional[int] = DEFAULT_LIMIT):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise ValueError(f"Argument `max_consecutive_failures` must be an integer >= 0 "
                             f"(0: never stop). Received: max_consecutive_failures={limit!r}")
        self.limit = limit or 0
        self.failures: List[Tuple[int, str]] = []  # (trial id, first line of its error)

    def record(self, trial_id: int, failed: bool, error: Optional[str] = None) -> None:
        if not failed:
            self.failures = []
            return
        first_line = (error or "no error text").strip().splitlines()[:1]
        self.failures.append((int(trial_id), first_line[0] if first_line else "no error text"))

    @property
    def exceeded(self) -> bool:
        return bool(self.limit) and len(self.failures) >= self.limit

    def error(self, run_dir: str) -> SearchFailedError:
        seen, quoted = set(), []
        for trial_id, text in self.failures:
            if text not in seen:
                seen.add(text)
                quoted.append(f"trial {trial_id}: {text}")
            if len(quoted) == _QUOTED:
                break
        return SearchFailedError(
            f"the last {len(self.failures)} trials all failed, so the search stopped rather "
            f"than spend its budget at reward 0 (max_consecutive_failures={self.limit}). "
            f"First errors: {'; '.join(quoted)}. The full errors are in "
            f"{run_dir}/trials.sqlite. Fix the cause and run the same search again to resume "
            "(nothing finished is lost), or raise max_consecutive_failures (0: never stop).",
            list(self.failures))


def all_failed_message(run_dir: str, trials: Sequence[Any]) -> str:
    """One line for a search whose every finished trial failed: how many, the first distinct
    errors, and where the full ones are."""
    quoted: List[str] = []
    for t in trials:
        lines = (t.error or "no error text").strip().splitlines()
        line = lines[0] if lines else "no error text"
        if line not in quoted:
            quoted.append(line)
    return (f"every one of the {len(trials)} trials failed, so the search found no "
            f"architecture. First errors: {'; '.join(quoted[:_QUOTED])}. The full errors are "
            f"in {run_dir}/trials.sqlite.")
