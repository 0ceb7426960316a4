"""Supernet checkpoints: every shared weight, in order, as one in-memory `.npz`.

Both supernets (recurrent and micro conv) save and restore their shared weights this way;
the trainer writes the bytes atomically into the run directory.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np


def weights_to_bytes(weights: Sequence) -> bytes:
    """The values of `weights` (variables), in order, as `.npz` bytes."""
    buf = io.BytesIO()
    np.savez(buf, **{f"w{i}": np.asarray(v) for i, v in enumerate(weights)})
    return buf.getvalue()


def load_weights_bytes(weights: Sequence, data: bytes) -> None:
    """Assign what `weights_to_bytes` wrote back to `weights`; a count mismatch is an error."""
    with np.load(io.BytesIO(data)) as f:
        if len(f.files) != len(weights):
            raise ValueError(f"supernet checkpoint holds {len(f.files)} arrays, this "
                             f"supernet has {len(weights)}: its options differ")
        for i, v in enumerate(weights):
            v.assign(f[f"w{i}"])
