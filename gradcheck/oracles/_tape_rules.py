"""The local rules of the :class:`~gradcheck.oracles.tape.Tape`'s nodes: the value and first and
second partial derivatives of a SymPy function node (SymPy differentiates, NumPy evaluates), its
mpmath value, and the products and powers of the Mul and Pow nodes, in NumPy float64.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import sympy as sp

from .specials import mpmath_modules, numpy_modules

__all__ = ["FnRules", "as_real", "function_rules", "mp_function", "others_products", "power", "product_derivative"]


class FnRules(NamedTuple):
    """A function node's payload on the tape: ``func``'s value, first partials (one per
    argument) and second partials (a row per argument) as NumPy callables of its arguments, and
    ``func`` itself (the mpmath walk lambdifies it at its working precision)."""

    value: Callable
    firsts: list
    seconds: list
    func: Any


@functools.cache
def function_rules(func, nargs: int) -> FnRules:
    """:class:`FnRules` of ``func`` of ``nargs`` arguments, derived by SymPy once per function."""
    d = sp.symbols(f"_d0:{nargs}", real=True)
    e = func(*d)
    mods = numpy_modules()
    val = sp.lambdify(d, e, modules=mods)
    firsts, seconds = [], []
    for i in range(nargs):
        try:
            di = e.diff(d[i])
        except Exception:
            di = sp.nan
        di = di.replace(lambda n: isinstance(n, sp.DiracDelta), lambda n: sp.S.Zero)
        firsts.append(sp.lambdify(d, di, modules=mods))
        row = []
        for j in range(nargs):
            try:
                dij = di.diff(d[j])
            except Exception:
                dij = sp.nan
            dij = dij.replace(lambda n: isinstance(n, sp.DiracDelta), lambda n: sp.S.Zero)
            row.append(sp.lambdify(d, dij, modules=mods))
        seconds.append(row)
    return FnRules(val, firsts, seconds, func)


@functools.cache
def mp_function(func, nargs: int):
    """``func`` of ``nargs`` arguments as an mpmath callable at the working precision."""
    d = sp.symbols(f"_d0:{nargs}", real=True)
    return sp.lambdify(d, func(*d), modules=mpmath_modules())


def as_real(v, B):
    v = np.asarray(v)
    if np.iscomplexobj(v):
        v = np.where(np.abs(v.imag) <= 1e-12 * np.maximum(1.0, np.abs(v.real)), v.real, np.nan)
    return np.broadcast_to(v.astype(np.float64), (B,)) if v.ndim <= 1 else v.astype(np.float64)


def power(b, p):
    if isinstance(p, int):
        if p >= 0:
            return b**p
        return 1.0 / (b ** (-p))
    if p == 0.5:
        return np.sqrt(b)
    if p == -0.5:
        return 1.0 / np.sqrt(b)
    return np.power(b, p)


def others_products(xs):
    """For each i, the product of xs[j], j != i (prefix and suffix products: no division, so a
    zero factor is handled)."""
    m = len(xs)
    if m == 1:
        return [1.0]
    if m == 2:
        return [xs[1], xs[0]]
    pre = [1.0] * m
    for i in range(1, m):
        pre[i] = pre[i - 1] * xs[i - 1]
    suf = [1.0] * m
    for i in range(m - 2, -1, -1):
        suf[i] = suf[i + 1] * xs[i + 1]
    return [pre[i] * suf[i] for i in range(m)]


def product_derivative(xs, dxs):
    """Directional derivative of prod(xs) given the derivatives dxs of its factors."""
    if not xs:
        return 0.0
    parts = others_products(xs)
    total = 0.0
    for p, d in zip(parts, dxs):
        total = total + p * d
    return total
