"""The ``entries`` path: the truth as the reference's full symbolic Jacobian (and Hessian).

For small inputs the reference's derivatives are expanded in SymPy entry by entry
(:mod:`gradcheck.oracles.reference`) and evaluated in three tiers: float64 NumPy over the whole
batch, NumPy long double at the points that disagree, and the mpmath truth (50 digits and more)
at those that still disagree, and at a few agreeing points as an audit.  Only a disagreement
with the mpmath truth is a failure.  :meth:`EntriesEngine._accuracy` measures the largest error
in ulps per quantity.
"""

from __future__ import annotations

import numpy as np

from ..oracles.mpmath_truth import Status
from ._accuracy import of_entries
from ._engine import Disagreement, Engine
from ._judge import Comparer

__all__ = ["EntriesEngine"]


class EntriesEngine(Engine):
    """The truth as the reference's full symbolic Jacobian (and Hessian), entry by entry."""

    path = "entries"

    def __init__(self, spec, ref, prog, points: int = 0):
        super().__init__(spec, ref, prog, points)
        self.cmp = Comparer(ref, prog, spec.dtype, spec.rtol, spec.atol, spec.order2_factor)
        self._truth_cache: dict[bytes, tuple] = {}

    def estimate(self, X, T, C, S):
        """The reference's float64 NumPy program over the batch: (X64, its quantities, at_kink)."""
        X64 = X.astype(np.float64)
        flat, at_kink = self.ref.float64_program()(X64)
        return X64, self.cmp.quantities(flat), at_kink

    def judge(self, X, T, C, S, got, est, count, alone, in64):
        """float64 NumPy over the batch, long double and the mpmath truth where it disagrees."""
        n = X.shape[0]
        X64, q, at_kink = est
        if count:
            self.tally.kink_points += int(at_kink.sum())
        if count and not self.accuracy_rows:
            self.accuracy_rows = of_entries(self, X, got, q, at_kink)
        res = self.cmp.compare(got, q, T.astype(np.float64), C.astype(np.float64), at_kink, X64)
        esc = np.zeros(n, dtype=bool)
        for _bad, escalate, *_ in res.values():
            esc |= escalate.any(axis=1)
        idx = np.flatnonzero(esc)
        audit = self.audit_rows(n, idx, count, alone)
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
        for _bad, escalate, *_ in res2.values():
            esc2 |= escalate.any(axis=1)
        idx2 = idx[esc2]
        if idx2.size == 0 and audit.size == 0:
            return []
        # tier 3: the mpmath truth, within the referee's budget
        pick = self.referee_rows(idx2, count)
        audit = np.setdiff1d(audit, pick)
        # escalated points with the truth's Hessian for the condition of derivatives; audited
        # points as the bulk judged them (without it)
        return self._tier3(pick, X, X64, T, C, got, at_kink, count, hessian=True) + self._tier3(
            audit, X, X64, T, C, got, at_kink, count, hessian=False
        )

    def _tier3(self, pick, X, X64, T, C, got, at_kink, count, hessian):
        if pick.size == 0:
            return []
        flats, stats, habs, hconds = [], [], [], []
        for i in pick:
            f, stt, h, hc = self.truth_at(X[i], hessian)
            flats.append(f)
            stats.append(stt)
            habs.append(h)
            hconds.append(hc)
        flat3, st3 = np.asarray(flats), np.asarray(stats)
        if count:
            whole = (st3[:, : self.ref.n_out] == Status.UNDEFINED).all(axis=1)
            self.tally.undefined += int(whole.sum())
            self.tally.partly_undefined += int(((st3 == Status.UNDEFINED).any(axis=1) & ~whole).sum())
        q3 = self.cmp.quantities(flat3, st3)
        sub3 = {k: v[pick] for k, v in got.items()}
        Habs = np.asarray(habs) if all(h is not None for h in habs) else None
        Hcond = np.asarray(hconds) if all(h is not None for h in hconds) else None
        res3 = self.cmp.compare(
            sub3, q3, T[pick].astype(np.float64), C[pick].astype(np.float64), at_kink[pick], X64[pick], Habs, Hcond
        )
        fails = []
        for mode, (bad, _esc, err, exp, gv) in res3.items():
            for r, e in zip(*np.nonzero(bad)):
                fails.append(
                    Disagreement(int(pick[r]), mode, int(e), float(exp[r, e]), float(gv[r, e]), float(err[r, e]))
                )
        return fails

    def truth_at(self, x, hessian=True):
        """The mpmath truth at one point: (values, :class:`Status`, Hessian sizes, condition
        terms), remembered per point (the accuracy table and the diagnosis ask again)."""
        key = (np.asarray(x, np.float64).tobytes(), hessian)
        if key not in self._truth_cache:
            x64 = np.asarray(x, np.float64)
            f, stt = self.ref.mp.truth(x64, self.big)
            self._truth_cache[key] = (
                f,
                stt,
                self.ref.mp.truth_hessian(x64) if hessian else None,
                self.ref.mp.truth_third_cond(x64) if hessian else None,
            )
        return self._truth_cache[key]
