"""Textbook SymPy references of activations and of the softmax family, for ``gradcheck.check``.

Written naively on purpose, as a textbook writes them (``exp(a_i) / sum exp(a_j)``, no max
subtracted): the engine must not raise a false alarm when such a reference overflows float64
at logits of 1000.  One copy, shared by the benchmarks and the checker tests.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.parameters import distribute

__all__ = [
    "layer_norm_ref",
    "layer_norm_distributed_ref",
    "sigmoid_ref",
    "softmax_ref",
    "log_softmax_ref",
    "logsumexp_ref",
    "softplus_ref",
    "gelu_exact_ref",
    "relu_ref",
]


def sigmoid_ref(x):
    return 1 / (1 + sp.exp(-x))


def softmax_ref(a):
    e = a.applyfunc(sp.exp)
    return e / sum(e)


def log_softmax_ref(a):
    lse = sp.log(sum(a.applyfunc(sp.exp)))
    return a.applyfunc(lambda ai: ai - lse)


def logsumexp_ref(a):
    return sp.log(sum(a.applyfunc(sp.exp)))


def softplus_ref(x):
    return sp.log(1 + sp.exp(x))


def gelu_exact_ref(x):
    return x / 2 * (1 + sp.erf(x / sp.sqrt(2)))


def relu_ref(x):
    return sp.Max(0, x)


def layer_norm_ref(a):
    """(a - mean) / sqrt(var + 1e-5) of an n x 1 Matrix, built without distributing the mean.

    SymPy distributes a number over a sum: each a_i - mean(a) would become an n-term Add (n^2
    terms in all, minutes at n = 1,024); ``distribute(False)`` keeps it O(n).  (Python's sum()
    over SymPy terms is still quadratic: each + re-flattens the Add.)
    """
    with distribute(False):
        n = a.shape[0]
        mu = sum(a) / n
        d = a.applyfunc(lambda v: v - mu)
        var = sum(d.applyfunc(lambda v: v**2)) / n
        return d / sp.sqrt(var + sp.Float(1e-5))


def layer_norm_distributed_ref(a):
    """The same layer norm written as a textbook writes it, SymPy left to distribute the mean:
    ``x0 - mean(x)`` becomes ``5 x0 / 6 - x1 / 6 - ...`` (for n = 6), n^2 terms in all (small n
    only), and at equal inputs a float64 evaluation cancels where the mathematics is exactly 0."""
    n = a.shape[0]
    m = sum(a) / n
    v = sum((xi - m) ** 2 for xi in a) / n
    return sp.Matrix([(xi - m) / sp.sqrt(v + sp.Rational(1, 100000)) for xi in a])
