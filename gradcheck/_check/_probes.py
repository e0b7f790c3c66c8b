"""The ``probes`` path: the truth's derivatives along random directions, O(n) per point.

For inputs too large to expand the Jacobian entry by entry, the reference's *values* are the
only symbolic object.  Its derivatives come from automatic differentiation of the SymPy DAG in
NumPy float64 (:mod:`gradcheck.oracles.tape`, an implementation independent of ``fn`` and of
JAX): the JVP along each leaf's random tangent, the VJP along a random cotangent (compared entry
by entry, so a failure names its input entry), and for ``order=2`` Hessian-vector products and
the second directional derivative.  Tolerances scale with how large the summed terms are,
estimated as the root mean square of the same product over three more random directions (the
statistical size of the rounding of a sum of n terms), and with the condition of the values
(the same estimate along ``x * z``, z random).

Where ``fn`` and the float64 truth disagree, the mpmath referee evaluates the reference at 50
digits and more (doubling until two precisions agree) and takes the same directional
derivatives by central differences at that precision: ``d/dt f(x + t v)`` for a JVP,
``d/dt c^T f(x + t e_j)`` for the j-th VJP entry, the mixed difference for second derivatives.
No n x n object is ever formed.
"""

from __future__ import annotations

import mpmath
import numpy as np

from ..oracles.mpmath_truth import MP_LOCK, Status, doubled, mp_reals, settled_floats, status_of
from ..oracles.tape import Tape
from ._accuracy import of_probes
from ._engine import SHRINK_REFEREE_CAP, Disagreement, Engine
from ._judge import judge_entries
from ._modes import mode_of

__all__ = ["ProbesEngine"]

_DRAWS = 3  # extra random directions for the size of the summed terms
_ENTRIES_PER_POINT = 8  # VJP / HVP entries refereed per point


def _rms(A):
    with np.errstate(all="ignore"):
        return np.sqrt(np.mean(np.where(np.isfinite(A), A, 0.0) ** 2, axis=0))


