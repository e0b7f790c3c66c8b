"""The mpmath truth of a reference: its quantities at 50 digits and more, the precision doubled
until two evaluations agree, and the condition terms (second and third derivatives) that scale
the tolerance of a derivative at a confirmed disagreement.

:class:`MpTruth` is a value the reference holds (``ref.mp``, built from its expressions alone:
the engines call ``ref.mp.truth(x)``); the functions below are shared with the ``probes`` path,
which takes its high-precision derivatives by differences.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Callable

import mpmath
import numpy as np
import sympy as sp

from ._expressions import drop_dirac, drop_unevaluated
from .specials import mpmath_modules

__all__ = ["MP_LOCK", "TRUTH_DIGITS", "MpTruth", "Status", "agree", "doubled", "mp_real", "mp_reals"]
__all__ += ["settled_floats", "start_digits", "status_of"]

#: Decimal digits of the mpmath truth.
TRUTH_DIGITS = 50


class Status(enum.IntEnum):
    """The status of a truth's entry, in every tier (int8 arrays hold these codes)."""

    USABLE = 0  # a number to judge against
    BEYOND = 1  # beyond the dtype's largest finite number: overflow is then the right answer
    UNDEFINED = 2  # the reference is undefined there, or never settled: not judged
    REFER = 3  # not finite in this tier (float64, long double): refer to a better truth


def status_of(values, big: float) -> np.ndarray:
    """The status of a floating-point tier's entries: USABLE, BEYOND past ``big``, REFER where
    not finite."""
    with np.errstate(all="ignore"):
        fin = np.isfinite(values)
        beyond = np.abs(np.where(fin, values, 0)) > big
        return np.where(fin, np.where(beyond, Status.BEYOND, Status.USABLE), Status.REFER).astype(np.int8)


#: Held while the global mpmath precision is changed: the truth raises ``mpmath.mp.dps``.
MP_LOCK = threading.Lock()


def start_digits(x) -> int:
    """The digits a truth at ``x`` starts from: :data:`TRUTH_DIGITS` plus the largest decimal
    exponent among the inputs.

    Two precisions agreeing proves nothing when both are too short for the inputs themselves:
    ``erfinv(2p - 1)`` at p = 1e-150 is ``erfinv(-1) = -inf`` at 50 and at 100 digits alike (2p
    is lost beside the 1), and -26.12 only from 150 digits on.  A cancellation between the inputs
    and numbers of order 1 loses at most as many digits as the inputs' exponents span, so starting
    above that, the doubling then shows whether the result settled.
    """
    a = np.abs(np.asarray(x, np.float64)).ravel()
    a = a[(a > 0) & np.isfinite(a)]
    if not a.size:
        return TRUTH_DIGITS
    return TRUTH_DIGITS + round(float(np.max(np.abs(np.log10(a)))))


def mp_reals(vals) -> list:
    """Real mpf values of an mpmath evaluation, NaN where a value is complex or not a number."""
    out = []
    for v in vals:
        try:
            out.append(mp_real(v))
        except (TypeError, ValueError):
            out.append(mpmath.nan)
    return out


