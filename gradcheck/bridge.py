"""SymPy -> JAX / NumPy / mpmath: the reference, its Jacobian and Hessian, and its kinks.

A :class:`Reference` is built once per (reference callable, shapes, order) and cached.  It

* calls the user's reference on SymPy inputs of the given shapes and validates what comes back
  (arity, output shape, free symbols) before anything expensive happens;
* differentiates it with ``sympy.diff`` (Jacobian, and Hessian for ``order=2``);
* finds the points where it is not differentiable (``Abs``, ``Max``, ``Min``, ``Heaviside``,
  ``sign``, ``Piecewise`` conditions) as a list of *kink expressions* g with g(x) = 0 on the kink;
* lambdifies everything with ``cse=True`` (without it deep expressions fail to compile or take
  minutes to jit) three ways: to JAX (float64, batched, jitted), to NumPy (run on ``longdouble``
  arrays: 64-bit mantissa and an exponent range to 1e4932, so ``exp(1000)`` is finite), and to
  mpmath (the high-precision truth).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import threading
from collections.abc import Callable, Sequence

import mpmath
import numpy as np
import sympy as sp

from . import specials
from .symbolic import array_symbols, flatten

__all__ = ["Reference", "build_reference", "TRUTH_DIGITS"]

#: Decimal digits of the mpmath truth.
TRUTH_DIGITS = 50

_DISCONTINUOUS = (sp.Heaviside, sp.sign, sp.floor, sp.ceiling)


def unique_nodes(exprs) -> list:
    """Every distinct subexpression of ``exprs`` once: the DAG, not the tree (the 1,024 entries
    of a softmax share one denominator; a tree walk visits it 1,024 times)."""
    seen: set = set()
    out = []
    stack = [sp.sympify(e) for e in exprs]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        out.append(e)
        stack.extend(e.args)
    return out


def _kink_expressions(exprs) -> tuple[list[sp.Expr], bool]:
    """Expressions that vanish on the kinks of ``exprs``, and whether any kink is a jump."""
    kinks: list[sp.Expr] = []
    jump = False
    for node in unique_nodes(exprs):
        if isinstance(node, (sp.Abs, sp.Heaviside, sp.sign, sp.DiracDelta)):
            kinks.append(node.args[0])
            jump |= isinstance(node, _DISCONTINUOUS)
        elif isinstance(node, (sp.floor, sp.ceiling)):
            jump = True
            kinks.append(sp.sin(sp.pi * node.args[0]))
        elif isinstance(node, (sp.Max, sp.Min)):
            args = node.args
            kinks.extend(a - b for i, a in enumerate(args) for b in args[i + 1 :])
        elif isinstance(node, sp.Piecewise):
            jump = True  # a Piecewise need not be continuous at its boundaries
            for _, cond in node.args:
                for rel in cond.atoms(sp.core.relational.Relational):
                    kinks.append(rel.lhs - rel.rhs)
    out, seen = [], set()
    for k in kinks:
        k = sp.sympify(k)
        if k.free_symbols and k not in seen:
            seen.add(k)
            out.append(k)
    return out, jump


def _drop_dirac(e):
    # d/dx Heaviside(x) = DiracDelta(x): zero away from the kink, and lambdify cannot print it.
    return e.replace(lambda n: isinstance(n, sp.DiracDelta), lambda n: sp.S.Zero)


def _drop_unevaluated(e):
    """``Derivative(floor(x), x)`` stays unevaluated in SymPy: it is 0 away from the jumps."""
    return e.replace(
        lambda n: isinstance(n, sp.Derivative) and isinstance(n.expr, (sp.floor, sp.ceiling, sp.sign, sp.Heaviside)),
        lambda n: sp.S.Zero,
    )


def mp_reals(vals) -> list:
    """Real mpf values of an mpmath evaluation, NaN where a value is complex or not a number."""
    out = []
    for v in vals:
        try:
            out.append(_mp_real(v, None))
        except (TypeError, ValueError):
            out.append(mpmath.nan)
    return out


def _mp_real(v, name):
    v = mpmath.mpmathify(v)
    if isinstance(v, mpmath.mpc):
        # relative to the whole value: sqrt(-9e-60) = 3e-30 i is complex, not a real 0
        if abs(v.imag) > mpmath.mpf(10) ** (-TRUTH_DIGITS // 2) * abs(v):
            return mpmath.nan
        v = v.real
    return v


@dataclasses.dataclass
class Reference:
    shapes: tuple[tuple[int, ...], ...]
    order: int
    inputs: list[sp.Symbol]  # flattened, row-major per argument
    arg_of: np.ndarray  # argument index of each flat input
    outputs: list[sp.Expr]  # flattened reference output
    out_shape: tuple[int, ...]
    jacobian: list[list[sp.Expr]]  # [k][j]
    hessian: list[list[list[sp.Expr]]] | None  # [k][j][l]
    kinks: list[sp.Expr]
    jumps: bool  # some kink is a discontinuity (values at a kink are conventions too)
    _jax: Callable | None = None
    _np: Callable | None = None
    _mp: Callable | None = None
    _kink_jax: Callable | None = None

    @property
    def n_in(self) -> int:
        return len(self.inputs)

    @property
    def n_out(self) -> int:
        return len(self.outputs)

    def _all_exprs(self):
        ex = list(self.outputs) + [d for row in self.jacobian for d in row]
        if self.hessian is not None:
            ex += [d for m in self.hessian for row in m for d in row]
        return ex

    def split(self, flat):
        """(values (.., K), jac (.., K, N), hess (.., K, N, N) or None) from a flat last axis."""
        K, N = self.n_out, self.n_in
        lead = flat.shape[:-1]
        v = flat[..., :K]
        J = flat[..., K : K + K * N].reshape(*lead, K, N)
        H = flat[..., K + K * N :].reshape(*lead, K, N, N) if self.hessian is not None else None
        return v, J, H

    # --- float64 NumPy, batched -------------------------------------------------------------
    def float64_program(self):
        """``X (B, N) float64 -> (flat (B, M) float64, at_kink (B,) bool)`` in NumPy.

        NumPy, not JAX: no compilation (a lambdified reference is one scalar op per node, which
        XLA compiles slowly), and special functions come from SciPy/mpmath
        (:mod:`gradcheck.specials`), never from the JAX implementation under test.
        """
        if self._jax is None:
            mods = [specials.numpy_namespace(), "scipy", "numpy"]
            f = sp.lambdify(self.inputs, self._all_exprs(), modules=mods, cse=True)
            g = sp.lambdify(self.inputs, self.kinks, modules=mods, cse=True) if self.kinks else None

            def run(X):
                X = np.asarray(X, np.float64)
                B = X.shape[0]
                cols = [X[:, i] for i in range(self.n_in)]
                with np.errstate(all="ignore"):
                    vals = f(*cols)
                    flat = np.empty((B, len(vals)))
                    for m, v in enumerate(vals):
                        v = np.asarray(v)
                        if np.iscomplexobj(v):
                            v = np.where(v.imag == 0, v.real, np.nan)
                        flat[:, m] = np.broadcast_to(v.astype(np.float64), (B,))
                    at = np.zeros(B, bool)
                    if g is not None:
                        scale = 1.0 + np.max(np.abs(X), axis=1)
                        for v in g(*cols):
                            v = np.broadcast_to(np.abs(np.asarray(v, dtype=complex)), (B,))
                            at |= v <= 1e-9 * scale
                return flat, at

            self._jax = run
        return self._jax

    # --- NumPy on long doubles ----------------------------------------------------------------
    def longdouble(self, X: np.ndarray) -> np.ndarray:
        """Reference quantities at the rows of X, in extended precision where NumPy has it."""
        if self._np is None:
            self._np = sp.lambdify(self.inputs, self._all_exprs(),
                                   modules=[specials.numpy_namespace(), "scipy", "numpy"], cse=True)
        Xl = np.asarray(X, dtype=np.longdouble)
        with np.errstate(all="ignore"):
            try:
                vals = self._np(*[Xl[:, i] for i in range(self.n_in)])
            except TypeError:
                # some SciPy special functions (erf, ...) have no long double loop: float64 then
                vals = self._np(*[np.asarray(X, np.float64)[:, i] for i in range(self.n_in)])
            out = np.empty((X.shape[0], len(vals)), dtype=np.longdouble)
            for m, v in enumerate(vals):
                out[:, m] = np.broadcast_to(np.asarray(v, dtype=np.longdouble), (X.shape[0],))
        return out

    # --- points on the kinks ------------------------------------------------------------------
    def kink_solvers(self) -> list[tuple[int, Callable]]:
        """(input index j, x -> the x_j that puts x on a kink), for kinks linear in x_j.

        Derived once per reference (the reference is cached, so repeated checks reuse it), in
        input order so that the points drawn from a seed do not depend on set ordering.
        """
        if getattr(self, "_kink_solvers", None) is None:
            out = []
            for g in self.kinks[:8]:
                js = sorted(self.inputs.index(v) for v in g.free_symbols if v in self.inputs)[:2]
                for j in js:
                    try:
                        poly = sp.Poly(g, self.inputs[j])
                    except sp.PolynomialError:
                        continue
                    if poly.degree() != 1:
                        continue
                    a, b = poly.all_coeffs()
                    out.append((j, sp.lambdify(self.inputs, -b / a, modules="math")))
            self._kink_solvers = out
        return self._kink_solvers

    # --- second derivatives of the truth, for condition-scaled tolerances ---------------------
    _HESS_LIMIT = 20000

    def truth_hessian(self, x: np.ndarray) -> np.ndarray | None:
        """|d2 f_k / dx_j dx_l| at one point, (K, N, N), or None when too large to derive.

        Used only where a disagreement was confirmed, to scale the tolerance of a derivative by
        how much rounding the input alone could move it (sum_l |H_kjl| |x_l|).
        """
        K, N = self.n_out, self.n_in
        if K * N * N > self._HESS_LIMIT:
            return None
        if getattr(self, "_mp_hess", None) is None:
            hess = self.hessian
            if hess is None:
                hess = [[[_drop_dirac(sp.diff(d, v)) for v in self.inputs] for d in row] for row in self.jacobian]
                hess = [[[_drop_unevaluated(e) for e in r] for r in m] for m in hess]
            flat = [e for m in hess for r in m for e in r]
            self._mp_hess = sp.lambdify(self.inputs, flat, modules=[specials.mpmath_namespace(), "mpmath"], cse=True)
        with _MP_LOCK, mpmath.workdps(TRUTH_DIGITS):
            try:
                vals = self._mp_hess(*[mpmath.mpf(float(v)) for v in x])
                out = np.array([abs(float(_mp_real(v, 0))) for v in vals], dtype=np.float64)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                return None
        return np.nan_to_num(out, nan=0.0, posinf=np.inf).reshape(K, N, N)

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
        if getattr(self, "_mp_third", None) is None:
            third = [_drop_unevaluated(_drop_dirac(sp.diff(h, v)))
                     for m in self.hessian for r in m for h in r for v in self.inputs]
            self._mp_third = sp.lambdify(self.inputs, third, modules=[specials.mpmath_namespace(), "mpmath"], cse=True)
        with _MP_LOCK, mpmath.workdps(TRUTH_DIGITS):
            try:
                vals = self._mp_third(*[mpmath.mpf(float(v)) for v in x])
                out = np.array([abs(float(_mp_real(v, 0))) for v in vals], dtype=np.float64)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                return None
        with np.errstate(all="ignore"):
            out = np.nan_to_num(out, nan=0.0, posinf=np.inf).reshape(K, N, N, N) @ np.abs(np.asarray(x, np.float64))
        return out

    # --- mpmath truth -------------------------------------------------------------------------
    def _mp_values(self, x, dps):
        """The reference quantities at ``dps`` digits: a list of real mpf (NaN where undefined)."""
        with mpmath.workdps(dps):
            try:
                vals = self._mp(*[mpmath.mpf(float(v)) for v in x])
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                return None
            return mp_reals(vals)

    @staticmethod
    def _agree(a, b, digits) -> bool:
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

    def truth(self, x: np.ndarray, dtype_max: float) -> tuple[np.ndarray, np.ndarray]:
        """The reference quantities at one point, to at least 25 correct digits.

        Evaluated with mpmath at ``TRUTH_DIGITS`` digits and again at twice as many, doubling
        until two evaluations agree to ``TRUTH_DIGITS / 2`` digits (up to 16x): a reference that
        itself cancels (``-log(1 - sigma(z))`` at z = 102 needs 45 digits) gets the precision it
        needs instead of a wrong "truth".

        Returns (values as float64, status) where status is 0 for a usable value, 1 where the
        truth's magnitude exceeds the dtype's largest finite number (overflow is then the right
        answer), 2 where the reference is undefined there (complex, division by zero, NaN, or no
        two precisions agreed).
        """
        if self._mp is None:
            self._mp = sp.lambdify(self.inputs, self._all_exprs(), modules=[specials.mpmath_namespace(), "mpmath"], cse=True)
        M = len(self._all_exprs())
        out = np.full(M, np.nan)
        status = np.full(M, 2, dtype=np.int8)
        with _MP_LOCK:
            dps = TRUTH_DIGITS
            prev = self._mp_values(x, dps)
            settled = False
            while dps < 16 * TRUTH_DIGITS:
                dps *= 2
                cur = self._mp_values(x, dps)
                if self._agree(prev, cur, TRUTH_DIGITS // 2):
                    settled = True
                    break
                prev = cur
            if cur is None:  # undefined at every precision up to 16 x TRUTH_DIGITS
                return out, status
        return settled_floats(cur, prev, settled, dtype_max)


def settled_floats(cur, prev, settled: bool, dtype_max: float) -> tuple[np.ndarray, np.ndarray]:
    """The last two mpmath evaluations as float64 with a status per entry: 0 usable, 1 beyond
    the dtype's range (overflow is then the right answer), 2 undefined or never settled."""
    out = np.full(len(cur), np.nan)
    status = np.full(len(cur), 2, dtype=np.int8)
    for m, (v, p) in enumerate(zip(cur, prev if prev is not None else cur)):
        if mpmath.isnan(v):
            continue
        if not settled and not Reference._agree([p], [v], TRUTH_DIGITS // 2):
            continue  # this entry never settled: leave it undefined
        if mpmath.isinf(v) or abs(v) > dtype_max:
            status[m] = 1
            out[m] = math.copysign(math.inf, float(mpmath.sign(v)) or 1.0)
            continue
        out[m] = float(v)
        status[m] = 0
    return out, status


_MP_LOCK = threading.Lock()
_CACHE: dict[tuple, Reference] = {}


def _out_shape_of(obj) -> tuple[int, ...]:
    if isinstance(obj, sp.MatrixBase):
        return tuple(obj.shape)
    return ()


def _prepare_outputs(outputs):
    """Refuse unknown functions (naming them, before any work) and rewrite the special functions
    that need stand-ins (:func:`gradcheck.specials.prepare`), visiting each distinct node once."""
    nodes = unique_nodes(outputs)
    reps: dict = {}
    for n in nodes:
        if isinstance(n, sp.Derivative):
            reps[("d", n)] = n
        elif isinstance(n, sp.Function) or (isinstance(n, sp.Basic) and n.is_Function):
            key = (type(n), len(n.args))
            if key not in reps:
                # the function with plain symbols for arguments: what is supported depends on the
                # function and its arity, and its arguments' subtrees need no second walk
                try:
                    reps[key] = n.func(*sp.symbols(f"_a0:{len(n.args)}", real=True))
                except Exception:  # noqa: BLE001 - a function that refuses symbols: check it whole
                    reps[key] = n
    specials.check_supported(list(reps.values()))
    kinds = tuple(specials._KERNELS[k].sympy for k in specials._STANDIN_KERNELS)
    if any(isinstance(n, sp.Derivative) or (kinds and isinstance(n, kinds)) for n in nodes):
        return [specials.prepare(e) for e in outputs]
    return outputs


def build_reference(reference: Callable, shapes: Sequence[tuple[int, ...]], order: int,
                    derivatives: bool = True, cache_key=None) -> Reference:
    """Validate and (with ``derivatives``) differentiate ``reference`` entry by entry; cached per
    (reference, shapes, order, derivatives).  Without ``derivatives`` only the values are kept:
    the probe path differentiates them itself (:mod:`gradcheck.check._tape`)."""
    key = (cache_key if cache_key is not None else reference, tuple(shapes), order, derivatives)
    try:
        return _CACHE[key]
    except (KeyError, TypeError):
        pass
    syms = [array_symbols(f"x{i}", s) for i, s in enumerate(shapes)]
    try:
        inspect.signature(reference).bind(*syms)
    except TypeError as e:
        raise ValueError(
            f"reference must take {len(shapes)} argument(s), one per entry of shapes={list(shapes)}: {e}"
        ) from None
    except ValueError:  # builtins without a signature: let the call tell
        pass
    described = ", ".join("a Symbol" if s == () else f"a {s[0] if len(s) else 1} x {s[1] if len(s) > 1 else 1} Matrix" for s in shapes)
    try:
        out = reference(*syms)
    except Exception as e:  # noqa: BLE001 - the user's code; say where it failed
        raise ValueError(
            f"reference failed on SymPy inputs of shapes {list(shapes)} ({described}): "
            f"{type(e).__name__}: {e}"
        ) from e
    if isinstance(out, (list, tuple)):
        out = sp.Matrix(out)
    if not isinstance(out, (sp.Basic, sp.MatrixBase, int, float)):
        raise TypeError(
            f"reference must return a SymPy expression or Matrix, got {type(out).__name__}"
        )
    inputs: list[sp.Symbol] = []
    arg_of: list[int] = []
    for i, s in enumerate(syms):
        ent = flatten(s)
        inputs += ent
        arg_of += [i] * len(ent)
    outputs = [sp.sympify(e) for e in flatten(out)]
    free = {n for n in unique_nodes(outputs) if n.is_Symbol} - set(inputs)
    if free:
        names = ", ".join(sorted(map(str, free)))
        raise ValueError(
            f"reference has free symbols that are not inputs: {names}. Substitute numbers for "
            f"them, or make them arguments (the inputs are {', '.join(map(str, inputs[:6]))}"
            f"{', ...' if len(inputs) > 6 else ''})"
        )
    _check_and_prepare = _prepare_outputs(outputs)
    outputs = _check_and_prepare
    if not derivatives:
        kinks, jumps = _kink_expressions(outputs)
        ref = Reference(shapes=tuple(shapes), order=order, inputs=inputs,
                        arg_of=np.asarray(arg_of, dtype=np.int64), outputs=outputs,
                        out_shape=_out_shape_of(out), jacobian=[], hessian=None, kinks=kinks, jumps=jumps)
        try:
            _CACHE[key] = ref
        except TypeError:
            pass
        return ref
    try:
        jac = [[_drop_unevaluated(_drop_dirac(sp.diff(f, x))) for x in inputs] for f in outputs]
        hess = None
        if order == 2:
            hess = [[[_drop_unevaluated(_drop_dirac(sp.diff(d, x))) for x in inputs] for d in row] for row in jac]
    except Exception as e:  # noqa: BLE001
        raise ValueError(
            f"reference could not be differentiated by SymPy on inputs of shapes {list(shapes)} "
            f"({described}); did it apply a scalar function to a Matrix? {type(e).__name__}: {e}"
        ) from e
    left = [d for d in (sum(jac, []) + (sum(sum(hess, []), []) if hess else [])) if d.has(sp.Derivative)]
    if left:
        raise ValueError(
            f"reference has a derivative SymPy cannot evaluate ({left[0]}); write it in closed form"
        )
    # jumps: only a discontinuity of the *values* makes the value at a kink a convention
    kinks, jumps = _kink_expressions(outputs)
    derived = [d for row in jac for d in row]
    if hess is not None:
        derived += [d for m in hess for row in m for d in row]
    kinks += [k for k in _kink_expressions(derived)[0] if k not in kinks]
    ref = Reference(
        shapes=tuple(shapes),
        order=order,
        inputs=inputs,
        arg_of=np.asarray(arg_of, dtype=np.int64),
        outputs=outputs,
        out_shape=_out_shape_of(out),
        jacobian=jac,
        hessian=hess,
        kinks=kinks,
        jumps=jumps,
    )
    try:
        _CACHE[key] = ref
    except TypeError:  # an unhashable reference (a callable object): no caching
        pass
    return ref
