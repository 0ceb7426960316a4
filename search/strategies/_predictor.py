"""A small reward predictor: a Gaussian process over architectures, for ranking candidates.

Architectures are compared by their Hamming distance ``d`` over the controller's tokens (one
token per Categorical decision, one per skip candidate), with the kernel
``k(a, b) = exp(-d(a, b) / lengthscale)``: a product over tokens of "same or not" kernels,
so it is positive definite and models interactions between decisions of every order (no
assumption that decisions act additively). Rewards are turned into normal scores by rank
(``Phi^-1((rank + 0.5) / n)``), which makes the model indifferent to the reward's scale and
to outliers such as the 10%-accuracy cells of NAS-Bench-201. The lengthscale and the noise
are picked by marginal likelihood on a small grid, again whenever the data has grown by
half; between those, the inverse Cholesky factor is extended by the new rows, O(n^2) each.
Everything is numpy: a fit and a prediction over a few hundred points take milliseconds.

Used by `ReinforceStrategy` with ``pool > 0``: the controller samples a pool of candidates,
the predictor ranks the unseen ones by expected improvement, the best are evaluated.
"""

from __future__ import annotations

import math
import statistics
from typing import Optional, Tuple

import numpy as np

LENGTHSCALES = (0.5, 1.0, 2.0, 4.0)
NOISES = (1e-3, 1e-2, 1e-1)


_NORMAL = statistics.NormalDist()
_erf = np.frompyfunc(math.erf, 1, 1)


def _ranks(y: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``y``, ties sharing their mean rank."""
    order = np.argsort(y, kind="stable")
    ranks = np.empty(len(y), np.float64)
    ranks[order] = np.arange(1, len(y) + 1)
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Rank-based normal scores of ``y``: ``Phi^-1((rank - 0.5) / n)``."""
    q = (_ranks(np.asarray(y, np.float64)) - 0.5) / len(y)
    return np.array([_NORMAL.inv_cdf(float(p)) for p in q])


def _cdf(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(u / math.sqrt(2.0)).astype(np.float64))


def _pdf(u: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)


class GPPredictor:
    """Exact GP regression on token vectors; see the module docstring."""

    def __init__(self):
        self.x: Optional[np.ndarray] = None  # [n, width] int tokens
        self.dist: Optional[np.ndarray] = None  # [n, n] Hamming distances
        self.lengthscale, self.noise = 1.0, 1e-2
        self._tuned_at = 0
        self._alpha = self._chol_inv = None
        self._y_best = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Fit to token rows ``x`` [n, width] and rewards ``y`` [n] (rows only ever appended)."""
        x = np.asarray(x, np.int32)
        n_old = 0 if self.x is None else len(self.x)
        if self.x is not None and (len(x) < n_old or not np.array_equal(x[:n_old], self.x)):
            self.x, self.dist, n_old = None, None, 0  # not an extension: start over
        if n_old < len(x):
            new = x[n_old:]
            cross = _hamming(new, x)  # [new, n]
            dist = np.zeros((len(x), len(x)), np.float64)
            if n_old:
                dist[:n_old, :n_old] = self.dist
            dist[n_old:, :] = cross
            dist[:, n_old:] = cross.T
            self.x, self.dist = x, dist
            if self._chol_inv is not None and len(self._chol_inv) > n_old:
                self._chol_inv = None
        z = normal_scores(np.asarray(y, np.float64))
        if len(x) >= 4 and len(x) >= 1.5 * self._tuned_at:
            before = (self.lengthscale, self.noise)
            self._tune(z)
            self._tuned_at = len(x)
            if (self.lengthscale, self.noise) != before:
                self._chol_inv = None
        self._factor()
        self._alpha = self._chol_inv.T @ (self._chol_inv @ z)
        self._y_best = float(z.max())

    def _factor(self) -> None:
        """``L^-1`` of the kernel matrix, extended by the appended rows (O(n^2) per row)."""
        n = len(self.dist)
        n0 = 0 if self._chol_inv is None else len(self._chol_inv)
        if n0 == n:
            return
        if n0:
            k12 = np.exp(-self.dist[:n0, n0:] / self.lengthscale)
            k22 = np.exp(-self.dist[n0:, n0:] / self.lengthscale)
            k22[np.diag_indices_from(k22)] += self.noise
            l21 = (self._chol_inv @ k12).T
            try:
                l22_inv = np.linalg.inv(np.linalg.cholesky(k22 - l21 @ l21.T))
            except np.linalg.LinAlgError:
                l22_inv = None
            if l22_inv is not None:
                inv = np.zeros((n, n))
                inv[:n0, :n0] = self._chol_inv
                inv[n0:, n0:] = l22_inv
                inv[n0:, :n0] = -l22_inv @ l21 @ self._chol_inv
                self._chol_inv = inv
                return
        self._chol_inv, _, _ = _solve(self.dist, np.zeros(n), self.lengthscale, self.noise)
        if self._chol_inv is None:  # numerically singular: more noise
            self.noise *= 10
            self._chol_inv, _, _ = _solve(self.dist, np.zeros(n), self.lengthscale, self.noise)

    def _tune(self, z: np.ndarray) -> None:
        best = None
        for ls in LENGTHSCALES:
            for noise in NOISES:
                _, alpha, logdet = _solve(self.dist, z, ls, noise, inverse=False)
                if alpha is None:
                    continue
                lml = -0.5 * z @ alpha - 0.5 * logdet
                if best is None or lml > best[0]:
                    best = (lml, ls, noise)
        if best is not None:
            _, self.lengthscale, self.noise = best

    def predict(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation (in normal-score units) at token rows ``x``."""
        k = np.exp(-_hamming(np.asarray(x, np.int32), self.x) / self.lengthscale)
        mean = k @ self._alpha
        v = self._chol_inv @ k.T
        var = np.maximum(1.0 - np.sum(v * v, axis=0), 1e-12)
        return mean, np.sqrt(var)

    def expected_improvement(self, x: np.ndarray) -> np.ndarray:
        mean, std = self.predict(x)
        gap = mean - self._y_best
        u = gap / std
        return gap * _cdf(u) + std * _pdf(u)

    def acquisition(self, x: np.ndarray, kind: str = "ei") -> np.ndarray:
        """Score candidates: ``ei`` (expected improvement), ``ucb`` (mean + 2 std) or ``mean``."""
        if kind == "ei":
            return self.expected_improvement(x)
        mean, std = self.predict(x)
        return mean + 2.0 * std if kind == "ucb" else mean


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[:, None, :] != b[None, :, :]).sum(-1).astype(np.float64)


def _solve(dist: np.ndarray, z: np.ndarray, lengthscale: float, noise: float,
           inverse: bool = True):
    """(L^-1 or None, K^-1 z, log det K) for ``K = exp(-dist / lengthscale) + noise I``."""
    k = np.exp(-dist / lengthscale)
    k[np.diag_indices_from(k)] += noise
    try:
        chol = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        return None, None, None
    logdet = 2.0 * np.log(np.diag(chol)).sum()
    if not inverse:
        return None, np.linalg.solve(k, z), logdet
    chol_inv = np.linalg.inv(chol)
    return chol_inv, chol_inv.T @ (chol_inv @ z), logdet


__all__ = ["GPPredictor", "normal_scores"]
