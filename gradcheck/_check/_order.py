"""The shrinker's order: how far a point is from the simplest one (:func:`complexity`), the
candidates it tries at a model's size (:func:`two_digits`), and their distinct rows."""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["complexities", "complexity", "simpler", "two_digits", "unique_rows"]


def unique_rows(C: np.ndarray) -> np.ndarray:
    """``np.unique(C, axis=0)``: the distinct rows in lexicographic order.  A few rows of a
    model's parameters are compared pairwise (np.unique views each 150,000-entry row as one
    record and took 0.65 s for two of them)."""
    if C.shape[1] <= 64:
        return np.unique(C, axis=0)

    def cmp(i, j):
        d = np.flatnonzero(C[i] != C[j])
        return 0 if not d.size else (-1 if C[i, d[0]] < C[j, d[0]] else 1)

    order = sorted(range(len(C)), key=functools.cmp_to_key(cmp))
    return C[[order[0]] + [b for a, b in zip(order, order[1:]) if cmp(a, b) != 0]]


def complexity(x) -> float:
    """How far a point is from the simplest one (the shrinker's order): per nonzero entry, 1 +
    its significant digits + |log10| / 10 + 0.5 if negative."""
    x = np.atleast_1d(np.asarray(x, np.float64)).ravel()
    if x.size > 32:  # a model's parameters: the same measure, vectorised (the loop took 0.3 s at 38k)
        return _complexity_array(x)
    total = 0.0
    for v in x:
        if v == 0:
            continue
        digits = len(f"{abs(v):.15g}".replace(".", "").lstrip("0").rstrip("0")) if np.isfinite(v) else 20
        total += 1 + digits + abs(math.log10(abs(v))) / 10 + (0.5 if v < 0 else 0)
    return total


def complexities(points: list) -> list[float]:
    """:func:`complexity` of each point; a model's points on a few threads (NumPy's ufuncs
    release the GIL: 100 points of 150,000 entries took 1.7 s on one thread, 0.7 s on two)."""
    workers = min(len(points), os.cpu_count() or 1, 4)
    if workers < 2 or max(np.size(x) for x in points) <= 32:
        return [complexity(x) for x in points]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(complexity, points))


def _complexity_array(x: np.ndarray) -> float:
    """:func:`complexity` without a Python loop: the significant digits of each entry are those
    of its 15-digit rounding, trailing zeros stripped (up to one digit where an entry needs all
    15, from the rounding of ``m * 10**k``; an order for the shrinker, not an exact count)."""
    v = x[x != 0]
    m = np.abs(v)
    fin = np.isfinite(m)
    with np.errstate(all="ignore"):
        lg = np.log10(np.where(fin, m, 1.0))
        e = np.floor(lg).astype(np.int64)
        p = _POW10[14 - e + _POW10_ZERO]  # 10.0 ** (14 - e), looked up: pow took most of the time
        r15 = np.round(m * p) / p  # what '%.15g' prints
        r15 = np.where(np.isfinite(r15), r15, m)
        digits = np.where(fin, 15.0, 20.0)
        # its trailing zeros stripped: the fewest digits giving it back.  An entry that k digits
        # do not give back, fewer do not either: only those that k gave back are tried with k - 1
        # (a model's random row leaves the loop after one round, not fourteen)
        idx = np.flatnonzero(fin)
        for k in range(14, 0, -1):
            if not idx.size:
                break
            r, q = r15[idx], _POW10[k - 1 - e[idx] + _POW10_ZERO]
            back = np.round(r * q) / q
            idx = idx[np.isfinite(back) & (np.abs(back - r) <= r * 1e-15)]
            digits[idx] = k
        logs = np.where(fin, np.abs(lg) / 10, np.inf)
    return float(np.sum(1 + digits + logs + 0.5 * (v < 0)))


#: 10.0 ** n for the n that :func:`_complexity_array` needs (float64's exponents, and 15 digits beyond)
_POW10_ZERO = 400
with np.errstate(over="ignore"):  # beyond 1e308: inf, as the power gave
    _POW10 = np.power(10.0, np.arange(-_POW10_ZERO, _POW10_ZERO + 1, dtype=np.float64))


def two_digits(x: np.ndarray) -> np.ndarray:
    """``float(f"{v:.2g}")`` of each entry of ``x``, exactly, without formatting a model's
    150,000 entries one at a time (0.16 s a call).  ``y = |v| 10^s`` in [10, 100) is rounded to
    an integer ``k``; its one rounding error moves ``y`` by about 1e-14, so ``k`` is the decimal
    rounding wherever ``y`` is not within 1e-6 of a tie; ``k / 10^s`` (or ``k 10^-s``) is one
    correctly rounded operation on exact operands, the double that ``float`` gives the string.
    Zeros are themselves; ties, non-finite entries and exponents beyond 10^22 are formatted."""
    x = np.asarray(x, np.float64)
    if x.size <= 64:
        return np.asarray([float(f"{v:.2g}") for v in x.ravel()]).reshape(x.shape)
    m = np.abs(x)
    ok = np.isfinite(m) & (m > 0)
    with np.errstate(all="ignore"):
        s = 1 - np.floor(np.log10(np.where(ok, m, 1.0))).astype(np.int64)
        ok &= np.abs(s) <= 22
        p = _EXACT10[np.where(ok, np.abs(s), 0)]
        up = s >= 0
        y = np.where(up, m * p, m / p)
        k = np.round(y)
        ok &= (np.abs(y - np.floor(y) - 0.5) > 1e-6) & (y >= 10) & (y < 100)
        out = np.copysign(np.where(up, k / p, k * p), x)
    out[m == 0] = x[m == 0]  # '0' and '-0': the zeros themselves
    for i in np.flatnonzero(~ok & (m != 0)):
        out.flat[i] = float(f"{x.flat[i]:.2g}")
    return out


#: 10^n for n = 0..22, exact (the powers of ten a double holds exactly)
_EXACT10 = np.asarray([float(10**n) for n in range(23)])


def simpler(new, old) -> bool:
    return complexity(new) < complexity(old)
