"""Stages 4-6 of a check, what every path shares: directions, the batched run of ``fn``'s
program, names of entries, the audit, and the batched shrinker.

:class:`Engine` is the base of the three engines, one per path: :class:`._entries.EntriesEngine`
compares with the reference's symbolic Jacobian and Hessian, entry by entry,
:class:`._probes.ProbesEngine` with its derivatives along random directions, and
:class:`._numeric.NumericEngine` (``reference=None``) with extrapolated differences of ``fn``
in float64.

Every path refers a disagreement upwards before calling it a failure: float64 NumPy, then
(entries path) NumPy long double, then the mpmath truth at 50 digits and more where the
reference cancels.  Only a disagreement with the mpmath truth is a failure.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .._x64 import dtype_context
from ..oracles._batched import row_blocks, rows_within
from ._modes import IN64, kind_of
from ._order import complexity, simpler, two_digits, unique_rows
from ._program import program, run_sharded
from ._report import REFEREE_CAP
from ._sampling import flat_domains

__all__ = ["Engine", "Tally", "Disagreement", "Seen", "MAX_CHUNK", "SHRINK_REFEREE_CAP"]

SHRINK_REFEREE_CAP = 32  # per call of a single-point re-check or a round of shrinking
AUDIT_POINTS = 8  # agreeing points of the sweep re-judged against the mpmath truth anyway
MAX_CHUNK = 4096
_FEW_ROWS = 4  # run_fn: rows run one at a time


class Disagreement(NamedTuple):
    """An entry where ``fn`` and the truth disagree beyond the tolerance, at one row of a batch
    (what :meth:`Engine.evaluate` returns, one per failing entry)."""

    row: int
    mode: str  # fn's mode: "jvp", "vjp", "hessian fwd-over-rev", ...; "vjp.t" the dot test alone
    entry: int  # the flat entry of the mode's result (see :meth:`Engine.describe`)
    expected: float
    got: float
    error: float


class Seen(NamedTuple):
    """A failing point of the sweep, as the pipeline groups, re-checks and shrinks it."""

    x: np.ndarray  # the point (float64)
    entry: int
    expected: float
    got: float
    error: float
    directions: tuple  # (tangent, cotangent, second tangent) it was judged along
    range_point: bool  # one of the added range points, not of the user's domain
    row: int


@dataclasses.dataclass
class Tally:
    """What a check judged and did not, counted by its engine and printed by the report."""

    refereed: int = 0  # disagreeing points sent to the referee (mpmath, or the error bound)
    unrefereed: int = 0  # disagreeing points past the referee's budget (``Engine.refereed_cap``)
    undefined: int = 0  # points where every value of the reference is undefined
    partly_undefined: int = 0  # points judged on their defined entries only (x / y at y = 0 beside x + y)
    kink_points: int = 0  # points at a kink of the reference: not judged
    audited: int = 0  # agreeing points re-judged against the referee anyway
    unjudged: dict[str, int] = dataclasses.field(default_factory=dict)  # per mode: the numerical truth could not judge
    #: reference=None, per dtype judged: points that disagreed before fn's own rounding was allowed
    #: for, and of them those within it, measured there or taken as the re-judged points of their mode
    rounding: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def note_rounding(self, dtype: str, by_mode: dict, rejudged: set, failing: set, confirmed: set) -> None:
        """Counts a sweep's re-judging with fn's measured rounding (the numerical path): ``by_mode``
        the rows that disagreed without it per mode (``"vjp.t"`` the VJP's dot test), ``rejudged``
        the rows judged again with it, ``failing`` the rows of the confirmed failures and
        ``confirmed`` the modes still failing with it.  A row is within the rounding where none of
        its modes is confirmed (measured where re-judged, else taken as its mode's re-judged rows)."""
        rows = set().union(*map(set, by_mode.values()))
        if not rows:
            return
        fails = set(failing) | {r for m, rs in by_mode.items() if m.removesuffix(".t") in confirmed for r in rs}
        within = rows - fails
        seen = self.rounding.setdefault(dtype, {"disagreed": 0, "measured": 0, "presumed": 0})
        seen["disagreed"] += len(rows)
        seen["measured"] += len(within & rejudged)
        seen["presumed"] += len(within - rejudged)


class Engine:
    """What both truth paths share."""

    path = ""  # "entries", "probes" or "numerical"
    refereed_cap = REFEREE_CAP
    audit_cap = AUDIT_POINTS

    def __init__(self, spec, ref, prog, points: int = 0):
        self.spec, self.ref, self.prog = spec, ref, prog
        self.dtype, self.seed = spec.dtype, spec.seed
        self.domains_flat = flat_domains(spec, ref)
        self.eps = float(np.finfo(spec.dtype).eps)
        self.big = float(np.finfo(spec.dtype).max)
        # the sweep's batch of fn's program (``points``, rounded up to a power of two): the
        # batching check, the sweep and a shrinker's rounds share its compilation
        self.points = points
        self.chunk = min(MAX_CHUNK, 1 << max(4, int(np.ceil(np.log2(max(points, 1))))))
        self.tally = Tally()
        self.accuracy_rows: list | None = None  # each quantity's largest error in ulps (:mod:`._accuracy`)
        self.devices = 1
        # the diagnosis's findings, once per check (:mod:`._diagnose`)
        self.rules_found: tuple | None = None  # fn's custom rules (read from its jaxpr), and whether fn is one
        self.rule_verdicts: list | None = None  # each rule checked on its own
        self.rechecked: dict[bytes, list] = {}  # :meth:`recheck`
        self.leaf_offsets = np.cumsum([0] + [int(np.prod(s)) if s else 1 for s in spec.leaf_shapes])
        # rows per call of fn's program within the memory budget (a point, t, s and a tangent per leaf)
        row_bytes = np.dtype(self.dtype).itemsize * ref.n_in * (len(spec.leaf_shapes) + 3)
        self.fit = rows_within(row_bytes, MAX_CHUNK)

    # -- what each truth path provides -------------------------------------------------------
    def evaluate(self, X: np.ndarray, T=None, C=None, S=None, count=True, alone=False, in64=True) -> list[Disagreement]:
        """Confirmed failures at the rows of X, one per failing entry: fn's program along the
        directions (drawn where not given), judged by the path's truth (:meth:`judge`).
        ``count``: the sweep, which spends the check's budgets and counts into the tally (a
        re-check or a shrinker's round does not); ``alone``: single points, each judged by the
        referee whatever float64 says; ``in64``: a float32 numerical check judges fn's own
        float64 derivatives too (modes ending in ``" in float64"``)."""
        if T is None:
            T, C, S = self.directions(X.shape[0])
        X = self.absolute(X)
        got = self.run_fn(X, T, C, S, alone=alone)
        return self.judge(X, T, C, S, got, self.estimate(X, T, C, S), count, alone, in64)

    def estimate(self, X, T, C, S):
        """This path's truth in bulk at the rows of X along the directions, from them alone: never
        from fn's results, and with no effect on the check's state (:meth:`judge` counts)."""
        raise NotImplementedError

    def absolute(self, X: np.ndarray) -> np.ndarray:
        """The points fn runs at: an ``args=`` check's perturbations added to the user's values
        (``spec.origin``), rounded to X's dtype as fn's own addition would; X itself otherwise."""
        if self.spec.origin is None:
            return X
        X, o = np.asarray(X), self.spec.origin
        out = np.empty_like(X)
        for b in row_blocks(X.shape[0], X.shape[1]):  # a few rows at a time: no float64 copy of them all
            out[b] = o + X[b].astype(np.float64)
        return out

    def judge(self, X, T, C, S, got, est, count, alone, in64) -> list[Disagreement]:
        """fn's results ``got`` at the rows of X against this path's truth (``est``, from
        :meth:`estimate`, and its referee where they disagree): the failures it confirms."""
        raise NotImplementedError

    def recheck(self, X: np.ndarray, T=None, C=None, S=None, alone=False, mode: str = "") -> list[Disagreement]:
        """``evaluate(count=False)``, remembered per (points, directions, alone, and whether
        ``mode`` is one of fn's own float64 derivatives): a wrong rule fails in several leaves,
        and each leaf's failure re-checks and shrinks from the same point along the same
        directions; judged once, at model size a call of seconds."""
        in64 = mode.endswith(IN64)
        h = hashlib.blake2b((b"alone" if alone else b"batch") + (b"64" if in64 else b""))
        for A in (X, T, C, S):
            h.update(b"-" if A is None else f"{A.dtype.str}{A.shape}".encode() + np.ascontiguousarray(A).tobytes())
        key = h.digest()
        if key not in self.rechecked:
            self.rechecked[key] = self.evaluate(X, T, C, S, count=False, alone=alone, in64=in64)
        return list(self.rechecked[key])

    def truth_note(self) -> str:
        """The truth the sweep was judged against, in words (for the report)."""
        raise NotImplementedError

    # -- directions and the fn side ----------------------------------------------------------
    def directions(self, n):
        """Random tangents T, cotangents C and second tangents S for n points (seeded)."""
        rng = np.random.default_rng([self.seed, 11, n])
        T = rng.normal(size=(n, self.ref.n_in)).astype(self.dtype)
        C = rng.normal(size=(n, self.ref.n_out)).astype(self.dtype)
        # the second tangent is read at order 2 only (drawn after T and C: theirs stay the same)
        if self.spec.order == 1:
            return T, C, np.zeros((n, self.ref.n_in), self.dtype)
        return T, C, rng.normal(size=(n, self.ref.n_in)).astype(self.dtype)

    @staticmethod
    def _pad(A, size):
        B = A.shape[0]
        if B == size:
            return A
        return np.concatenate([A, np.repeat(A[-1:], size - B, axis=0)], axis=0)

    def run_fn(self, X, T, C, S, alone=False):
        """fn's program over the rows, in chunks of the sweep's batch size (one compilation);
        ``alone`` runs single points in a program of their own batch size.  A few rows (the
        shrinker's candidates) run one at a time in the single point's program, not padded to
        the sweep's batch (at 150k parameters a padded batch of 256 took 2 s for 2 rows)."""
        n = X.shape[0]
        size = n if alone else (1 if n <= _FEW_ROWS else min(self.chunk, self.fit))
        parts = []
        for s in range(0, n, size):
            Xs, Ts, Cs, Ss = (self._pad(A[s : s + size], size) for A in (X, T, C, S))
            m = min(size, n - s)
            out, split = run_sharded(self.prog, jnp.asarray(Xs), jnp.asarray(Ts), jnp.asarray(Cs), jnp.asarray(Ss))
            if split is not None:
                self.devices = max(self.devices, split["devices"])
            parts.append({k: np.asarray(v)[:m] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def float64_at(self, mode: str, x, t, c, s):
        """fn's own ``mode`` in float64 at one point (float64 arrays) along the same directions,
        flat, or None where fn has no such mode: the diagnosis's "is the same function right in
        float64 here?".  fn's program compiled in float64."""
        spec, prog = self.spec, self.prog
        with dtype_context("float64"):
            p64 = program(
                spec.flat_fn, spec.leaf_shapes, prog.arg_of, spec.order, "float64", prog.n_out, prog.path,
                key=(spec.fn, repr(spec.shapes)),
            )  # fmt: skip
            out = p64.run(x[None], t[None], c[None], s[None])
        return np.ravel(np.asarray(out[mode])[0]) if mode in out else None

    # -- naming ------------------------------------------------------------------------------
    def input_name(self, j):
        """(leaf, 'leaf[index]') of flat input j."""
        a = int(self.ref.arg_of[j])
        off = int(self.leaf_offsets[a])
        return a, _idx(j - off, self.spec.leaf_shapes[a], self.spec.leaf_names[a])

    def out_name(self, k):
        return self.spec.out_names[k]

    def describe(self, mode: str, e: int) -> tuple[int | None, str]:
        """(the leaf whose derivative this is, or None for values; the entry in words)."""
        K, N = self.ref.n_out, self.ref.n_in
        mode = mode.removesuffix(IN64)  # fn's own float64 derivative (numerical path)
        if mode == "value":
            return None, self.out_name(e)
        if mode in ("jacfwd", "jacrev"):
            k, j = divmod(e, N)
            a, name = self.input_name(j)
            return a, f"d {self.out_name(k)} / d {name}"
        if mode == "jvp":
            leaf, k = divmod(e, K)
            return leaf, f"{self.out_name(k)} along a random tangent in {self.spec.leaf_names[leaf]}"
        if mode == "vjp":
            a, name = self.input_name(e)
            return a, f"random cotangent pulled back to {name}"
        if mode in ("hvp rev-over-rev", "hvp fwd-over-rev"):
            a, name = self.input_name(e)
            return a, f"(sum_k c_k d2 out_k) t at {name} (random c, t)"
        if mode == "fwd-over-fwd":
            return None, f"d2 {self.out_name(e)} along two random tangents"
        k, rest = divmod(e, N * N)
        j, l = divmod(rest, N)
        a, nj = self.input_name(j)
        _, nl = self.input_name(l)
        return a, f"d2 {self.out_name(k)} / d {nj} d {nl}"

    # -- the referee's rows: its budgets and the audit, for every truth path ---------------------
    def audit_rows(self, n, exclude, count=True, alone=False):
        """Rows to re-judge against the referee although everything agreed there: in the sweep
        (``count``), once per check, a few, since an error shared by fn and the float64 truth
        (the same special function, the same library) would otherwise never reach it; every row
        of a point re-checked ``alone``, whatever float64 says."""
        if alone:
            return np.arange(n)
        if not count or self.tally.audited or n == 0:
            return np.zeros(0, dtype=np.int64)
        rest = np.setdiff1d(np.arange(n), exclude)
        rows = np.sort(np.random.default_rng([self.seed, 23]).permutation(rest)[: self.audit_cap])
        self.tally.audited = int(rows.size)
        return rows

    def referee_rows(self, rows, count, cap=SHRINK_REFEREE_CAP):
        """The disagreeing ``rows`` sent to the referee, a seeded choice: in the sweep
        (``count``) within what is left of the check's budget (``refereed_cap``), the rest
        counted as unrefereed; a re-check of single points or a shrinker's round has ``cap`` of
        its own per call, so that a spent sweep budget never hides a failure from them."""
        order = np.random.default_rng([self.seed, 13]).permutation(rows.size)
        budget = max(0, self.refereed_cap - self.tally.refereed) if count else cap
        pick = rows[np.sort(order[:budget])]
        if count:
            self.tally.unrefereed += int(rows.size - pick.size)
            self.tally.refereed += int(pick.size)
        return pick

    # -- shrinking ---------------------------------------------------------------------------
    def shrink(self, x: np.ndarray, mode: str, kind: str, arg=None, dirs=None, max_rounds: int = 12):
        """A simpler input that still fails the same (mode, kind); deterministic and batched.
        ``dirs``: the failing point's (tangent, cotangent, second tangent), kept for every
        candidate so that a simpler input is judged along the same directions."""
        lo, hi = self.domains_flat[:, 0], self.domains_flat[:, 1]
        best = x.astype(np.float64)
        best_fail = None
        measured: dict[bytes, float] = {}  # a model's point costs 16 ms to order: each measured once

        def cx(v):
            key = v.tobytes()
            if key not in measured:
                measured[key] = complexity(v)
            return measured[key]

        for _ in range(max_rounds):
            cands = []
            # per-coordinate candidates only while few: beyond, whole-vector simplifications
            for j in range(best.size) if best.size <= 64 else ():
                v = best[j]
                opts = {0.0, 1.0, -1.0, float(np.trunc(v)), float(np.round(v)), v / 2, float(np.sign(v))}
                for digits in (1, 2, 3):
                    opts.add(float(f"{v:.{digits}g}"))
                for o in opts:
                    if o != v and lo[j] <= o <= hi[j] and simpler(o, v):
                        c = best.copy()
                        c[j] = o
                        cands.append(c)
            cx_best = cx(best)
            for simple_all in (
                np.clip(np.round(best), lo, hi),
                np.clip(two_digits(best), lo, hi),
            ):
                if not np.array_equal(simple_all, best) and cx(simple_all) < cx_best:
                    cands.append(simple_all)
            if not cands:
                break
            C = unique_rows(np.asarray(cands))
            C = C[np.argsort([cx(c) for c in C], kind="stable")][: 8 * self.chunk]
            found = None
            for s in range(0, len(C), self.chunk):
                part = C[s : s + self.chunk].astype(self.dtype)
                d = [np.repeat(v[None], len(part), 0) for v in dirs] if dirs is not None else [None] * 3
                for f in sorted(self.recheck(part, d[0], d[1], d[2], mode=mode)):
                    if (
                        f.mode == mode
                        and kind_of(mode, f.got, f.expected) == kind
                        and self.describe(mode, f.entry)[0] == arg
                    ):
                        found = (part[f.row].astype(np.float64), f)
                        break
                if found:
                    break
            if not found or cx(found[0]) >= cx_best:
                break
            best, best_fail = found
        return best, best_fail


def _idx(flat_i, shape, name):
    if not shape:
        return name
    return f"{name}[{', '.join(map(str, np.unravel_index(flat_i, shape)))}]"
