"""The batched evaluation behind :mod:`.numerical`: ``f`` at every point of every row and step of
a difference table, in one jitted, vmapped program, run over the rows in chunks within a memory
budget.

A direction that moves only one block of the point (one leaf of a model: ``W2`` of a 150,000-
parameter MLP is 20,000 of its entries) is evaluated as a :class:`Block`: the points are built
for the block alone and ``f`` is called with the rest of the point shared by the row's
evaluations rather than copied into each, so a leaf of n entries costs n, not the whole point.
The points are the same numbers either way (``x + h v`` where ``v`` is zero is ``x``).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Block",
    "evaluator",
    "run_rows",
    "in_chunks",
    "rows_within",
    "row_blocks",
    "ROWS",
    "MEMORY_PER_CALL",
]


@dataclasses.dataclass(frozen=True)
class Block:
    """``f`` as a function of the entries ``start:stop`` of its point: ``g(x, y)`` is ``f`` at
    ``x`` with ``x[start:stop]`` replaced by ``y``, written so that the rest of ``x`` is read
    as it is (a leaf of a pytree swapped in, not a scatter into a copy of ``x``).  Given to
    :func:`.numerical.directional_derivative` in place of ``f``, with directions that are zero
    outside the block."""

    g: Callable
    start: int
    stop: int


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 64

#: Bytes of the largest array one call of a batched program may hold: the rows are run in chunks
#: below it (a model of 600,000 parameters at 100 points and 21 evaluations a row would need
#: 10 GB at once).  32 MiB is glibc's largest threshold for serving an allocation from its heap:
#: an array above it is mapped afresh by every call and faults in every page it touches.  At
#: 150,000 parameters, chunks of 256 MiB faulted in 4 GB a check and spent more time in the
#: kernel than in the arithmetic; below the threshold the memory of one call serves the next.
MEMORY_PER_CALL = 1 << 25
#: Rows per call of a batched float64 program (fewer where they would not fit in
#: :data:`MEMORY_PER_CALL`): the sweep, the re-judged rows and a shrinker's candidates share one
#: compilation (each new batch size compiled anew took a second at 38k parameters).
ROWS = 16


#: Entries per block of a NumPy pass over a (rows, entries) array: a few MB, which the allocator
#: reuses (a model's 176 rows of 150,000 entries are 200 MB, and every temporary of them faults).
BLOCK_ENTRIES = 1 << 18


def row_blocks(n_rows: int, width: int) -> list[slice]:
    """Slices of rows covering ``n_rows``, each of at most :data:`BLOCK_ENTRIES` entries (at
    least one row) of a ``width``-entry row."""
    step = max(1, BLOCK_ENTRIES // max(width, 1))
    return [slice(s, s + step) for s in range(0, n_rows, step)]


def rows_within(row_bytes: float, most: int = ROWS) -> int:
    """Rows per call, a power of two up to ``most``, whose ``row_bytes`` each fit in
    :data:`MEMORY_PER_CALL` (at least one)."""
    fit = max(1, int(MEMORY_PER_CALL // max(row_bytes, 1)))
    return min(most, 1 << int(np.floor(np.log2(fit))))


def _build(f, offsets, steps, factor):
    """Returns ``program(X, V, h0, first)`` -> ``f0`` (B, K) at the points and ``fs`` (B, S, P, K)
    at ``x + offset_p h_i v``, ``h_i = h0 / factor**(first + i)``; for a :class:`Block`, ``V``
    holds the block's entries only."""
    offsets = np.asarray(offsets, dtype=np.float64)
    P = len(offsets)

    def steps_of(X, h0, first):  # steps first .. first + steps - 1 of the table, (B, S)
        return h0[:, None] / factor ** (first + jnp.arange(steps, dtype=X.dtype))

    def program(X, V, h0, first):
        B, N = X.shape
        pts = X[:, None, None, :] + (steps_of(X, h0, first)[:, :, None] * offsets)[..., None] * V[:, None, None, :]
        out = jax.vmap(f)(jnp.concatenate([X, pts.reshape(-1, N)], axis=0))
        out = out.reshape(out.shape[0], -1)
        return out[:B], out[B:].reshape(B, steps, P, out.shape[1])

    def block_program(X, V, h0, first):
        B, n = V.shape
        Y = X[:, f.start : f.stop]
        pts = Y[:, None, None, :] + (steps_of(X, h0, first)[:, :, None] * offsets)[..., None] * V[:, None, None, :]

        def row(x, p):
            return jax.vmap(lambda y: jnp.ravel(f.g(x, y)))(jnp.concatenate([x[None, f.start : f.stop], p]))

        out = jax.vmap(row)(X, pts.reshape(B, -1, n))  # (B, 1 + S P, K)
        return out[:, 0], out[:, 1:].reshape(B, steps, P, out.shape[-1])

    return jax.jit(block_program if isinstance(f, Block) else program)