class ProbesEngine(Engine):
    """The truth as JVPs, VJPs and Hessian-vector products of the reference's values."""

    path = "probes"
    refereed_cap = 64  # mpmath points per check: each costs a few evaluations of the whole output

    def __init__(self, spec, ref, prog, points: int = 0):
        super().__init__(spec, ref, prog, points)
        self.tape = Tape(ref.inputs, ref.outputs)
        # an audited point costs a few dozen mpmath evaluations of the whole DAG: audit fewer
        # points of a large reference (one at 1,024 logits), never none
        self.audit_cap = max(1, min(self.audit_cap, 4000 // max(1, len(self.tape))))
        self.n_leaves = len(spec.leaf_shapes)
        self.masks = np.stack([(ref.arg_of == a).astype(np.float64) for a in range(self.n_leaves)])
        self._mp_cache: dict = {}

    # -- the float64 truth -------------------------------------------------------------------
    def truth64(self, X, T, C, S):
        """Per mode: (expected, magnitude of the summed terms, condition), float64."""
        tp, A, R = self.tape, self.n_leaves, _DRAWS
        B, N = X.shape
        rng = np.random.default_rng([self.seed, 17, B])
        Tr = rng.normal(size=(R, B, N))
        Cr = rng.normal(size=(R, B, self.ref.n_out))
        Sr = rng.normal(size=(R, B, N))
        Z = rng.normal(size=(R, B, N)) * X[None]
        vals = tp.values(X)
        v = tp.outputs(vals)
        dirs = [T[None] * self.masks[:, None, :]]  # (A, B, N)
        dirs += [Tr[r][None] * self.masks[:, None, :] for r in range(R)]
        dirs.append(Z)
        first, _ = tp.jvp(vals, X, np.concatenate(dirs, 0))
        out = {}
        out["value"] = (v, v, _rms(first[-R:]))
        jv = first[:A]  # (A, B, K)
        scale = _rms(np.stack([first[A * (1 + r) : A * (2 + r)] for r in range(R)]))
        out["jvp"] = (np.swapaxes(jv, 0, 1), np.swapaxes(np.abs(jv) + scale, 0, 1), 0.0)
        Cs = np.concatenate([C[None], Cr], 0)
        Ts = np.concatenate([T[None], Tr], 0) if self.spec.order == 2 else None
        gx, hx = tp.vjp(vals, X, Cs, Ts)
        out["vjp"] = (gx[0], np.abs(gx[0]) + _rms(gx[1:]), 0.0)
        if self.spec.order == 2:
            hv = (hx[0], np.abs(hx[0]) + _rms(hx[1:]), 0.0)
            out["hvp fwd-over-rev"] = hv
            out["hvp rev-over-rev"] = hv
            _, sec = tp.jvp(vals, X, np.concatenate([T[None], Tr], 0), np.concatenate([S[None], Sr], 0))
            out["fwd-over-fwd"] = (sec[0], np.abs(sec[0]) + _rms(sec[1:]), 0.0)
        return out

    def compare(self, got, truth, at_kink, rows=None, expected=None, status=None):
        sp_ = self.spec
        res = {}
        for mode, g in got.items():
            if mode not in truth:
                continue
            exp, mag, cond = truth[mode]
            if rows is not None:
                exp, mag = exp[rows], mag[rows]
                cond = cond[rows] if np.ndim(cond) else cond
            if expected is not None:
                exp = expected[mode]
            st = status_of(exp, self.big) if status is None else status[mode]
            f = sp_.order2_factor if mode_of(mode).order == 2 else 1.0
            res[mode] = judge_entries(
                g, exp, st, mag, cond, at_kink, sp_.atol, sp_.rtol, self.eps, self.big, f=f, probe=mode != "value"
            )
        return res

    # -- one batch ---------------------------------------------------------------------------
    def estimate(self, X, T, C, S):
        """The tape's float64 values, JVPs and VJPs over the batch, and where a kink lies."""
        X64, T64, C64, S64 = (A.astype(np.float64) for A in (X, T, C, S))
        return (X64, T64, C64, S64), self.truth64(X64, T64, C64, S64), self.ref.at_kink(X64)

    def judge(self, X, T, C, S, got, est, count, alone, in64):
        """The tape's float64 JVPs and VJPs over the batch, the mpmath referee where they disagree."""
        n = X.shape[0]
        (X64, T64, C64, S64), truth, at_kink = est
        if count:
            self.tally.kink_points += int(at_kink.sum())
        res = self.compare(got, truth, at_kink)
        if count and self.accuracy_rows is None:
            self.accuracy_rows = of_probes(self, X64, T64, C64, S64, got, truth, at_kink)
        esc = {m: r[1] for m, r in res.items()}
        rows = np.flatnonzero(np.any([e.any(axis=1) for e in esc.values()], axis=0))
        audit = self.audit_rows(n, rows, count, alone)
        if audit.size:
            # every K-vector mode whole, two entries of each per-input mode
            arng = np.random.default_rng([self.seed, 29])
            esc = {m: e.copy() for m, e in esc.items()}
            for m, e in esc.items():
                for r in audit:
                    if m in ("vjp", "hvp fwd-over-rev", "hvp rev-over-rev"):
                        e[r, arng.choice(e.shape[1], size=min(2, e.shape[1]), replace=False)] = True
                    else:
                        e[r, :] = True
        if rows.size == 0 and audit.size == 0:
            return []
        pick = np.union1d(self.referee_rows(rows, count, min(SHRINK_REFEREE_CAP, 8)), audit).astype(np.int64)
        fails = []
        for r in pick:
            fails += self._referee(int(r), X64[r], T64[r], C64[r], S64[r], got, truth, esc, at_kink[r], count)
        return fails

    # -- the mpmath referee ------------------------------------------------------------------
    def _mp_out(self, xm):
        vals = self.tape.values_mp(xm)
        return None if vals is None else mp_reals(vals)

    def _mp_derivative(self, x, dirs, weights, dps):
        """d/dt (order 1, one direction) or d2/ds dt (two directions) of f (or weights . f) at
        x, by central differences at ``dps`` digits; a list (K, or 1 with weights)."""
        with mpmath.workdps(dps + 20):
            xm = [mpmath.mpf(float(v)) for v in x]
            if not dirs:
                return self._mp_out(xm)
            h = mpmath.mpf(10) ** (-(dps // (3 if len(dirs) == 1 else 4)))
            dm = [[mpmath.mpf(float(v)) for v in d] for d in dirs]

            def F(*coef):
                pt = [xi + sum(c * d[j] for c, d in zip(coef, dm)) for j, xi in enumerate(xm)]
                o = self._mp_out(pt)
                if o is None:
                    return None
                if weights is not None:
                    return [mpmath.fsum(mpmath.mpf(float(w)) * v for w, v in zip(weights, o))]
                return o

            if len(dirs) == 1:
                a, b = F(h), F(-h)
                if a is None or b is None:
                    return None
                return [(u - v) / (2 * h) for u, v in zip(a, b)]
            pp, pm, mp_, mm = F(h, h), F(h, -h), F(-h, h), F(-h, -h)
            if any(v is None for v in (pp, pm, mp_, mm)):
                return None
            return [(a - b - c + d) / (4 * h * h) for a, b, c, d in zip(pp, pm, mp_, mm)]

    def _settled(self, x, dirs, weights):
        """The derivative to ~25 digits: precision doubles from 50 (plus the inputs' decimal
        exponents, :func:`~gradcheck.oracles.mpmath_truth.start_digits`) until two evaluations agree.
        Returns (values as float64, status) per entry (status 2: undefined or unsettled)."""
        key = (x.tobytes(), tuple(d.tobytes() for d in dirs), None if weights is None else weights.tobytes())
        if key in self._mp_cache:
            return self._mp_cache[key]
        with MP_LOCK:  # up to 8x (each evaluation is a difference of several of the whole DAG)
            cur, prev, settled, _ = doubled(lambda d: self._mp_derivative(x, dirs, weights, d), x, 8)
        res = self._to_float(cur, prev, settled)
        self._mp_cache[key] = res
        return res

    def _to_float(self, cur, prev, settled):
        return None if cur is None else settled_floats(cur, prev, settled, self.big)

    def _referee(self, r, x, t, c, s, got, truth, esc, kink, count):
        fails = []
        N = x.size
        for mode, e in esc.items():
            flagged = np.flatnonzero(e[r])
            if flagged.size == 0:
                continue
            g = np.asarray(got[mode][r], np.float64).reshape(-1)
            exp = np.full(g.size, np.nan)
            st = np.full(g.size, Status.UNDEFINED, np.int8)
            if mode == "value":
                res = self._settled(x, [], None)
                if res is not None:
                    exp, st = res
            elif mode == "jvp":
                K = self.ref.n_out
                for a in sorted({int(i) // K for i in flagged}):
                    res = self._settled(x, [t * self.masks[a]], None)
                    if res is not None:
                        exp[a * K : (a + 1) * K], st[a * K : (a + 1) * K] = res
            elif mode == "fwd-over-fwd":
                res = self._settled(x, [t, s], None)
                if res is not None:
                    exp, st = res
            else:  # vjp and hvp: entry by entry, the largest disagreements first
                tm = truth[mode][0][r]
                order = flagged[np.argsort(-np.abs(g[flagged] - tm[flagged]))][:_ENTRIES_PER_POINT]
                for j in order:
                    ej = np.zeros(N)
                    ej[j] = 1.0
                    dirs = [ej] if mode == "vjp" else [t, ej]
                    res = self._settled(x, dirs, c)
                    if res is not None:
                        exp[j], st[j] = res[0][0], res[1][0]
            if count:
                undefined = st == Status.UNDEFINED
                self.tally.undefined += int(mode == "value" and undefined.all())
                self.tally.partly_undefined += int(mode == "value" and undefined.any() and not undefined.all())
            one = {mode: got[mode][r : r + 1]}
            tr = {mode: truth[mode]}
            res = self.compare(
                one,
                tr,
                np.array([kink]),
                rows=np.array([r]),
                expected={mode: exp.reshape((1,) + np.shape(truth[mode][0][r]))},
                status={mode: st.reshape((1,) + np.shape(truth[mode][0][r]))},
            )
            bad, _esc, err, e2, g2 = res[mode]
            for ent in np.flatnonzero(bad[0]):
                fails.append(Disagreement(r, mode, int(ent), float(e2[0, ent]), float(g2[0, ent]), float(err[0, ent])))
        return fails
