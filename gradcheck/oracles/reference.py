"""SymPy -> NumPy / mpmath: the reference, its Jacobian and Hessian, and its kinks.

A :class:`Reference` is built once per (reference callable, shapes, order) and cached.  It

* calls the user's reference on SymPy inputs of the given shapes and validates what comes back
  (arity, output shape, free symbols) before anything expensive happens;
* differentiates it with ``sympy.diff`` (Jacobian, and Hessian for ``order=2``);
* finds the points where it is not differentiable (``Abs``, ``Max``, ``Min``, ``Heaviside``,
  ``sign``, ``Piecewise`` conditions) as a list of *kink expressions* g with g(x) = 0 on the kink;
* lambdifies everything with ``cse=True`` (without it deep expressions fail to compile or take
  minutes to jit) three ways: to NumPy float64 (batched; special functions from
  :mod:`gradcheck.oracles.specials`, never JAX), to NumPy on ``longdouble`` arrays (64-bit
  mantissa and an exponent range to 1e4932, so ``exp(1000)`` is finite), and to mpmath (the
  high-precision truth, :mod:`gradcheck.oracles.mpmath_truth`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from ..symbolic import array_symbols, flatten
from ._expressions import drop_dirac, drop_unevaluated, kink_expressions, unique_nodes
from .mpmath_truth import MpTruth
from .specials import STANDIN_FUNCTIONS, check_supported, numpy_modules, prepare

__all__ = ["Reference", "build_reference", "expansion_cost"]


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
    _f64: Callable | None = None  # the float64 NumPy program (:meth:`float64_program`)
    _kinks: Callable | None = None  # the kink expressions in NumPy (:meth:`at_kink`)
    _np: Callable | None = None
    _mpt: MpTruth | None = None  # :attr:`mp`

    @property
    def n_in(self) -> int:
        return len(self.inputs)

    @property
    def n_out(self) -> int:
        return len(self.outputs)

    @property
    def mp(self) -> MpTruth:
        """The mpmath truth of these expressions (:class:`~.mpmath_truth.MpTruth`), built once."""
        if self._mpt is None:
            self._mpt = MpTruth(self.inputs, self.outputs, self.jacobian, self.hessian)
        return self._mpt

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
        (:mod:`gradcheck.oracles.specials`), never from the JAX implementation under test.
        """
        if self._f64 is None:
            mods = numpy_modules()
            f = sp.lambdify(self.inputs, self.mp.exprs, modules=mods, cse=True)

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
                return flat, self.at_kink(X)

            self._f64 = run
        return self._f64

    def at_kink(self, X: np.ndarray) -> np.ndarray:
        """(B,) bool: the rows of ``X`` at a kink of the reference, where a kink expression
        (:func:`~gradcheck.oracles._expressions.kink_expressions`) is within 1e-9 of 0 relative
        to the inputs' scale: not judged, by every path."""
        X = np.asarray(X, np.float64)
        at = np.zeros(X.shape[0], bool)
        if not self.kinks:
            return at
        if self._kinks is None:
            self._kinks = sp.lambdify(self.inputs, self.kinks, modules=numpy_modules(), cse=True)
        with np.errstate(all="ignore"):
            scale = 1.0 + np.max(np.abs(X), axis=1, initial=0.0)
            for v in self._kinks(*[X[:, i] for i in range(X.shape[1])]):
                at |= np.broadcast_to(np.abs(np.asarray(v, dtype=complex)), at.shape) <= 1e-9 * scale
        return at

    # --- NumPy on long doubles ----------------------------------------------------------------
    def longdouble(self, X: np.ndarray) -> np.ndarray:
        """Reference quantities at the rows of X, in extended precision where NumPy has it."""
        if self._np is None:
            self._np = sp.lambdify(self.inputs, self.mp.exprs, modules=numpy_modules(), cse=True)
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


_CACHE: dict[tuple, Reference] = {}


def _out_shape_of(obj) -> tuple[int, ...]:
    if isinstance(obj, sp.MatrixBase):
        return tuple(obj.shape)
    return ()


def _erfc_as_given(expr):
    """``c - k erfc(u)`` with ``c = 2k`` back into ``k erfc(-u)``: the form the user wrote.

    SymPy evaluates ``erfc(-u)`` into ``2 - erfc(u)`` when it is built.  For large u that
    difference cancels completely (``erfc(-70)`` is 1e-2100, ``2 - erfc(70)`` at any precision
    mpmath can afford is 0), so ``log(erfc(-x / sqrt(2)) / 2)``, the textbook log_ndtr, would get
    a truth of -inf at x = -100.  The rewritten node keeps ``evaluate=False``; derivatives are
    taken before (from SymPy's form) and are free of the cancellation.
    """

    def fix(node):
        if not node.is_Add:
            return node
        const, terms = node.as_coeff_Add()
        if const == 0:
            return node
        for t in sp.Add.make_args(terms):
            k, rest = t.as_coeff_Mul()
            if isinstance(rest, sp.erfc) and const == -2 * k:
                return node - const - t + (-k) * sp.erfc(-rest.args[0], evaluate=False)
        return node

    return expr.replace(lambda n: n.is_Add and n.has(sp.erfc), fix)


