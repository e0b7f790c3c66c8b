"""The measure of accuracy in ulps of the checked dtype (:mod:`._accuracy` reads it): the error
of each quantity at the truth, where relative accuracy means something, and the worst point."""

from __future__ import annotations

import numpy as np

from ..oracles._batched import row_blocks

__all__ = ["ulps", "subnormal_rows", "measurable", "worst"]


def ulps(got: np.ndarray, truth: np.ndarray, dtype: str) -> np.ndarray:
    """|got - truth| in ulps of ``dtype`` at the larger of the two (a truth of 0 has no useful
    ulp; the smallest subnormal is the floor)."""
    dt = np.dtype(dtype).type
    with np.errstate(all="ignore"):
        g, t = np.asarray(got, np.float64), np.asarray(truth, np.float64)
        ulp = np.spacing(np.maximum(np.abs(t), np.abs(g)).astype(dt)).astype(np.float64)
        ulp = np.where(ulp > 0, ulp, np.spacing(dt(0)))
        return np.abs(g - t) / ulp


def subnormal_rows(x: np.ndarray, dtype: str) -> np.ndarray:
    """Per point of ``x`` (B, N): whether it holds a subnormal input of ``dtype`` (flushed to zero
    by XLA).  In the points' own dtype, a block of rows at a time, once per check's points."""
    x, tiny = np.asarray(x), np.finfo(dtype).tiny
    out = np.zeros(x.shape[0], bool)
    for b in row_blocks(x.shape[0], x.shape[1]):
        ax = np.abs(x[b])
        out[b] = np.any((ax < tiny) & (ax > 0), axis=1)
    return out


def measurable(truth: np.ndarray, x: np.ndarray, dtype: str, sub_in: np.ndarray | None = None) -> np.ndarray:
    """Where relative accuracy means something: a truth that is a normal number of the dtype
    (not 0, where no relative error exists and the tolerance's atol judges; not subnormal, where
    XLA flushes to zero and the range, not the rule, runs out), at a point with no subnormal
    input (flushed to zero as well).  ``truth`` (B, E), ``x`` (B, N); ``sub_in``: the points'
    :func:`subnormal_rows` where already known."""
    tiny = float(np.finfo(dtype).tiny)
    sub_in = subnormal_rows(x, dtype) if sub_in is None else sub_in
    with np.errstate(all="ignore"):
        return (np.abs(np.asarray(truth, np.float64)) >= tiny) & ~sub_in[:, None]


def worst(got: np.ndarray, truth: np.ndarray, usable: np.ndarray, dtype: str, x, per_entry=True, sub_in=None) -> list:
    """The worst row of each entry (``per_entry``) or of all entries together, as
    ``(entry, row, ulps)``: ``got`` and ``truth`` are (B, E), ``x`` the points (B, N); ``usable``
    (B, E) marks where the truth is defined, finite and off any kink; ``sub_in``: the points'
    :func:`subnormal_rows` where already known."""
    B = got.shape[0]
    got, truth, usable = got.reshape(B, -1), truth.reshape(B, -1), usable.reshape(B, -1)
    sub_in = subnormal_rows(x, dtype) if sub_in is None else sub_in
    E = got.shape[1]
    best, at = np.full(E, -1.0), np.zeros(E, dtype=np.int64)  # per entry: the largest error, its row
    for b in row_blocks(B, E):  # a few rows at a time
        e = ulps(got[b], truth[b], dtype)
        e = np.where(usable[b] & measurable(truth[b], x[b], dtype, sub_in[b]) & np.isfinite(e), e, -1.0)
        r = np.argmax(e, axis=0)
        v = e[r, np.arange(E)]
        better = v > best  # the first row of the largest, as one argmax over all rows
        best[better], at[better] = v[better], r[better] + b.start
    if not per_entry:  # the first of the largest in row-major order: the lowest row, then entry
        if not E or best.max() < 0:
            return []
        cand = np.flatnonzero(best == best.max())
        m0 = int(cand[np.argmin(at[cand])])
        return [(m0, int(at[m0]), float(best[m0]))]
    return [(m, int(at[m]), float(best[m])) for m in range(E) if best[m] >= 0]
