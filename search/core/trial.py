"""A trial: one sampled architecture, its decisions by name, its spec, and what became of it."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Dict, Optional


class TrialStatus(str, enum.Enum):
    PENDING = "pending"  # asked for, not yet evaluated
    RUNNING = "running"  # handed to an executor
    DONE = "done"  # evaluated; `reward` holds the reward
    FAILED = "failed"  # evaluation failed; `reward` is 0 and `error` says why


@dataclasses.dataclass
class Trial:
    """One architecture proposed by a strategy.

    Attributes:
      trial_id: unique within a run, assigned by the strategy in ask order.
      decisions: the choice made for each decision of the search space, by decision name.
      spec: the decoded architecture (an `nascell.spec` object, or whatever the space decodes to).
      status, reward, metrics, error: filled in once the trial is evaluated.
      meta: strategy-private data needed at `tell` time (for REINFORCE: the sampled token
        indices and the controller step that sampled them). Must be JSON-serializable.
      timings: seconds spent in each phase (e.g. {"train": 12.3}).
    """

    trial_id: int
    decisions: Dict[str, Any]
    spec: Any = None
    status: TrialStatus = TrialStatus.PENDING
    reward: Optional[float] = None
    metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
    error: Optional[str] = None
    meta: Dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: Dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in (TrialStatus.DONE, TrialStatus.FAILED)