def _prepare_outputs(outputs):
    """Refuse unknown functions (naming them, before any work) and rewrite the special functions
    that need stand-ins (:func:`gradcheck.oracles.specials.prepare`), visiting each distinct node once."""
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
                except Exception:
                    reps[key] = n
    check_supported(list(reps.values()))
    if any(isinstance(n, (sp.Derivative, *STANDIN_FUNCTIONS)) for n in nodes):
        return [prepare(e) for e in outputs]
    return outputs


def _derivatives(outputs, inputs, order, shapes, described):
    """The Jacobian (and for order 2 the Hessian) of the outputs, entry by entry, by SymPy."""
    try:
        jac = [[drop_unevaluated(drop_dirac(sp.diff(f, x))) for x in inputs] for f in outputs]
        hess = None
        if order == 2:
            hess = [[[drop_unevaluated(drop_dirac(sp.diff(d, x))) for x in inputs] for d in row] for row in jac]
    except Exception as e:
        raise ValueError(
            f"reference could not be differentiated by SymPy on inputs of shapes {list(shapes)} "
            f"({described}); did it apply a scalar function to a Matrix? {type(e).__name__}: {e}"
        ) from e
    left = [d for d in (sum(jac, []) + (sum(sum(hess, []), []) if hess else [])) if d.has(sp.Derivative)]
    if left:
        raise ValueError(f"reference has a derivative SymPy cannot evaluate ({left[0]}); write it in closed form")
    return jac, hess


def expansion_cost(outputs: Sequence, inputs: Sequence, order: int) -> int:
    """What expanding the reference entry by entry costs, in SymPy operations: the derivative
    entries (K x N, or K x N x N) times the operations of the larger of two sampled entries'
    trees (the first output's derivative by the first inputs, the last's by the last).  The
    tree, not the DAG: a layer norm's derivative trees swell with its width (742 operations per
    second-derivative entry at width 8, 37 for a logsumexp of 16)."""
    K, N = len(outputs), len(inputs)
    if not K or not N:
        return 0
    ops = 0
    try:
        for k, j in ((0, 0), (K - 1, N - 1)):
            d = sp.diff(outputs[k], inputs[j])
            if order == 2:
                d = sp.diff(d, inputs[(j + 1) % N])
            ops = max(ops, int(sp.count_ops(d)))
    except Exception:  # the expansion itself will say what SymPy cannot differentiate
        return 0
    return K * N * (N if order == 2 else 1) * max(ops, 1)


def build_reference(
    reference: Callable, shapes: Sequence[tuple[int, ...]], order: int, derivatives: bool = True, cache_key=None
) -> Reference:
    """Validate and (with ``derivatives``) differentiate ``reference`` entry by entry; cached per
    (reference, shapes, order, derivatives).  Without ``derivatives`` only the values are kept:
    the probe path differentiates them itself (:mod:`gradcheck.oracles.tape`)."""
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
    described = ", ".join(
        "a Symbol" if s == () else f"a {s[0] if len(s) else 1} x {s[1] if len(s) > 1 else 1} Matrix" for s in shapes
    )
    try:
        out = reference(*syms)
    except Exception as e:
        raise ValueError(
            f"reference failed on SymPy inputs of shapes {list(shapes)} ({described}): {type(e).__name__}: {e}"
        ) from e
    if isinstance(out, (list, tuple)):
        out = sp.Matrix(out)
    if not isinstance(out, (sp.Basic, sp.MatrixBase, int, float)):
        raise TypeError(f"reference must return a SymPy expression or Matrix, got {type(out).__name__}")
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
    outputs = _prepare_outputs(outputs)
    # a walk over the distinct nodes (SymPy's .has walks the tree: 1e9 nodes for a 1,024 layer norm)
    has_erfc = any(isinstance(n, sp.erfc) for n in unique_nodes(outputs))
    jac: list = []
    hess = None
    # jumps: only a discontinuity of the *values* makes the value at a kink a convention
    kinks, jumps = kink_expressions(outputs)
    if derivatives:  # the probes path differentiates the values itself
        jac, hess = _derivatives(outputs, inputs, order, shapes, described)
        derived = [d for row in jac for d in row]
        if hess is not None:
            derived += [d for m in hess for row in m for d in row]
        kinks += [k for k in kink_expressions(derived)[0] if k not in kinks]
    ref = Reference(
        shapes=tuple(shapes),
        order=order,
        inputs=inputs,
        arg_of=np.asarray(arg_of, dtype=np.int64),
        outputs=[_erfc_as_given(e) for e in outputs] if has_erfc else outputs,
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
