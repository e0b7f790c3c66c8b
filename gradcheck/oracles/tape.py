"""The reference's derivatives without an n x n symbolic object: automatic differentiation of
the SymPy expression DAG, evaluated in NumPy float64.

Why by hand: the reference has to be an implementation independent of ``fn``, so it cannot be
JAX's autodiff of a JAX program, and the obvious routes do not scale.
``sympy.lambdify(..., "jax")`` of a 1,024-input reference traces one scalar op per node, which
XLA takes minutes to compile (a softmax over 256 logits: 471 s) and eager JAX minutes to
differentiate; SymPy's ``diff`` of every entry is the n^2 (n^3 at order 2) expansion that held
the engine back.  Here every node of the reference's DAG (equal subexpressions are one node, as
in ``cse``) is evaluated once over the whole batch with NumPy, and its *local* partial
derivatives come from SymPy itself (``F(*dummies).diff(dummy_i)`` for a function node, lambdified
once per function class; closed rules for Add, Mul and Pow).  Forward mode (JVP), reverse mode
(VJP) and forward-over-reverse (Hessian-vector products) then cost a few times one evaluation.

Special functions come from :mod:`gradcheck.oracles.specials` (SciPy, or mpmath), never from
JAX; the nodes' local rules and the arithmetic helpers are in :mod:`._tape_rules`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ._tape_rules import as_real, function_rules, mp_function, others_products, power, product_derivative
from .specials import numpy_modules

__all__ = ["Tape"]

_INPUT, _CONST, _ADD, _MUL, _POW, _FN, _SELECT = range(7)


class Tape:
    """The DAG of ``outputs`` over ``inputs``, evaluated and differentiated in NumPy float64.

    All arrays carry the batch on their last axis; tangents and cotangents may carry leading
    axes of directions, e.g. ``(D, B)``.
    """

    def __init__(self, inputs: Sequence[sp.Symbol], outputs: Sequence[sp.Expr]):
        self.inputs = list(inputs)
        self.kind: list[int] = []
        self.children: list[tuple[int, ...]] = []
        self.payload: list = []
        self._index: dict = {}
        #: exact constants and exponents for the mpmath walk: 5/6 rounded to float64 is another
        #: function (x0 - mean(x) is not 0 at equal inputs); (node, precision) -> mpmath number
        self._exact: dict[int, sp.Basic] = {}
        self._mp_cache: dict[tuple[int, int], Any] = {}
        pos = {s: i for i, s in enumerate(self.inputs)}
        self._pos = pos
        self.out = [self._node(sp.sympify(e)) for e in outputs]

    # -- building ----------------------------------------------------------------------------
    def _add(self, kind, children, payload=None) -> int:
        self.kind.append(kind)
        self.children.append(tuple(children))
        self.payload.append(payload)
        return len(self.kind) - 1

    def _node(self, root) -> int:
        """Post-order, iterative (deep chains overflow Python's recursion), memoised by expression."""
        index = self._index
        stack = [(root, False)]
        while stack:
            e, ready = stack.pop()
            if e in index:
                continue
            if e.is_Symbol:
                if e not in self._pos:
                    raise ValueError(f"reference has a free symbol {e} that is not an input")
                index[e] = self._add(_INPUT, (), self._pos[e])
                continue
            if e.is_number and not e.free_symbols:
                v = complex(e.evalf(30))
                index[e] = self._add(_CONST, (), v.real if v.imag == 0 else complex(v))
                self._exact[index[e]] = e
                continue
            if isinstance(e, sp.Piecewise):
                kids = [b for b, _ in e.args]
                if not ready:
                    stack.append((e, True))
                    stack.extend((k, False) for k in kids if k not in index)
                    continue
                conds = [
                    sp.lambdify(self.inputs, c, modules=numpy_modules()) if c is not sp.true else None
                    for _, c in e.args
                ]
                index[e] = self._add(_SELECT, [index[k] for k in kids], conds)
                continue
            kids = list(e.args)
            if isinstance(e, sp.Pow) and kids[1].is_number:
                kids = [kids[0]]
            if not ready:
                stack.append((e, True))
                stack.extend((k, False) for k in kids if k not in index)
                continue
            ch = [index[k] for k in kids]
            if isinstance(e, sp.Add):
                index[e] = self._add(_ADD, ch)
            elif isinstance(e, sp.Mul):
                index[e] = self._add(_MUL, ch)
            elif isinstance(e, sp.Pow) and len(ch) == 1:
                p = e.args[1]
                index[e] = self._add(_POW, ch, int(p) if p.is_Integer else float(p))
                if not p.is_Integer:
                    self._exact[index[e]] = p
            else:
                index[e] = self._add(_FN, ch, function_rules(e.func, len(ch)))
        return index[root]

    def __len__(self) -> int:
        return len(self.kind)

    # -- evaluation --------------------------------------------------------------------------
    def values(self, X: np.ndarray) -> list:
        """Every node's value at the rows of ``X`` (B, N): a list of (B,) float64 arrays."""
        X = np.asarray(X, np.float64)
        cols = [X[:, j] for j in range(X.shape[1])]
        B = X.shape[0]
        vals: list = [None] * len(self.kind)
        with np.errstate(all="ignore"):
            for i, (k, ch, p) in enumerate(zip(self.kind, self.children, self.payload)):
                if k == _INPUT:
                    v = cols[p]
                elif k == _CONST:
                    v = np.full(B, p.real if isinstance(p, complex) else p)
                elif k == _ADD:
                    v = vals[ch[0]]
                    for c in ch[1:]:
                        v = v + vals[c]
                elif k == _MUL:
                    v = vals[ch[0]]
                    for c in ch[1:]:
                        v = v * vals[c]
                elif k == _POW:
                    v = power(vals[ch[0]], p)
                elif k == _FN:
                    v = as_real(p.value(*[vals[c] for c in ch]), B)
                else:  # _SELECT
                    v = self._select(p, [vals[c] for c in ch], cols, B)
                vals[i] = np.broadcast_to(np.asarray(v, np.float64), (B,))
        return vals

    @staticmethod
    def _select(conds, branches, cols, B):
        out = np.full(B, np.nan)
        done = np.zeros(B, bool)
        for cond, br in zip(conds, branches):
            m = np.ones(B, bool) if cond is None else np.broadcast_to(np.asarray(cond(*cols), bool), (B,))
            take = m & ~done
            out = np.where(take, br, out)
            done |= take
        return out

    def _select_mask(self, i, vals_cols, B):
        conds = self.payload[i]
        done = np.zeros(B, bool)
        masks = []
        for cond in conds:
            m = np.ones(B, bool) if cond is None else np.broadcast_to(np.asarray(cond(*vals_cols), bool), (B,))
            masks.append(m & ~done)
            done |= masks[-1]
        return masks

    def partials(self, i: int, vals) -> list:
        """The local partial derivatives of node i with respect to its children, (B,) each."""
        k, ch, p = self.kind[i], self.children[i], self.payload[i]
        with np.errstate(all="ignore"):
            if k == _ADD:
                return [1.0] * len(ch)
            if k == _MUL:
                xs = [vals[c] for c in ch]
                return others_products(xs)
            if k == _POW:
                b = vals[ch[0]]
                return [p * power(b, p - 1)] if p != 0 else [0.0]
            if k == _FN:
                B = vals[ch[0]].shape[0]
                return [as_real(f(*[vals[c] for c in ch]), B) for f in p.firsts]
        raise AssertionError(k)

    def jvp(self, vals, X: np.ndarray, T: np.ndarray, second: np.ndarray | None = None):
        """Tangents of the outputs along ``T`` (D, B, N): (D, B, K).  With ``second`` (D, B, N)
        also the second directional derivative along (T, second): (D, B, K)."""
        B = X.shape[0]
        cols = [X[:, j] for j in range(X.shape[1])]
        tan: list = [None] * len(self.kind)
        tan2: list = [None] * len(self.kind)  # read and written only when `second` is given
        sec: list = [None] * len(self.kind)
        zero = np.zeros(T.shape[:-1])
        with np.errstate(all="ignore"):
            for i, (k, ch, p) in enumerate(zip(self.kind, self.children, self.payload)):
                if k == _INPUT:
                    tan[i] = T[..., p]
                    if second is not None:
                        tan2[i] = second[..., p]
                        sec[i] = zero
                    continue
                if k == _CONST:
                    tan[i] = zero
                    if second is not None:
                        tan2[i] = zero
                        sec[i] = zero
                    continue
                if k == _SELECT:
                    masks = self._select_mask(i, cols, B)
                    tan[i] = sum(np.where(m, tan[c], 0.0) for m, c in zip(masks, ch))
                    if second is not None:
                        tan2[i] = sum(np.where(m, tan2[c], 0.0) for m, c in zip(masks, ch))
                        sec[i] = sum(np.where(m, sec[c], 0.0) for m, c in zip(masks, ch))
                    continue
                parts = self.partials(i, vals)
                t = zero
                for pc, c in zip(parts, ch):
                    t = t + pc * tan[c]
                tan[i] = t
                if second is not None:
                    t2 = zero
                    s = zero
                    for pc, c in zip(parts, ch):
                        t2 = t2 + pc * tan2[c]
                        s = s + pc * sec[c]
                    s = s + self._second_term(i, vals, ch, tan, tan2)
                    tan2[i] = t2
                    sec[i] = s
        first = np.stack([np.broadcast_to(tan[o], zero.shape) for o in self.out], -1)
        if second is None:
            return first, None
        return first, np.stack([np.broadcast_to(sec[o], zero.shape) for o in self.out], -1)

    def _second_term(self, i, vals, ch, tan, tan2):
        """sum_{c, c'} d2 node / d c d c' * tan[c] * tan2[c']."""
        k, p = self.kind[i], self.payload[i]
        if k == _ADD:
            return 0.0
        if k == _MUL:
            # d/d(tan2) of sum_c (prod of others) tan[c]: sum_{c != c'} prod of the rest
            xs = [vals[c] for c in ch]
            m = len(xs)
            total = 0.0
            for a in range(m):
                others = [xs[j] for j in range(m) if j != a]
                d_others = [tan2[ch[j]] for j in range(m) if j != a]
                # directional derivative of prod(others) along tan2
                total = total + tan[ch[a]] * product_derivative(others, d_others)
            return total
        if k == _POW:
            b = vals[ch[0]]
            return (p * (p - 1) * power(b, p - 2) if p not in (0, 1) else 0.0) * tan[ch[0]] * tan2[ch[0]]
        B = vals[ch[0]].shape[0]
        args = [vals[c] for c in ch]
        total = 0.0
        for a, row in enumerate(p.seconds):
            for b_, f in enumerate(row):
                total = total + as_real(f(*args), B) * tan[ch[a]] * tan2[ch[b_]]
        return total

    def vjp(self, vals, X: np.ndarray, C: np.ndarray, T: np.ndarray | None = None):
        """Cotangents ``C`` (D, B, K) pulled back to the inputs: (D, B, N).  With ``T``
        (D, B, N), also the forward-over-reverse product: the derivative of that pull-back along
        T, i.e. (sum_k C_k Hessian(f_k)) T, (D, B, N)."""
        B, N = X.shape
        cols = [X[:, j] for j in range(N)]
        lead = C.shape[:-1]
        zero = np.zeros(lead)
        n = len(self.kind)
        adj: list = [None] * n
        dadj: list = [None] * n  # written only when `T` is given (else all None)
        tan = None
        if T is not None:
            tan, _ = self._tangents(vals, cols, T)
        for o_i, o in enumerate(self.out):
            adj[o] = (adj[o] if adj[o] is not None else zero) + C[..., o_i]
            if T is not None and dadj[o] is None:
                dadj[o] = zero
        gx = np.zeros(lead + (N,))
        hx = np.zeros(lead + (N,)) if T is not None else None
        with np.errstate(all="ignore"):
            for i in range(n - 1, -1, -1):
                a = adj[i]
                if a is None:
                    continue
                k, ch = self.kind[i], self.children[i]
                da = dadj[i]
                if k == _INPUT:
                    j = self.payload[i]
                    gx[..., j] += a
                    if hx is not None:
                        hx[..., j] += da
                    continue
                if k == _CONST:
                    continue
                if k == _SELECT:
                    masks = self._select_mask(i, cols, B)
                    for m, c in zip(masks, ch):
                        adj[c] = (adj[c] if adj[c] is not None else zero) + np.where(m, a, 0.0)
                        if T is not None:
                            dadj[c] = (dadj[c] if dadj[c] is not None else zero) + np.where(m, da, 0.0)
                    continue
                parts = self.partials(i, vals)
                dparts = self._partial_tangents(i, vals, ch, tan) if T is not None else []
                for q, (pc, c) in enumerate(zip(parts, ch)):
                    adj[c] = (adj[c] if adj[c] is not None else zero) + pc * a
                    if T is not None:
                        dadj[c] = (dadj[c] if dadj[c] is not None else zero) + dparts[q] * a + pc * da
        return gx, hx

    def _tangents(self, vals, cols, T):
        tan: list = [None] * len(self.kind)
        zero = np.zeros(T.shape[:-1])
        B = len(cols[0]) if cols else 0
        with np.errstate(all="ignore"):
            for i, (k, ch, p) in enumerate(zip(self.kind, self.children, self.payload)):
                if k == _INPUT:
                    tan[i] = T[..., p]
                elif k == _CONST:
                    tan[i] = zero
                elif k == _SELECT:
                    masks = self._select_mask(i, cols, B)
                    tan[i] = sum(np.where(m, tan[c], 0.0) for m, c in zip(masks, ch))
                else:
                    t = zero
                    for pc, c in zip(self.partials(i, vals), ch):
                        t = t + pc * tan[c]
                    tan[i] = t
        return tan, zero

    def _partial_tangents(self, i, vals, ch, tan):
        """Directional derivative of each local partial of node i along the forward tangents."""
        k, p = self.kind[i], self.payload[i]
        if k == _ADD:
            return [0.0] * len(ch)
        if k == _MUL:
            xs = [vals[c] for c in ch]
            m = len(xs)
            out = []
            for a in range(m):
                others = [xs[j] for j in range(m) if j != a]
                d_others = [tan[ch[j]] for j in range(m) if j != a]
                out.append(product_derivative(others, d_others))
            return out
        if k == _POW:
            b = vals[ch[0]]
            return [(p * (p - 1) * power(b, p - 2) if p not in (0, 1) else 0.0) * tan[ch[0]]]
        B = vals[ch[0]].shape[0]
        args = [vals[c] for c in ch]
        out = []
        for row in p.seconds:
            t = 0.0
            for b_, f in enumerate(row):
                t = t + as_real(f(*args), B) * tan[ch[b_]]
            out.append(t)
        return out

    def _mp_exact(self, i: int):
        """Node ``i``'s exact number (a constant, or a non-integer exponent) at the working precision."""
        if (i, mpmath.mp.prec) not in self._mp_cache:
            re, im = sp.N(self._exact[i], mpmath.mp.dps + 10).as_real_imag()
            self._mp_cache[i, mpmath.mp.prec] = mpmath.mpf(str(re)) if im == 0 else mpmath.mpc(str(re), str(im))
        return self._mp_cache[i, mpmath.mp.prec]

    def values_mp(self, xm: list) -> list | None:
        """The outputs at one point of mpmath numbers, at the current working precision: the
        same DAG walked once (``sympy.lambdify`` of a 1,024-entry reference walks the tree, not
        the DAG, and takes minutes to build)."""
        vals: list = [None] * len(self.kind)
        try:
            for i, (k, ch, p) in enumerate(zip(self.kind, self.children, self.payload)):
                if k == _INPUT:
                    v = xm[p]
                elif k == _CONST:
                    v = self._mp_exact(i)
                elif k == _ADD:
                    v = mpmath.fsum(vals[c] for c in ch)
                elif k == _MUL:
                    v = mpmath.fprod(vals[c] for c in ch)
                elif k == _POW:
                    b = vals[ch[0]]
                    v = b**p if isinstance(p, int) else b ** self._mp_exact(i)
                elif k == _FN:
                    v = mp_function(p.func, len(ch))(*[vals[c] for c in ch])
                else:  # _SELECT: the first branch whose condition holds
                    v = mpmath.nan
                    fx = [float(x) for x in xm]
                    for cond, c in zip(p, ch):
                        if cond is None or bool(np.asarray(cond(*fx))):
                            v = vals[c]
                            break
                vals[i] = v
        except (ZeroDivisionError, ValueError, OverflowError, TypeError):
            return None
        return [vals[o] for o in self.out]

    def outputs(self, vals) -> np.ndarray:
        """(B, K) values of the outputs."""
        return np.stack([vals[o] for o in self.out], -1)
