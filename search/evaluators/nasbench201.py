"""NAS-Bench-201 as a tabular evaluator: an architecture's reward is a table look-up.

The table (``nb201_cifar10.csv``: columns ``arch``, ``cifar10_test_acc``) lists all 15,625
cells of the NAS-Bench-201 space with their mean CIFAR-10 test accuracy after 200 epochs, in
percent (best: 94.37). The reward is that accuracy divided by 100, i.e. in [0, 1], so it is on
the same scale as a real child's validation accuracy; ``metrics["accuracy"]`` keeps the
percentage. A search over the ``nasbench201`` space can thus be measured in seconds.

Where the table is found: the ``csv_path`` argument (the ``--nb201_csv`` flag of the
binaries), else the environment variable ``NASCELL_NB201_CSV``, else
``$NASCELL_DATA_DIR/nasbench201/nb201_cifar10.csv``. Nothing is downloaded.
"""

from __future__ import annotations

import csv
import os
from typing import Any, Dict, Optional

from nascell.search.core.evaluator import EvalResult, Evaluator

#: the best test accuracy in the table (percent).
BEST_ACCURACY = 94.37


def default_csv_path() -> Optional[str]:
    """The table's path from the environment, or None."""
    if os.environ.get("NASCELL_NB201_CSV"):
        return os.environ["NASCELL_NB201_CSV"]
    if os.environ.get("NASCELL_DATA_DIR"):
        return os.path.join(os.environ["NASCELL_DATA_DIR"], "nasbench201", "nb201_cifar10.csv")
    return None


class NASBench201Evaluator(Evaluator):
    """Reward = NAS-Bench-201 CIFAR-10 test accuracy / 100 of the architecture string spec."""

    name = "nasbench201"
    score_metric = "accuracy"

    def __init__(self, csv_path: Optional[str] = None):
        self.csv_path = csv_path or default_csv_path()
        self._table: Optional[Dict[str, float]] = None
        if self.csv_path is None:
            raise ValueError(
                "NASBench201Evaluator needs the NAS-Bench-201 table nb201_cifar10.csv: pass "
                "csv_path=... (the --nb201_csv flag), or set NASCELL_NB201_CSV to the file or "
                "NASCELL_DATA_DIR to the folder holding nasbench201/nb201_cifar10.csv")
        if not os.path.exists(self.csv_path):
            raise FileNotFoundError(
                f"NAS-Bench-201 table {self.csv_path} does not exist; pass the path of "
                "nb201_cifar10.csv with --nb201_csv (or NASCELL_NB201_CSV)")

    def __getstate__(self):
        # Ship only the path to worker processes; each loads the table once, lazily.
        state = dict(self.__dict__)
        state["_table"] = None
        return state

    @property
    def table(self) -> Dict[str, float]:
        """arch string -> test accuracy (percent), loaded on first use."""
        if self._table is None:
            table: Dict[str, float] = {}
            with open(self.csv_path, newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames is None or not {"arch", "cifar10_test_acc"} <= set(
                        reader.fieldnames):
                    raise ValueError(f"{self.csv_path} must have the columns "
                                     f"arch,cifar10_test_acc. "
                                     f"Received: columns {reader.fieldnames}")
                for row in reader:
                    table[row["arch"]] = float(row["cifar10_test_acc"])
            self._table = table
        return self._table

    def accuracy(self, arch: str) -> float:
        """Test accuracy in percent; a clear error for a string not in the table."""
        try:
            return self.table[arch]
        except KeyError:
            raise ValueError(f"{arch!r} is not a NAS-Bench-201 architecture string (expected "
                             "e.g. |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
                             "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|)") from None

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        acc = self.accuracy(spec)
        return EvalResult(reward=acc / 100.0, metrics={"accuracy": acc,
                                                       "regret": BEST_ACCURACY - acc})

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "csv_path": self.csv_path}
