"""Stages 4-6 of a check: the truth, the comparison, the referee, and shrinking.

:class:`Engine` holds what both paths share (directions, the batched run of ``fn``'s program,
names of entries, the batched shrinker); :class:`EntriesEngine` compares with the reference's
symbolic Jacobian and Hessian, entry by entry, and :class:`gradcheck.check._probes.ProbesEngine`
with its derivatives along random directions.

Every path refers a disagreement upwards before calling it a failure: float64 NumPy, then
(entries path) NumPy long double, then the mpmath truth at 50 digits and more where the
reference cancels.  Only a disagreement with the mpmath truth is a failure.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from ._program import run_sharded
from ._report import REFEREE_CAP

__all__ = ["Engine", "EntriesEngine", "kind_of", "complexity"]

SHRINK_REFEREE_CAP = 32  # per call of a single-point re-check or a round of shrinking
AUDIT_POINTS = 8  # agreeing points of the sweep re-judged against the mpmath truth anyway
MAX_CHUNK = 4096


def kind_of(mode: str, got: float, expected: float) -> str:
    if not math.isfinite(got) and math.isfinite(expected):
        return "non-finite"
    if mode == "value":
        return "value"
    if mode.startswith(("hessian", "hvp", "fwd-over")):
        return "second-derivative"
    return "gradient"


def judge_entries(g, exp, status, mag, cond, excuse, atol, rtol, eps, big, f=1.0, probe=False):
    """Entry verdicts: ``|g - exp| <= f (atol + rtol |mag| + 16 eps cond)`` (see TOLERANCES).

    ``status`` per entry of the truth: 0 usable, 1 beyond the dtype's range, 2 undefined, 3 not
    finite in this tier (refer upwards).  Returns (bad, escalate, err, exp, g) as (B, M) arrays.
    """
    g = np.asarray(g, dtype=np.float64).reshape(exp.shape)
    B = g.shape[0]
    g2, e2, s2 = g.reshape(B, -1), exp.reshape(B, -1), status.reshape(B, -1)
    with np.errstate(all="ignore"):
        mg = np.abs(np.asarray(mag, np.float64)).reshape(B, -1)
        mg = np.where(np.isfinite(mg), mg, 0.0)
        cd = np.broadcast_to(np.asarray(cond, np.float64), exp.shape).reshape(B, -1)
        cd = np.where(np.isfinite(cd), cd, 0.0)
        diff = np.abs(g2 - e2)
        tol = f * (atol + rtol * mg + 16 * eps * cd)
        usable = s2 == 0
        close = diff <= tol
        # truth beyond the dtype's range: overflow to inf of the right sign is right, and so is a
        # finite value of the right sign near the largest float; NaN, the wrong sign or a small
        # value is wrong.  For a random-direction probe the expected sum has no meaningful sign
        # once a term is beyond range: only NaN is judged there.
        beyond = s2 == 1
        ok_beyond = (np.sign(g2) == np.sign(e2)) & (np.isinf(g2) | (np.abs(g2) >= big * 0.5))
        if probe:
            ok_beyond = ~np.isnan(g2)
        bad = (usable & ~close) | (beyond & ~ok_beyond)
        escalate = (s2 == 3) | bad
        err = np.where(usable, np.where(e2 != 0, diff / np.abs(e2), diff), np.nan)
    ex = np.broadcast_to(np.asarray(excuse, bool).reshape(B, -1)[:, :1], bad.shape)
    return bad & ~ex, escalate & ~ex, err, e2, g2


class Engine:
    """What both truth paths share."""

    refereed_cap = REFEREE_CAP
    audit_cap = AUDIT_POINTS

    def __init__(self, spec, ref, prog):
        self.spec, self.ref, self.prog = spec, ref, prog
        self.dtype, self.seed = spec.dtype, spec.seed
        self.domains_flat = np.asarray([spec.leaf_domains[a] for a in ref.arg_of], dtype=np.float64)
        self.eps = float(np.finfo(spec.dtype).eps)
        self.big = float(np.finfo(spec.dtype).max)
        self.chunk = 16
        self.refereed = 0
        self.unrefereed = 0
        self.undefined = 0
        self.kink_points = 0
        self.devices = 1
        self.audited = 0
        self.leaf_offsets = np.cumsum([0] + [int(np.prod(s)) if s else 1 for s in spec.leaf_shapes])

    # -- directions and the fn side ----------------------------------------------------------
    def directions(self, n):
        """Random tangents T, cotangents C and second tangents S for n points (seeded)."""
        rng = np.random.default_rng([self.seed, 11, n])
        T = rng.normal(size=(n, self.ref.n_in)).astype(self.dtype)
        C = rng.normal(size=(n, self.ref.n_out)).astype(self.dtype)
        S = rng.normal(size=(n, self.ref.n_in)).astype(self.dtype)
        return T, C, S

    @staticmethod
    def _pad(A, size):
        B = A.shape[0]
        if B == size:
            return A
        return np.concatenate([A, np.repeat(A[-1:], size - B, axis=0)], axis=0)

    def run_fn(self, X, T, C, S, alone=False):
        """fn's program over the rows, in chunks of the sweep's batch size (one compilation);
        ``alone`` runs single points in a program of their own batch size."""
        n = X.shape[0]
        size = n if alone else self.chunk
        parts = []
        for s in range(0, n, size):
            Xs, Ts, Cs, Ss = (self._pad(A[s : s + size], size) for A in (X, T, C, S))
            m = min(size, n - s)
            out, split = run_sharded(self.prog, jnp.asarray(Xs), jnp.asarray(Ts), jnp.asarray(Cs), jnp.asarray(Ss))
            if split is not None:
                self.devices = max(self.devices, split["devices"])
            parts.append({k: np.asarray(v)[:m] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

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
        if mode.startswith("hvp"):
            a, name = self.input_name(e)
            return a, f"(sum_k c_k d2 out_k) t at {name} (random c, t)"
        if mode == "fwd-over-fwd":
            return None, f"d2 {self.out_name(e)} along two random tangents"
        k, rest = divmod(e, N * N)
        j, l = divmod(rest, N)
        a, nj = self.input_name(j)
        _, nl = self.input_name(l)
        return a, f"d2 {self.out_name(k)} / d {nj} d {nl}"

    def audit_rows(self, n, exclude):
        """Rows of the sweep to re-judge against the mpmath truth although everything agreed
        there: an error shared by fn and the float64 truth (the same special function, the same
        library) would otherwise never reach the referee.  Once per check."""
        if self.audited or n == 0:
            return np.zeros(0, dtype=np.int64)
        rest = np.setdiff1d(np.arange(n), exclude)
        rows = np.sort(np.random.default_rng([self.seed, 23]).permutation(rest)[: self.audit_cap])
        self.audited = int(rows.size)
        return rows

    def failure_argument(self, mode, e):
        return self.describe(mode, e)[0]

    # -- shrinking ---------------------------------------------------------------------------
    def shrink(self, x: np.ndarray, mode: str, kind: str, arg=None, dirs=None, max_rounds: int = 12):
        """A simpler input that still fails the same (mode, kind); deterministic and batched.
        ``dirs``: the failing point's (tangent, cotangent, second tangent), kept for every
        candidate so that a simpler input is judged along the same directions."""
        lo, hi = self.domains_flat[:, 0], self.domains_flat[:, 1]
        best = x.astype(np.float64)
        best_fail = None
        for _ in range(max_rounds):
            cands = []
            # per-coordinate candidates only while few: beyond, whole-vector simplifications
            for j in (range(best.size) if best.size <= 64 else ()):
                v = best[j]
                opts = {0.0, 1.0, -1.0, float(np.trunc(v)), float(np.round(v)), v / 2, float(np.sign(v))}
                for d in (1, 2, 3):
                    opts.add(float(f"{v:.{d}g}"))
                for o in opts:
                    if o != v and lo[j] <= o <= hi[j] and simpler(o, v):
                        c = best.copy()
                        c[j] = o
                        cands.append(c)
            for simple_all in (np.clip(np.round(best), lo, hi),
                               np.clip(np.asarray([float(f"{v:.2g}") for v in best]), lo, hi)):
                if not np.array_equal(simple_all, best) and complexity(simple_all) < complexity(best):
                    cands.append(simple_all)
            if not cands:
                break
            C = np.unique(np.asarray(cands), axis=0)
            C = C[np.argsort([complexity(c) for c in C], kind="stable")][: 8 * self.chunk]
            found = None
            for s in range(0, len(C), self.chunk):
                part = C[s : s + self.chunk].astype(self.dtype)
                d = [np.repeat(v[None], len(part), 0) for v in dirs] if dirs is not None else [None] * 3
                for row, m, e, exp, gv, err in sorted(self.evaluate(part, *d, count=False)):
                    if m == mode and kind_of(m, gv, exp) == kind and self.describe(m, e)[0] == arg:
                        found = (part[row].astype(np.float64), (m, e, exp, gv, err))
                        break
                if found:
                    break
            if not found or complexity(found[0]) >= complexity(best):
                break
            best, best_fail = found
        return best, best_fail


def complexity(x) -> float:
    x = np.atleast_1d(np.asarray(x, np.float64))
    total = 0.0
    for v in x:
        if v == 0:
            continue
        digits = len(f"{abs(v):.15g}".replace(".", "").lstrip("0").rstrip("0")) if np.isfinite(v) else 20
        total += 1 + digits + abs(math.log10(abs(v))) / 10 + (0.5 if v < 0 else 0)
    return total


def simpler(new, old) -> bool:
    return complexity(new) < complexity(old)


def _idx(flat_i, shape, name):
    if not shape:
        return name
    return f"{name}[{', '.join(map(str, np.unravel_index(flat_i, shape)))}]"


@dataclasses.dataclass
class Quantities:
    """Reference quantities at a batch of points (float64 or long double) and a status per entry.

    status: 0 usable, 1 beyond the dtype's range (inf is then right), 2 undefined (skip),
    3 not finite in this tier (refer upwards).
    """

    values: np.ndarray  # (B, K)
    jac: np.ndarray  # (B, K, N)
    hess: np.ndarray | None  # (B, K, N, N)
    status_v: np.ndarray
    status_j: np.ndarray
    status_h: np.ndarray | None


class Comparer:
    """Entry verdicts of the ``entries`` path (the full symbolic Jacobian and Hessian)."""

    def __init__(self, ref, prog, dtype, rtol, atol, order2_factor):
        self.ref, self.prog, self.dtype = ref, prog, dtype
        self.rtol, self.atol = rtol, atol
        self.f2 = order2_factor
        self.big = float(np.finfo(dtype).max)
        self.eps = float(np.finfo(dtype).eps)
        self.n_args = len(prog.shapes)

    def quantities(self, flat, status=None) -> Quantities:
        v, J, H = self.ref.split(flat)
        if status is None:
            fin = np.isfinite(flat)
            mag = np.abs(np.where(fin, flat, 0))
            status = np.where(fin, np.where(mag > self.big, 1, 0), 3).astype(np.int8)
        sv, sj, sh = self.ref.split(status)
        return Quantities(v, J, H, sv, sj, sh)

    def compare(self, got: dict[str, np.ndarray], q: Quantities, T, C, at_kink, X=None, Habs=None, Hcond=None):
        """Per point and per (mode), an array of entry verdicts.

        Returns dict mode -> (bad (B, ...), escalate (B,), err (B, ...), expected, gotv).
        bad: a real disagreement with a usable truth; escalate: the point needs a better truth.
        """
        out = {}
        excuse_d = at_kink[:, None]
        excuse_v = at_kink[:, None] if self.ref.jumps else np.zeros_like(at_kink[:, None])

        def judge(g, exp, status, mag, cond, excuse, f=1.0, probe=False):
            return judge_entries(g, exp, status, mag, cond, excuse, self.atol, self.rtol, self.eps,
                                 self.big, f=f, probe=probe)

        N = self.ref.n_in
        absx = np.abs(np.asarray(X, np.float64)) if X is not None else np.zeros((at_kink.shape[0], N))
        with np.errstate(all="ignore"):
            Jabs = np.abs(np.where(np.isfinite(q.jac), q.jac, 0.0))
            # how far rounding the input can move each value / derivative (condition)
            # how far rounding of intermediates the size of the inputs can move each result
            cond_v = np.einsum("bkn,bn->bk", Jabs, absx)
            cond_j = np.einsum("bkjl,bl->bkj", Habs, absx) if Habs is not None else np.zeros_like(Jabs)
            cond_j = np.where(np.isfinite(cond_j), cond_j, 0.0)
        for mode, g in got.items():
            if mode == "value":
                out[mode] = judge(g, q.values, q.status_v, q.values, cond_v, excuse_v)
            elif mode in ("jacfwd", "jacrev"):
                out[mode] = judge(g, q.jac, q.status_j, q.jac, cond_j, excuse_d)
            elif mode == "jvp":
                # per argument a: J[:, :, cols of a] @ t[cols of a]
                exps, scs, cds, sts = [], [], [], []
                for a in range(self.n_args):
                    m = (self.ref.arg_of == a)
                    ta = np.where(m, T, 0.0)
                    with np.errstate(all="ignore"):
                        Jz = np.where(np.isfinite(q.jac), q.jac, 0.0)
                        exps.append(np.einsum("bkn,bn->bk", Jz, ta))
                        scs.append(np.einsum("bkn,bn->bk", Jabs, np.abs(ta)))
                        cds.append(np.einsum("bkn,bn->bk", cond_j, np.abs(ta)))
                    sts.append(np.max(np.where(m[None, None, :], q.status_j, 0), axis=2))
                exp, sc, cd, stt = np.stack(exps, 1), np.stack(scs, 1), np.stack(cds, 1), np.stack(sts, 1)
                out[mode] = judge(g, exp, stt, sc, cd, excuse_d, probe=True)
            elif mode == "vjp":
                with np.errstate(all="ignore"):
                    Jz = np.where(np.isfinite(q.jac), q.jac, 0.0)
                    exp = np.einsum("bkn,bk->bn", Jz, C)
                    sc = np.einsum("bkn,bk->bn", Jabs, np.abs(C))
                    cd = np.einsum("bkn,bk->bn", cond_j, np.abs(C))
                stt = np.max(q.status_j, axis=1)
                out[mode] = judge(g, exp, stt, sc, cd, excuse_d, probe=True)
            elif mode.startswith("hessian"):
                cond_h = 0.0 if Hcond is None else np.where(np.isfinite(Hcond), Hcond, 0.0)
                out[mode] = judge(g, q.hess, q.status_h, q.hess, cond_h, excuse_d, self.f2)
        return out




class EntriesEngine(Engine):
    """The truth as the reference's full symbolic Jacobian (and Hessian), entry by entry."""

    path = "entries"

    def __init__(self, spec, ref, prog):
        super().__init__(spec, ref, prog)
        self.cmp = Comparer(ref, prog, spec.dtype, spec.rtol, spec.atol, spec.order2_factor)
        self._truth_cache: dict[bytes, tuple] = {}

    def evaluate(self, X: np.ndarray, T=None, C=None, S=None, count=True, alone=False):
        """Confirmed failures at the rows of X: list of (row, mode, flat entry, exp, got, err)."""
        n = X.shape[0]
        if T is None:
            T, C, S = self.directions(n)
        got = self.run_fn(X, T, C, S, alone=alone)
        flat, at_kink = self.ref.float64_program()(X.astype(np.float64))
        if count:
            self.kink_points += int(at_kink.sum())
        q = self.cmp.quantities(flat)
        X64 = X.astype(np.float64)
        if count and not self.accuracy_rows:
            self._accuracy(X, got, q, at_kink)
        res = self.cmp.compare(got, q, T.astype(np.float64), C.astype(np.float64), at_kink, X64)
        esc = np.zeros(n, dtype=bool)
        for bad, escalate, *_ in res.values():
            esc |= escalate.any(axis=1)
        idx = np.flatnonzero(esc)
        audit = self.audit_rows(n, idx) if count else np.zeros(0, dtype=np.int64)
        if alone:  # a failure re-checked alone is judged against the mpmath truth, whatever float64 says
            audit = np.arange(n)
        if idx.size == 0 and audit.size == 0:
            return []
        # tier 2: long double reference at the disagreeing points
        if idx.size == 0:
            return self._tier3(audit, X, X64, T, C, got, at_kink, count, hessian=False)
        sub = {k: v[idx] for k, v in got.items()}
        with np.errstate(over="ignore"):  # exp(1000) in long double is inf in float64: tier 3 then
            q2 = self.cmp.quantities(self.ref.longdouble(X[idx].astype(np.float64)).astype(np.float64))
        res2 = self.cmp.compare(sub, q2, T[idx].astype(np.float64), C[idx].astype(np.float64), at_kink[idx], X64[idx])
        esc2 = np.zeros(idx.size, dtype=bool)
        for bad, escalate, *_ in res2.values():
            esc2 |= escalate.any(axis=1)
        idx2 = idx[esc2]
        if idx2.size == 0 and audit.size == 0:
            return []
        # tier 3: the mpmath truth, at most REFEREE_CAP points in the sweep; the re-checks of
        # single points and the shrinker's candidates (count=False) have a budget of their own
        # per call, so a spent sweep budget never hides a failure from them
        order = np.random.default_rng([self.seed, 13]).permutation(idx2.size)
        budget = max(0, self.refereed_cap - self.refereed) if count else SHRINK_REFEREE_CAP
        pick = idx2[np.sort(order[:budget])]
        if count:
            self.unrefereed += int(idx2.size - pick.size)
        if count:
            self.refereed += int(pick.size)
        audit = np.setdiff1d(audit, pick)
        # escalated points with the truth's Hessian for the condition of derivatives; audited
        # points as the bulk judged them (without it)
        return (self._tier3(pick, X, X64, T, C, got, at_kink, count, hessian=True)
                + self._tier3(audit, X, X64, T, C, got, at_kink, count, hessian=False))

    def _tier3(self, pick, X, X64, T, C, got, at_kink, count, hessian):
        if pick.size == 0:
            return []
        flats, stats, habs, hconds = [], [], [], []
        for i in pick:
            f, stt, h, hc = self._truth(X[i], hessian)
            flats.append(f)
            stats.append(stt)
            habs.append(h)
            hconds.append(hc)
        flat3, st3 = np.asarray(flats), np.asarray(stats)
        if count:
            self.undefined += int((st3[:, : self.ref.n_out] == 2).all(axis=1).sum())
        q3 = self.cmp.quantities(flat3, st3)
        sub3 = {k: v[pick] for k, v in got.items()}
        Habs = np.asarray(habs) if all(h is not None for h in habs) else None
        Hcond = np.asarray(hconds) if all(h is not None for h in hconds) else None
        res3 = self.cmp.compare(sub3, q3, T[pick].astype(np.float64), C[pick].astype(np.float64),
                                at_kink[pick], X64[pick], Habs, Hcond)
        fails = []
        for mode, (bad, _esc, err, exp, gv) in res3.items():
            for r, e in zip(*np.nonzero(bad)):
                fails.append((int(pick[r]), mode, int(e), float(exp[r, e]), float(gv[r, e]), float(err[r, e])))
        return fails

    accuracy_rows: list = []

    def _accuracy(self, X, got, q, at_kink):
        """Per quantity (each value, first and second derivative entry), the largest error in
        ulps of the dtype at the truth, and where: the float64 truth finds the worst point, the
        mpmath truth measures it (libm's ULP tables, for derivatives)."""
        dt = np.dtype(self.dtype).type
        rows = []
        items = [("value", got.get("value"), q.values, q.status_v)]
        if "jacrev" in got or "jacfwd" in got:
            items.append(("jac", got.get("jacrev", got.get("jacfwd")), q.jac, q.status_j))
        hm = next((m for m in ("hessian fwd-over-rev", "hessian rev-over-rev", "hessian fwd-over-fwd") if m in got), None)
        if hm is not None and q.hess is not None:
            items.append(("hess", got[hm], q.hess, q.status_h))
        ok_rows = ~np.asarray(at_kink, bool)
        for what, g, truth, status in items:
            if g is None:
                continue
            B = truth.shape[0]
            g2 = np.asarray(g, np.float64).reshape(B, -1)
            t2, s2 = truth.reshape(B, -1), status.reshape(B, -1)
            with np.errstate(all="ignore"):
                # ulps at the larger of truth and result: a truth of 0 has no useful ulp
                ulp = np.spacing(np.maximum(np.abs(t2), np.abs(g2)).astype(dt)).astype(np.float64)
                ulp = np.where(ulp > 0, ulp, np.spacing(dt(0)))
                e = np.abs(g2 - t2) / ulp
            e = np.where((s2 == 0) & ok_rows[:, None] & np.isfinite(e), e, -1.0)
            for m in range(e.shape[1]):
                r = int(np.argmax(e[:, m]))
                if e[r, m] < 0:
                    continue
                rows.append((what, m, r))
        out = []
        by_what = {w: gg for w, gg, *_ in items}
        for what, m, r in rows:
            f, st, *_ = self._truth(X[r], hessian=False)
            K, N = self.ref.n_out, self.ref.n_in
            flat_i = m if what == "value" else K + m if what == "jac" else K + K * N + m
            if st[flat_i] != 0:
                continue
            truth = float(f[flat_i])
            gv = float(np.asarray(by_what[what], np.float64).reshape(X.shape[0], -1)[r, m])
            ulp = float(np.spacing(dt(max(abs(truth), abs(gv))))) or float(np.spacing(dt(0)))
            if what == "value":
                name = self.out_name(m)
            elif what == "jac":
                k, j = divmod(m, N)
                name = f"d {self.out_name(k)} / d {self.input_name(j)[1]}"
            else:
                k, rest = divmod(m, N * N)
                j, l = divmod(rest, N)
                name = f"d2 {self.out_name(k)} / d {self.input_name(j)[1]} d {self.input_name(l)[1]}"
            out.append({"quantity": name, "order": {"value": 0, "jac": 1, "hess": 2}[what],
                        "max_ulps": abs(gv - truth) / ulp, "input": [float(v) for v in X[r]],
                        "got": gv, "truth": truth})
        self.accuracy_rows = out

    def _truth(self, x, hessian=True):
        key = (np.asarray(x, np.float64).tobytes(), hessian)
        if key not in self._truth_cache:
            x64 = np.asarray(x, np.float64)
            f, stt = self.ref.truth(x64, self.big)
            self._truth_cache[key] = (f, stt, self.ref.truth_hessian(x64) if hessian else None,
                                      self.ref.truth_third_cond(x64) if hessian else None)
        return self._truth_cache[key]
