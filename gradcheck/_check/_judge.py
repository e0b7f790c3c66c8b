"""Entry verdicts: where ``fn``'s quantities and a truth's disagree beyond the tolerance.

:func:`judge_entries` is the rule of the ``entries`` and ``probes`` paths (see
:data:`TOLERANCES`).  The :class:`Comparer` of the ``entries`` path turns the reference's full
Jacobian and Hessian (:class:`Quantities`: float64, long double or the mpmath truth) into the
expected value of each of ``fn``'s modes (values, Jacobians, JVPs, VJPs, Hessians), with the
size and condition of each entry, and judges them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..oracles.mpmath_truth import Status, status_of
from ._modes import mode_of

__all__ = ["Comparer", "Quantities", "judge_entries", "tolerance"]


def tolerance(f, atol: float, rtol: float, mag, slack=0.0):
    """The acceptance rule of every path: ``|got - truth| <= f (atol + rtol |mag|) + slack``.
    ``slack`` is what the path's truth adds: ``16 eps cond`` (times ``f``) for the SymPy paths,
    the error bound and fn's measured noise for the numerical one."""
    return f * (atol + rtol * np.abs(mag)) + slack


def judge_entries(g, exp, status, mag, cond, excuse, atol, rtol, eps, big, f=1.0, probe=False):
    """Entry verdicts: ``|g - exp| <= f (atol + rtol |mag| + 16 eps cond)`` (see TOLERANCES).

    ``status`` per entry of the truth (:class:`~gradcheck.oracles.mpmath_truth.Status`): USABLE,
    BEYOND the dtype's range, UNDEFINED, or REFER (not finite in this tier: refer upwards).
    Returns (bad, escalate, err, exp, g) as (B, M) arrays.
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
        tol = tolerance(f, atol, rtol, mg, f * 16 * eps * cd)
        usable = s2 == Status.USABLE
        # a truth formed from usable entries can itself lie beyond the dtype's range (a random
        # cotangent times e^709 overflows float64; sinh(89) along a tangent of 1.8 is beyond
        # float32): a range limit, judged as one below, never as |inf - inf| = NaN
        over = usable & (np.isnan(e2) | (np.abs(e2) > big))
        usable &= ~over
        close = diff <= tol
        # truth beyond the dtype's range: overflow to inf of the right sign is right, and so is a
        # finite value of the right sign near the largest float; NaN, the wrong sign or a small
        # value is wrong (infinities that agree agree).  For a random-direction probe the
        # expected sum has no meaningful sign once a term is beyond range: only NaN is judged there.
        beyond = s2 == Status.BEYOND
        ok_sign = (np.sign(g2) == np.sign(e2)) & (np.isinf(g2) | (np.abs(g2) >= big * 0.5))
        ok_beyond = ~np.isnan(g2) if probe else ok_sign
        # a NaN sum of finite entries (inf - inf in float64): its size is unknown, nothing to judge
        ok_over = np.isnan(e2) | ok_sign
        bad = (usable & ~close) | (beyond & ~ok_beyond) | (over & ~ok_over)
        escalate = (s2 == Status.REFER) | bad
        err = np.where(usable, np.where(e2 != 0, diff / np.abs(e2), diff), np.nan)
    ex = np.broadcast_to(np.asarray(excuse, bool).reshape(B, -1)[:, :1], bad.shape)
    return bad & ~ex, escalate & ~ex, err, e2, g2


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
            status = status_of(flat, self.big)
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
            return judge_entries(
                g, exp, status, mag, cond, excuse, self.atol, self.rtol, self.eps, self.big, f=f, probe=probe
            )

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
                    m = self.ref.arg_of == a
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
            elif mode_of(mode).order == 2:  # the Hessians
                cond_h = 0.0 if Hcond is None else np.where(np.isfinite(Hcond), Hcond, 0.0)
                out[mode] = judge(g, q.hess, q.status_h, q.hess, cond_h, excuse_d, self.f2)
        return out
