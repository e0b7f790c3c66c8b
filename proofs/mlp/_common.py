"""The random networks and the matrix comparisons shared by the mlp.* claims' checks."""

from __future__ import annotations

import numpy as np
import sympy as sp

from gradcheck import models as nw

#: Random networks of the numerical checks: (sizes, number of nets).
RANDOM_SIZES = (10, 30, 30, 30, 10)


def _same_matrix(a: sp.Matrix, b: sp.Matrix) -> bool:
    """Entrywise equal after expansion (generic sigma: the entries are polynomials in the
    ``sigma'`` and ``sigma`` atoms, so expansion decides)."""
    a, b = sp.Matrix(a), sp.Matrix(b)
    return a.shape == b.shape and all(sp.expand(x - y) == 0 for x, y in zip(a, b))


def _rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))


def _max_err(got, want) -> float:
    """max |got - want| / max(|want|, 1e-12 max|want|): relative, with a floor at the scale."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    floor = 1e-12 * float(np.max(np.abs(want))) or 1e-300
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), floor)))


def _random_mlp_batch(seed: int, sizes, n: int):
    """``n`` random nets (N(0,1) weights and biases), inputs and targets in (0, 1), stacked."""
    nets = [nw.mlp_init(seed * 100_003 + i, sizes) for i in range(n)]
    rng = np.random.default_rng(seed)
    params = [(np.stack([p[l][0] for p in nets]), np.stack([p[l][1] for p in nets])) for l in range(len(sizes) - 1)]
    return params, rng.uniform(size=(n, sizes[0])), rng.uniform(size=(n, sizes[-1]))
