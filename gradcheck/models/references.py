"""Textbook SymPy references of activations and of the softmax family, for ``gradcheck.check``.

Written naively on purpose, as a textbook writes them (``exp(a_i) / sum exp(a_j)``, no max
subtracted): the engine must not raise a false alarm when such a reference overflows float64
at logits of 1000.  One copy, shared by the benchmarks and the checker tests.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
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