def evaluator(f, *key):
    """The program of :func:`_build` for ``f`` and ``key`` = (offsets, steps, factor), cached."""
    try:
        ck = (f, *key)
        hash(ck)
    except TypeError:  # an unhashable callable: build afresh (jit still caches by shape)
        return _build(f, *key)
    fn = _CACHE.get(ck)
    if fn is None:
        fn = _build(f, *key)
        _CACHE[ck] = fn
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(ck)
    return fn


def _padded(A, s: int, m: int, size: int):
    """Rows ``s:s+m`` of ``A``, padded to ``size`` rows by repeating the first."""
    part = A[s : s + m]
    return part if m == size else np.concatenate([part, np.repeat(A[s : s + 1], size - m, 0)])


def in_chunks(g, rows: int = ROWS):
    """``g`` over its arguments' rows in calls of ``rows`` rows each, the last padded by
    repeating a row, so that every call has one shape (one compilation); its outputs (an array
    or a tuple of them, leading axis the rows) are joined back as NumPy arrays."""

    def run(*arrays):
        B, parts = arrays[0].shape[0], []
        for s in range(0, B, rows):
            m = min(rows, B - s)
            out = g(*(jnp.asarray(_padded(A, s, m, rows)) for A in arrays))
            parts.append(jax.tree_util.tree_map(lambda o, m=m: np.asarray(o)[:m], out))
        if not parts:
            return jax.tree_util.tree_map(np.asarray, g(*arrays))
        return jax.tree_util.tree_map(lambda *p: np.concatenate(p), *parts)

    return run


def run_rows(f, offsets, steps: int, factor: float, X, V, h0):
    """``f`` at every point of every row's difference table: ``f0`` (B, K) and ``fs`` (B, S, P,
    K), by the programs of :func:`evaluator`, in calls within :data:`MEMORY_PER_CALL`: the rows
    in chunks of at most :data:`ROWS` and, where one row's table alone exceeds it (a 512,000-
    entry leaf: 86 MB), its steps in groups (a divisor of ``steps``, ``f0`` from the first)."""
    P, n = len(offsets), max(V.shape[1], 1)

    def row_bytes(d):
        return 8 * (d * P * n + X.shape[1])

    d = max(k for k in range(1, steps + 1) if steps % k == 0 and (k == 1 or row_bytes(k) <= MEMORY_PER_CALL))
    program = evaluator(f, offsets, d, factor)
    # one batch size for every call (the sweep, a re-check of a row, a shrinker's candidates),
    # so that they share one compilation: each new size compiled anew cost more than it ran
    rows = rows_within(row_bytes(d))
    parts = [
        in_chunks(lambda X, V, h0, i=i: program(X, V, h0, float(i * d)), rows)(X, V, h0) for i in range(steps // d)
    ]
    return parts[0][0], np.concatenate([fs for _, fs in parts], axis=1)