def mp_real(v):
    """``v`` as a real mpmath number; NaN where its imaginary part is not negligible."""
    v = mpmath.mpmathify(v)
    if isinstance(v, mpmath.mpc):
        # relative to the whole value: sqrt(-9e-60) = 3e-30 i is complex, not a real 0
        if abs(v.imag) > mpmath.mpf(10) ** (-TRUTH_DIGITS // 2) * abs(v):
            return mpmath.nan
        v = v.real
    return v


def agree(a, b, digits) -> bool:
    """Whether two mpmath evaluations agree to ``digits`` digits, entry by entry (NaN with NaN,
    inf with the same inf); an evaluation that failed (None) agrees with nothing."""
    if a is None or b is None:
        return False  # undefined (log(0), 1/0) may be a cancellation more digits resolve
    tol = mpmath.mpf(10) ** (-digits)
    for u, v in zip(a, b):
        if mpmath.isnan(u) or mpmath.isnan(v):
            if not (mpmath.isnan(u) and mpmath.isnan(v)):
                return False
        elif mpmath.isinf(u) or mpmath.isinf(v):
            if u != v:
                return False
        elif abs(u - v) > tol * max(abs(u), abs(v)):
            return False
    return True


class MpTruth:
    """The reference's quantities (its outputs, Jacobian and Hessian if any, flat), and the
    condition terms, in mpmath at one point.  Built from the expressions alone; each mpmath
    program is lambdified on its first use."""

    _HESS_LIMIT = 20000

    def __init__(self, inputs: list, outputs: list, jacobian: list, hessian: list | None) -> None:
        self.inputs, self.outputs, self.jacobian, self.hessian = inputs, outputs, jacobian, hessian
        self.n_in, self.n_out = len(inputs), len(outputs)
        # the outputs, then the Jacobian, then the Hessian (if any), flat: the order of every flat
        # program of the reference (its float64 and NumPy programs lambdify this list too)
        self.exprs = list(outputs) + [d for row in jacobian for d in row]
        if hessian is not None:
            self.exprs += [d for m in hessian for row in m for d in row]
        self._mp: Callable | None = None  # every quantity at once
        self._each: list[Callable] | None = None  # each quantity alone
        self._hess: Callable | None = None  # |Hessian| entries (the condition of a derivative)
        self._third: Callable | None = None  # third derivatives (the condition of a second one)

    def truth_hessian(self, x: np.ndarray) -> np.ndarray | None:
        """|d2 f_k / dx_j dx_l| at one point, (K, N, N), or None when too large to derive.

        Used only where a disagreement was confirmed, to scale the tolerance of a derivative by
        how much rounding the input alone could move it (sum_l |H_kjl| |x_l|).
        """
        K, N = self.n_out, self.n_in
        if K * N * N > self._HESS_LIMIT:
            return None
        if self._hess is None:
            hess = self.hessian
            if hess is None:
                hess = [[[drop_dirac(sp.diff(d, v)) for v in self.inputs] for d in row] for row in self.jacobian]
                hess = [[[drop_unevaluated(e) for e in r] for r in m] for m in hess]
            flat = [e for m in hess for r in m for e in r]
            self._hess = sp.lambdify(self.inputs, flat, modules=mpmath_modules(), cse=True)
        out = _sizes_at(self._hess, x)
        return None if out is None else out.reshape(K, N, N)

    def truth_third_cond(self, x: np.ndarray) -> np.ndarray | None:
        """sum_m |d3 f_k / dx_j dx_l dx_m| |x_m| at one point, (K, N, N), or None.

        The condition of a second derivative: how far rounding the input alone can move it.
        Without it a Hessian entry that is exactly 0 only by cancellation (atan2's mixed
        derivative (x^2 - y^2) / (x^2 + y^2)^2 at x = y, formed from terms of size 1/x^2) is
        held to the absolute floor, which no float64 evaluation can meet.  Derived from the
        reference's Hessian only for an order-2 check and only at confirmed disagreements.
        """
        K, N = self.n_out, self.n_in
        if self.hessian is None or K * N * N * N > self._HESS_LIMIT:
            return None
        if self._third is None:
            third = [
                drop_unevaluated(drop_dirac(sp.diff(h, v)))
                for m in self.hessian
                for r in m
                for h in r
                for v in self.inputs
            ]
            self._third = sp.lambdify(self.inputs, third, modules=mpmath_modules(), cse=True)
        out = _sizes_at(self._third, x)
        if out is None:
            return None
        with np.errstate(all="ignore"):
            return out.reshape(K, N, N, N) @ np.abs(np.asarray(x, np.float64))

    def _mp_values(self, x, dps, each: bool = False):
        """The reference quantities at ``dps`` digits: a list of real mpf (NaN where undefined)."""
        assert self._mp is not None  # lambdified by truth() before the first call
        with mpmath.workdps(dps):
            args = [mpmath.mpf(float(v)) for v in x]
            try:
                vals = self._mp(*args)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                vals = self._mp_one_by_one(args) if each else None
                if vals is None:
                    return None
            return mp_reals(vals)

    def _mp_one_by_one(self, args):
        """Each quantity alone, NaN where it raises: one undefined entry (x / y at y = 0) must not
        void the other entries of its point (x + y).  None when every entry raised."""
        if self._each is None:
            self._each = [sp.lambdify(self.inputs, e, modules=mpmath_modules()) for e in self.exprs]
        vals, ok = [], False
        for f in self._each:
            try:
                vals.append(f(*args))
                ok = True
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                vals.append(mpmath.nan)
        return vals if ok else None

    def truth(self, x: np.ndarray, dtype_max: float) -> tuple[np.ndarray, np.ndarray]:
        """The reference quantities at one point, to at least 25 correct digits.

        Evaluated with mpmath at ``TRUTH_DIGITS`` digits plus the inputs' decimal exponents
        (:func:`start_digits`: ``erfinv(2p - 1)`` at p = 1e-150 needs 150 digits before the
        doubling can tell anything) and again at twice as many, doubling until two evaluations
        agree to ``TRUTH_DIGITS / 2`` digits (up to 16x): a reference that itself cancels
        (``-log(1 - sigma(z))`` at z = 102 needs 45 digits) gets the precision it needs instead
        of a wrong "truth".

        Returns (values as float64, :class:`Status`): UNDEFINED where the reference is undefined
        there (complex, division by zero, NaN, no two precisions agreed, or a derivative of an
        output that is infinite there).
        """
        if self._mp is None:
            self._mp = sp.lambdify(self.inputs, self.exprs, modules=mpmath_modules(), cse=True)
        M = len(self.exprs)
        out = np.full(M, np.nan)
        status = np.full(M, Status.UNDEFINED, dtype=np.int8)
        with MP_LOCK:
            cur, prev, settled, dps = doubled(lambda d: self._mp_values(x, d), x, 16)
            if cur is None:
                # raised at every precision up to 16 x TRUTH_DIGITS (more digits first: log(1 - sigma(500))
                # raises at 50 digits and not at 400): each quantity alone now, so that one
                # undefined entry (x / y at y = 0) does not void the others (x + y)
                prev, cur = self._mp_values(x, dps // 2, each=True), self._mp_values(x, dps, each=True)
                if cur is None:
                    return out, status
                settled = agree(prev, cur, TRUTH_DIGITS // 2)
        out, status = settled_floats(cur, prev, settled, dtype_max)
        return out, self._undefined_at_poles(cur, status)

    def _undefined_at_poles(self, cur, status: np.ndarray) -> np.ndarray:
        """Derivatives of an output that is infinite at a finite input are UNDEFINED.

        mpmath has no overflow, so an infinite value is a pole or an endpoint singularity
        (``ndtri(0) = -inf``, ``log(0)``), not a large number: a function is not differentiable
        where it is not finite, and JAX's derivative there (``ndtri'(0) = 0``) is a convention.
        """
        K, N = self.n_out, self.n_in
        poles = [k for k in range(K) if mpmath.isinf(cur[k])]
        if not poles:
            return status
        status = status.copy()
        for k in poles:
            status[K + k * N : K + (k + 1) * N] = Status.UNDEFINED
            if len(status) > K + K * N:
                status[K + K * N + k * N * N : K + K * N + (k + 1) * N * N] = Status.UNDEFINED
        return status


def _sizes_at(f: Callable, x) -> np.ndarray | None:
    """|f(x)| entry by entry, f lambdified in mpmath, at :func:`start_digits` digits, as float64
    (NaN as 0, the condition terms' "nothing known"); None where f raises there."""
    with MP_LOCK, mpmath.workdps(start_digits(x)):
        try:
            vals = f(*[mpmath.mpf(float(v)) for v in x])
            out = np.array([abs(float(mp_real(v))) for v in vals], dtype=np.float64)
        except (ZeroDivisionError, ValueError, OverflowError, TypeError):
            return None
    return np.nan_to_num(out, nan=0.0, posinf=np.inf)


def doubled(evaluate: Callable[[int], list | None], x, ceiling: int) -> tuple:
    """``evaluate(dps)`` at :func:`start_digits` digits, then at twice as many, until two
    evaluations agree to ``TRUTH_DIGITS / 2`` digits or the digits reach ``ceiling`` times
    ``TRUTH_DIGITS`` above the start.  Returns (last, the one before, whether they agreed, its
    digits).  Call it holding :data:`MP_LOCK`."""
    dps = start_digits(x)
    limit = ceiling * TRUTH_DIGITS + dps - TRUTH_DIGITS
    prev = cur = evaluate(dps)
    while dps < limit:
        dps *= 2
        cur = evaluate(dps)
        if agree(prev, cur, TRUTH_DIGITS // 2):
            return cur, prev, True, dps
        prev = cur
    return cur, prev, False, dps


def settled_floats(cur, prev, settled: bool, dtype_max: float) -> tuple[np.ndarray, np.ndarray]:
    """The last two mpmath evaluations as float64 with a :class:`Status` per entry (UNDEFINED
    where an entry never settled)."""
    out = np.full(len(cur), np.nan)
    status = np.full(len(cur), Status.UNDEFINED, dtype=np.int8)
    for m, (v, p) in enumerate(zip(cur, prev if prev is not None else cur)):
        if mpmath.isnan(v):
            continue
        if not settled and not agree([p], [v], TRUTH_DIGITS // 2):
            continue  # this entry never settled: leave it undefined
        if mpmath.isinf(v) or abs(v) > dtype_max:
            status[m] = Status.BEYOND
            out[m] = math.copysign(math.inf, float(mpmath.sign(v)) or 1.0)
            continue
        out[m] = float(v)
        status[m] = Status.USABLE
    return out, status
