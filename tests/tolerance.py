"""The float32 tolerance of the tests that compare two different computations of one result.

Exact equality holds only for the same ops on the same inputs (a layer reloaded from a save of
itself, weights copied). Two computations of the same function round differently: the fast
path (one ``x @ W`` for the whole sequence) against ``keras.layers.RNN`` (one matmul per
step), a SavedModel graph (whose optimizer may rewrite arithmetic) against eager, a fresh
process against the source. How they differ depends on the CPU (AVX-512, AVX2) and on the
kernels (oneDNN on or off): 7e-9 to 6e-8 on outputs of order 1 was seen on an AVX2 machine.

``RTOL``/``ATOL`` bound ``|actual - desired| <= ATOL + RTOL * |desired|`` elementwise, as
``np.testing.assert_allclose``. They are about 100 float32 ulps near 1: far above reordered
sums (a few ulps), far below what a wrong weight, a swapped gate or a lost bias makes
(1e-3 and more on these tests' random weights; tests/export/test_loader.py checks that).

``skip_float16_if_onednn_capped`` marks the float16 tests that cannot run where .ci/numerics
caps oneDNN below the CPU it runs on (see there).

Importable from every test module (pytest.ini puts this folder on the pythonpath) and from
the fresh interpreters of tests/export/conftest.py's ``run_python``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

RTOL = 1e-5
ATOL = 1e-6

# ONEDNN_MAX_CPU_ISA below what the CPU has (.ci/numerics emulates an AVX2-only CPU that way)
# breaks TensorFlow's float16 matmul and convolution in oneDNN on a CPU with AVX512-FP16 / AMX
# (a crash, or "could not create a primitive descriptor"): TensorFlow picks oneDNN's float16
# kernels by the CPU, and the capped oneDNN has none. A real AVX2 CPU never takes them.
ONEDNN_CAPPED = (os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper() != "ALL"
                 and os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0")
skip_float16_if_onednn_capped = pytest.mark.skipif(
    ONEDNN_CAPPED, reason="float16 kernels fail in oneDNN capped by ONEDNN_MAX_CPU_ISA below "
    "the CPU's float16 support (an artifact of the emulation, not of an AVX2 CPU)")


def assert_float32_close(actual, desired, err_msg: str = "") -> None:
    """``np.testing.assert_allclose`` at the shared float32 tolerance."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), rtol=RTOL, atol=ATOL,
                               err_msg=err_msg)


def float32_close(actual, desired) -> bool:
    """True if ``actual`` matches ``desired`` (same shape) at the shared float32 tolerance."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    return actual.shape == desired.shape and bool(
        np.allclose(actual, desired, rtol=RTOL, atol=ATOL))


def tolerance_used(actual, desired) -> float:
    """The largest ``|actual - desired| / (ATOL + RTOL * |desired|)``: at most 1.0 where the
    two are close; a plain number, for a fresh process to report back as JSON."""
    actual = np.asarray(actual, np.float64)
    desired = np.asarray(desired, np.float64)
    if actual.shape != desired.shape:
        return float("inf")
    return float((np.abs(actual - desired) / (ATOL + RTOL * np.abs(desired))).max())
