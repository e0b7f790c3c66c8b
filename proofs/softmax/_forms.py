"""Softmax: the SymPy form, the textbook and the shifted JAX forms, and the index-form helpers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

F = sp.Symbol("F", real=True)
CLASSES = range(2, 7)  # the explicit proofs run for every C here

# index form: a_1..a_C, symbolic C, indices i, j, k; C = j + m puts j inside 1..C
_a, _t = sp.IndexedBase("a", real=True), sp.IndexedBase("t", real=True)
_i, _j, _k = sp.symbols("i j k", integer=True, positive=True)
_C = sp.Symbol("C", integer=True, positive=True)
_m = sp.Symbol("m", integer=True, nonnegative=True)
_S = sp.Sum(sp.exp(_a[_k]), (_k, 1, _C))


def _classes(C) -> int:
    """The class count of a claim parameter: an integer >= 2 (one class has nothing to normalise)."""
    if isinstance(C, bool) or not isinstance(C, (int, np.integer)) or C < 2:
        raise ValueError(f"C (the number of classes) must be an integer >= 2, got {C!r}")
    return int(C)


def _y(idx, shift=0):
    return sp.exp(_a[idx] + shift) / sp.Sum(sp.exp(_a[_k] + shift), (_k, 1, _C))


def _j_in_range(expr):
    """Evaluate Sums and settle ``C >= j`` by writing C = j + m (m >= 0)."""
    return expr.doit().subs(_C, _j + _m)


# --- the implementations -------------------------------------------------------------------
def softmax_sym(a):
    """SymPy softmax of a C x 1 Matrix."""
    e = a.applyfunc(sp.exp)
    return e / sum(e)


def softmax_naive(a):
    """The textbook form e^a / sum e^a: overflows for large logits (see ``softmax.stable``)."""
    e = jnp.exp(a)
    return e / jnp.sum(e)


def softmax_shifted(a):
    """e^{a - max a} / sum e^{a - max a}: the seed's F = -max(a).

    The shift is held constant under differentiation (``stop_gradient``): its true derivative
    is exactly 0 (shift invariance), so differentiating through ``max`` would only add terms
    that cancel up to rounding, and split between tied maxima.
    """
    m = jax.lax.stop_gradient(jnp.max(a, axis=-1, keepdims=True))
    e = jnp.exp(a - m)
    return e / jnp.sum(e, axis=-1, keepdims=True)


@jax.custom_jvp
def softmax_textbook(a):
    """The shifted softmax, differentiated by the textbook Jacobian y_i (delta_ij - y_j).

    Its JVP is J t = y * (t - <y, t>); JAX transposes that linear rule for reverse mode, so
    ``jacfwd`` and ``jacrev`` both use the seed's formula rather than JAX's own rule.
    """
    return softmax_shifted(a)


@softmax_textbook.defjvp
def _softmax_textbook_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    y = softmax_textbook(a)
    return y, y * (t - jnp.sum(y * t, axis=-1, keepdims=True))


def textbook_jacobian(y):
    """diag(y) - y y^T, the seed's Jacobian as an array."""
    return jnp.diag(y) - jnp.outer(y, y)
