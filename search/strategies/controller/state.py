"""A controller's saved state: weights, optimizer slots, baseline, counters and seed in one .npz.

A strategy checkpoints its controller with `Controller.state_bytes` (stored base64 in the
strategy's state) and restores it with `Controller.load_state_bytes`; both are these two
functions. Restoring checks every array's count and shape against the controller, so a run
resumed with another search space or other controller options fails with a clear error
instead of loading weights into the wrong slots.
"""

from __future__ import annotations

import io

import numpy as np


def state_bytes(controller) -> bytes:
    """``controller``'s weights, optimizer slots, baseline, counters and seed as one .npz blob."""
    arrays = {f"weight_{i}": np.asarray(v) for i, v in enumerate(controller.weights)}
    arrays.update({f"optimizer_{i}": np.asarray(v)
                   for i, v in enumerate(controller.optimizer.variables)})
    arrays["counters"] = np.array([controller.sample_calls, controller.updates, controller.seed],
                                  np.int64)
    arrays["baseline"] = np.array([np.nan if controller.baseline is None
                                   else controller.baseline])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def load_state_bytes(controller, data: bytes) -> None:
    """Restore into ``controller`` what `state_bytes` returned (shapes must match it).

    Raises:
      ValueError: the blob holds another number of arrays, or an array of another shape.
    """
    with np.load(io.BytesIO(data)) as f:
        for prefix, variables in (("weight", controller.weights),
                                  ("optimizer", controller.optimizer.variables)):
            n = sum(1 for k in f.files if k.startswith(prefix + "_"))
            if n != len(variables):
                raise ValueError(f"controller checkpoint holds {n} {prefix} arrays, this "
                                 f"controller has {len(variables)}: the search space or "
                                 "controller options differ from the saved run")
            for i, v in enumerate(variables):
                value = f[f"{prefix}_{i}"]
                if tuple(value.shape) != tuple(v.shape):
                    raise ValueError(f"controller checkpoint {prefix} {i} ({v.path}) has "
                                     f"shape {value.shape}, expected {tuple(v.shape)}")
                v.assign(value)
        controller.sample_calls, controller.updates, controller.seed = (
            int(x) for x in f["counters"])
        b = float(f["baseline"][0])
        controller.baseline = None if np.isnan(b) else b
