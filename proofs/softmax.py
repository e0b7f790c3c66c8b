"""Softmax: normalisation, Jacobian, cross-entropy gradient, shift invariance, overflow (seed 003).

``y_i = e^{a_i} / sum_k e^{a_k}`` for C classes.  Every identity is proved twice: for each
C = 2..6 with explicit symbols (``Matrix.jacobian`` of the softmax), and for a symbolic C in
index form (``IndexedBase`` and ``Sum``; SymPy's ``diff`` produces the Kronecker deltas itself).

The index form needs one fact SymPy cannot know: that the differentiation index j lies in
1..C.  ``diff`` answers with ``Piecewise((..., C >= j), (0, True))``; writing C = j + m with m a
non-negative integer settles the condition without choosing a branch by hand.

Numerics (``softmax.stable``): the textbook form overflows once ``max(a)`` exceeds ln(largest
float), 709.78 in float64 and 88.72 in float32, and the suite finds these thresholds itself by
bisection on the JAX function.  On XLA's CPU backend it goes wrong even earlier: the division
is computed as a multiplication by ``1 / sum``, which is subnormal above 708.40 (87.34) and
flushed to zero, so every output becomes 0; and its Jacobian goes wrong at half that, 354.20
(43.67), because JAX's rule for ``x / s`` uses ``s^-2``.  The shifted form ``a - max(a)`` has
none of this.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols
from proofs import claim

F = sp.Symbol("F", real=True)
CLASSES = range(2, 7)  # the explicit proofs run for every C here

# index form: a_1..a_C, symbolic C, indices i, j, k; C = j + m puts j inside 1..C
_a, _t = sp.IndexedBase("a", real=True), sp.IndexedBase("t", real=True)
_i, _j, _k = sp.symbols("i j k", integer=True, positive=True)
_C = sp.Symbol("C", integer=True, positive=True)
_m = sp.Symbol("m", integer=True, nonnegative=True)
_S = sp.Sum(sp.exp(_a[_k]), (_k, 1, _C))


def _classes(C) -> int:
    """The class count of a claim parameter: an integer >= 2 (one class has nothing to normalise)."""
    if isinstance(C, bool) or not isinstance(C, (int, np.integer)) or C < 2:
        raise ValueError(f"C (the number of classes) must be an integer >= 2, got {C!r}")
    return int(C)


def _y(idx, shift=0):
    return sp.exp(_a[idx] + shift) / sp.Sum(sp.exp(_a[_k] + shift), (_k, 1, _C))


def _j_in_range(expr):
    """Evaluate Sums and settle ``C >= j`` by writing C = j + m (m >= 0)."""
    return expr.doit().subs(_C, _j + _m)


# --- the implementations -------------------------------------------------------------------
def softmax_sym(a):
    """SymPy softmax of a C x 1 Matrix."""
    e = a.applyfunc(sp.exp)
    return e / sum(e)


def softmax_naive(a):
    """The textbook form e^a / sum e^a: overflows for large logits (see ``softmax.stable``)."""
    e = jnp.exp(a)
    return e / jnp.sum(e)


def softmax_shifted(a):
    """e^{a - max a} / sum e^{a - max a}: the seed's F = -max(a).

    The shift is held constant under differentiation (``stop_gradient``): its true derivative
    is exactly 0 (shift invariance), so differentiating through ``max`` would only add terms
    that cancel up to rounding, and split between tied maxima.
    """
    m = jax.lax.stop_gradient(jnp.max(a, axis=-1, keepdims=True))
    e = jnp.exp(a - m)
    return e / jnp.sum(e, axis=-1, keepdims=True)


@jax.custom_jvp
def softmax_textbook(a):
    """The shifted softmax, differentiated by the textbook Jacobian y_i (delta_ij - y_j).

    Its JVP is J t = y * (t - <y, t>); JAX transposes that linear rule for reverse mode, so
    ``jacfwd`` and ``jacrev`` both use the seed's formula rather than JAX's own rule.
    """
    return softmax_shifted(a)


@softmax_textbook.defjvp
def _softmax_textbook_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    y = softmax_textbook(a)
    return y, y * (t - jnp.sum(y * t, axis=-1, keepdims=True))


def textbook_jacobian(y):
    """diag(y) - y y^T, the seed's Jacobian as an array."""
    return jnp.diag(y) - jnp.outer(y, y)


# --- softmax.sums_to_one ------------------------------------------------------------------------
@claim(
    seeds=("003",), expected=("proved", "verified"),
    title=r"Softmax outputs sum to one",
    statement=r"$\sum_{i} y_{i} = 1$ for every $C$ and every logits $a$",
    params={"C": 4},
)
def sums_to_one(C=4) -> Derivation:
    C = _classes(C)
    a = array_symbols("a", (C,))
    y = softmax_sym(a)
    total = sp.Add(*y, evaluate=False)
    idx_sum = sp.Sum(sp.exp(_a[_i]), (_i, 1, _C)) / _S  # the common denominator factored out
    return Derivation(
        statement=sp.Eq(sp.Sum(sp.Indexed("y", _i), (_i, 1, _C)), 1),
        steps=[
            Step(sp.Indexed("y", _i), _y(_i), "definition"),
            Step(sp.Symbol(rf"\sum_{{i=1}}^{{{C}}} y_i"), total, f"C = {C}, explicit"),
            Step(sp.Symbol(r"\sum_{i=1}^{C} y_i"), idx_sum, "index form: the denominator does not depend on i"),
        ],
        objects={"C": C, "idx_sum": idx_sum},
    )


@sums_to_one.verifier
def _(d: Derivation, s: gradcheck.Settings):
    ok = all(sp.cancel(sum(softmax_sym(array_symbols("a", (c,))))) == 1 for c in CLASSES)
    yield evidence.fact(ok, f"sum_i y_i = 1 for C = {CLASSES.start}..{CLASSES.stop - 1}", "sympy: cancel")
    # index form: the bound variables i and k name the same sum
    num = d["idx_sum"].xreplace({_i: _k})
    yield evidence.identity(sp.Sum(_y(_i), (_i, 1, _C)).doit().xreplace({_i: _k}), num, "sum_i y_i = sum_i e^{a_i} / sum_k e^{a_k}")
    yield evidence.identity(num, 1, "sum_i y_i = 1 for symbolic C")
    C = d["C"]
    for dtype in ("float64", "float32"):
        yield evidence.checked(lambda a: jnp.sum(jax.nn.softmax(a)), lambda a: sum(softmax_sym(a)),
                               f"sum of jax.nn.softmax is 1, its gradient 0 ({dtype}, logits up to +-1000)", s,
                               shapes=[(C,)], domain=(-1000.0, 1000.0), dtype=dtype)


# --- softmax.jacobian ---------------------------------------------------------------------------
def _textbook(y):
    C = y.shape[0]
    return sp.Matrix(C, C, lambda i, j: y[i] * (sp.KroneckerDelta(i, j) - y[j]))


def _note_form(y):
    """The note's two cases: y_i (1 - y_j) for i = j, -y_i y_j for i != j."""
    C = y.shape[0]
    return sp.Matrix(C, C, lambda i, j: y[i] * (1 - y[j]) if i == j else -y[i] * y[j])


@claim(
    seeds=("003",), expected=("proved", "verified"),
    title=r"Jacobian of the softmax",
    statement=r"$\partial y_{i}/\partial a_{j} = y_{i} (\delta_{ij} - y_{j})$; the note's $y_{i} (1 - y_{j})$ for $i "
              r"= j$ and $-y_{i} y_{j}$ for $i \neq j$ is the same",
    params={"C": 4},
)
def jacobian(C=4) -> Derivation:
    C = _classes(C)
    a = array_symbols("a", (C,))
    y = softmax_sym(a)
    J = y.jacobian(a)  # SymPy differentiates every entry
    ysym = array_symbols("y", (C,))
    d_idx = _j_in_range(sp.diff(_y(_i), _a[_j]))
    return Derivation(
        statement=sp.Eq(sp.Derivative(sp.Indexed("y", _i), sp.Indexed("a", _j)),
                        sp.Indexed("y", _i) * (sp.KroneckerDelta(_i, _j) - sp.Indexed("y", _j))),
        steps=[
            Step(sp.Indexed("y", _i), _y(_i), "definition"),
            Step(sp.Symbol(r"\partial y / \partial a"), J, f"Matrix.jacobian, C = {C}"),
            Step(sp.Symbol(r"\partial y / \partial a"), _textbook(ysym), "equal entry by entry to y_i (delta_ij - y_j)"),
            Step(sp.Derivative(sp.Indexed("y", _i), sp.Indexed("a", _j)), d_idx, "index form, symbolic C (C = j + m, m >= 0)"),
        ],
        objects={"C": C, "a": a, "y": y, "J": J, "d_idx": d_idx},
    )


@jacobian.verifier
def _(d: Derivation, s: gradcheck.Settings):
    for c in CLASSES:
        a = array_symbols("a", (c,))
        y = softmax_sym(a)
        yield evidence.identity(y.jacobian(a), _textbook(y), f"Jacobian of the softmax = y_i (delta_ij - y_j), C = {c}")
    yield evidence.identity(_textbook(d["y"]), _note_form(d["y"]), "the note's form y_i (1 - y_j) (i = j), -y_i y_j (i != j) is the same")
    idx_textbook = _y(_i) * (sp.KroneckerDelta(_i, _j) - _y(_j))
    yield evidence.identity(d["d_idx"], idx_textbook.subs(_C, _j + _m), "Jacobian in index form, symbolic C")
    C = d["C"]
    for fn, what in ((jax.nn.softmax, "jax.nn.softmax"), (softmax_shifted, "the shifted softmax"),
                     (softmax_textbook, "a softmax whose JVP is the textbook Jacobian")):
        yield evidence.checked(fn, softmax_sym,
                               f"jacfwd/jacrev/jvp/vjp of {what} agree with the SymPy Jacobian (float64)", s,
                               shapes=[(C,)], domain=(-1000.0, 1000.0), dtype="float64")
    # and the closed form itself against JAX's own transforms of jax.nn.softmax
    with gradcheck.float64():
        fwd, rev = jax.jit(jax.jacfwd(jax.nn.softmax)), jax.jit(jax.jacrev(jax.nn.softmax))
        closed = jax.jit(lambda a: textbook_jacobian(jax.nn.softmax(a)))

        def differs(a):
            a = jnp.asarray(a)
            want = closed(a)
            return any(float(jnp.max(jnp.abs(J(a) - want))) > 1e-15 for J in (fwd, rev))

        yield evidence.attack(differs, hnp.arrays(np.float64, (C,), elements=st.floats(-1e3, 1e3)),
                              "diag(y) - y y^T = jax.jacfwd = jax.jacrev of jax.nn.softmax (float64, to 1e-15)", s)


# --- softmax.cross_entropy_grad -------------------------------------------------------------
@claim(
    seeds=("003",), expected=("proved", "verified"),
    title=r"Gradient of softmax cross-entropy",
    statement=r"with $\sum_{i} t_{i} = 1$, the gradient in $a$ of $-\sum_{i} t_{i} \ln "
              r"\operatorname{softmax}(a)_{i}$ is $\operatorname{softmax}(a) - t$ (in general "
              r"$\operatorname{softmax}(a) \sum_{i} t_{i} - t$)",
    params={"C": 4},
)
def cross_entropy_grad(C=4) -> Derivation:
    C = _classes(C)
    a, t = array_symbols("a", (C,)), array_symbols("t", (C,))
    y = softmax_sym(a)
    L = -sum(t[i] * sp.log(y[i]) for i in range(C))
    g = sp.Matrix([sp.diff(L, ai) for ai in a])
    constraint = {t[C - 1]: 1 - sum(t[:C - 1])}  # sum_i t_i = 1
    L_idx = -sp.Sum(_t[_i] * sp.expand_log(sp.log(_y(_i)), force=True), (_i, 1, _C))
    g_idx = _j_in_range(sp.diff(L_idx, _a[_j]))
    g_idx = sp.simplify(g_idx)
    Lsym = sp.Symbol("L")
    return Derivation(
        statement=sp.Eq(sp.Derivative(Lsym, sp.Indexed("a", _j)), sp.Indexed("y", _j) - sp.Indexed("t", _j)),
        steps=[
            Step(Lsym, -sp.Sum(sp.Indexed("t", _i) * sp.log(sp.Indexed("y", _i)), (_i, 1, _C)), "cross-entropy with targets t"),
            Step(sp.Symbol(r"\partial L / \partial a"), g, f"sympy.diff, C = {C}"),
            Step(sp.Symbol(r"\partial L / \partial a"), y * sp.Symbol(r"\sum_i t_i") - t, "= y sum_i t_i - t for any t"),
            Step(sp.Derivative(Lsym, sp.Indexed("a", _j)), g_idx, "index form, symbolic C"),
            Step(sp.Derivative(Lsym, sp.Indexed("a", _j)), sp.Indexed("y", _j) - sp.Indexed("t", _j), "with sum_i t_i = 1"),
        ],
        objects={"C": C, "a": a, "t": t, "y": y, "g": g, "constraint": constraint, "g_idx": g_idx},
    )


@jax.custom_vjp
def xent_textbook(a, t):
    """-sum t log softmax(a), differentiated by the seed's rule dL/da = softmax(a) - t."""
    return -jnp.sum(t * jax.nn.log_softmax(a))


def _xent_fwd(a, t):
    return xent_textbook(a, t), (a, t)


def _xent_bwd(res, g):
    a, t = res
    return g * (jax.nn.softmax(a) - t), -g * jax.nn.log_softmax(a)


xent_textbook.defvjp(_xent_fwd, _xent_bwd)


def xent_of_logits(a, u):
    """The cross-entropy of logits a against the target distribution t = softmax(u) (sum t = 1)."""
    return xent_textbook(a, jax.nn.softmax(u))


def _xent_reference(a, u):
    y, t = softmax_sym(a), softmax_sym(u)
    return -sum(t[i] * sp.log(y[i]) for i in range(a.shape[0]))


@cross_entropy_grad.verifier
def _(d: Derivation, s: gradcheck.Settings):
    for c in CLASSES:
        a, t = array_symbols("a", (c,)), array_symbols("t", (c,))
        y = softmax_sym(a)
        g = sp.Matrix([sp.diff(-sum(t[i] * sp.log(y[i]) for i in range(c)), ai) for ai in a])
        yield evidence.identity(g, y * sum(t) - t, f"dL/da = y sum(t) - t, C = {c}")
        constraint = {t[c - 1]: 1 - sum(t[:c - 1])}
        yield evidence.identity(g.subs(constraint), (y - t).subs(constraint), f"with sum t = 1: dL/da = softmax(a) - t, C = {c}")
    idx_general = _y(_j) * sp.Sum(_t[_i], (_i, 1, _C)) - _t[_j]
    yield evidence.identity(d["g_idx"], idx_general.subs(_C, _j + _m), "index form: dL/da_j = y_j sum_i t_i - t_j, symbolic C")
    C = d["C"]
    # atol 1e-11: the gradient in u is softmax's VJP y * (g - <y, g>) with g = -log_softmax(a), whose
    # entries reach 2000 for logits in +-1000; where t is nearly one-hot the result is a
    # cancellation of terms that size, exact only to about 2000 eps = 4e-13 in any float64
    # implementation (the default floor, 1e-12, would leave only a factor 2.5 of margin here)
    yield evidence.checked(xent_of_logits, _xent_reference,
                           "the rule dL/da = softmax(a) - t (a custom_vjp) agrees with SymPy, t = softmax(u) (float64)",
                           s, shapes=[(C,), (C,)], domain=(-1000.0, 1000.0), dtype="float64", atol=1e-11)
    with gradcheck.float64():
        g_jax = jax.jit(jax.grad(lambda a, t: -jnp.sum(t * jax.nn.log_softmax(a))))

        def differs(au):
            a, u = jnp.asarray(au[0]), jnp.asarray(au[1])
            t = jax.nn.softmax(u)
            return float(jnp.max(jnp.abs(g_jax(a, t) - (jax.nn.softmax(a) - t)))) > 1e-14

        arr = hnp.arrays(np.float64, (C,), elements=st.floats(-1e3, 1e3))
        yield evidence.attack(differs, st.tuples(arr, arr), "jax.grad of -sum t log_softmax(a) = softmax(a) - t (float64)", s)


# --- softmax.shift_invariance -------------------------------------------------------------------
@claim(
    seeds=("003",), expected=("proved",),
    title=r"Softmax is invariant to adding a constant to every logit",
    statement=r"$\operatorname{softmax}(a + F) = \operatorname{softmax}(a)$ for every real $F$, in particular $F = "
              r"-\max(a)$",
    params={"C": 4},
)
def shift_invariance(C=4) -> Derivation:
    C = _classes(C)
    a = array_symbols("a", (C,))
    shifted = softmax_sym(a + sp.ones(C, 1) * F)
    return Derivation(
        statement=sp.Eq(sp.Function("softmax")(sp.Symbol("a") + F), sp.Function("softmax")(sp.Symbol("a"))),
        steps=[
            Step(sp.Indexed("y", _i) , _y(_i, F), "shift every logit by F"),
            Step(sp.Indexed("y", _i), _y(_i), "e^F factors out of numerator and denominator"),
            Step(sp.Symbol("F"), -sp.Max(*a), "the seed's choice F = -max(a): every exponent <= 0"),
        ],
        objects={"C": C, "a": a, "shifted": shifted},
    )


def shift_violation(fn, dtype):
    """A predicate: softmax(a + F) differs from softmax(a) by more than the rounding of a + F.

    a + F is rounded to the dtype: an error of up to |a_i + F| eps/2 in the exponent, i.e. a
    relative error that size in e^{a_i + F}, and the normalisation spreads it; the exponentials
    and the sum add a few eps more.  So the tolerance grows with the size of the logits.
    """
    eps = float(np.finfo(dtype).eps)
    f = jax.jit(fn)

    def violates(aF):
        a = np.asarray(aF[0], dtype=dtype)
        shift = np.asarray(aF[1], dtype=dtype)
        y0, y1 = np.asarray(f(jnp.asarray(a))), np.asarray(f(jnp.asarray(a + shift)))
        scale = float(np.max(np.abs(a)) + abs(float(shift)) + 1.0)
        tol = y0 * (4 * eps * scale + (len(a) + 8) * eps) + float(np.finfo(dtype).tiny) * 4
        return not (np.all(np.isfinite(y1)) and np.all(np.abs(y1 - y0) <= tol))

    return violates


@shift_invariance.verifier
def _(d: Derivation, s: gradcheck.Settings):
    for c in CLASSES:
        a = array_symbols("a", (c,))
        yield evidence.identity(softmax_sym(a + sp.ones(c, 1) * F), softmax_sym(a), f"softmax(a + F) = softmax(a), symbolic F, C = {c}")
    yield evidence.identity(_y(_i, F), _y(_i), "softmax(a + F)_i = softmax(a)_i, index form, symbolic C and F")
    C = d["C"]
    # the naive form as far as it cannot overflow (|a|, |F| <= 300 or 40: |a + F| below ln max),
    # and jax.nn.softmax (which shifts by the maximum itself) over a wider range
    cases = (("float64", softmax_naive, 300.0, "the textbook form"), ("float32", softmax_naive, 40.0, "the textbook form"),
             ("float64", jax.nn.softmax, 1e4, "jax.nn.softmax"), ("float32", jax.nn.softmax, 1e4, "jax.nn.softmax"))
    for dtype, fn, bound, what in cases:
        width = 64 if dtype == "float64" else 32
        el = st.floats(-bound, bound, width=width, allow_subnormal=False)
        strat = st.tuples(hnp.arrays(np.dtype(dtype), (C,), elements=el), el)
        ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
        with ctx:
            yield evidence.attack(shift_violation(fn, dtype), strat,
                                  f"softmax(a + F) = softmax(a) up to the rounding of a + F ({what}, {dtype}, |a|, |F| <= {bound:g})", s)


# --- softmax.stable ---------------------------------------------------------------------------
def _first_failing(bad, lo: float, hi: float, dtype) -> float:
    """Bisection for the smallest dtype value v in (lo, hi] with ``bad(v)``; bad(lo) is False, bad(hi) True."""
    np_t = np.dtype(dtype).type
    lo, hi = np_t(lo), np_t(hi)
    if bad(lo) or not bad(hi):
        raise ValueError(f"bisection needs a good lower end and a bad upper end, got {lo} and {hi}")
    while True:
        mid = np_t(lo + (hi - lo) / np_t(2))
        if mid <= lo or mid >= hi:  # lo and hi are adjacent dtype values
            return float(hi)
        if bad(mid):
            hi = mid
        else:
            lo = mid


def overflow_thresholds(dtype: str, C: int = 4) -> dict[str, float]:
    """Where the textbook softmax of (v, 0, ..., 0) breaks, found by bisection on the JAX function.

    ``non-finite``: the first v with a NaN/inf output (e^v overflows); ``wrong``: the first v with
    an output off by more than 1e-3 (on XLA CPU the reciprocal of the sum is flushed to 0 earlier);
    ``gradient wrong``: the first v where the Jacobian (jax.jacrev) is off by more than 1e-3 or
    not finite (JAX's rule for x / s computes s^-2, which overflows at half the threshold).
    """
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    C = _classes(C)
    ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
    with ctx:
        f = jax.jit(softmax_naive)
        jac = jax.jit(jax.jacrev(softmax_naive))
        def truth_first(v):  # softmax(v, 0, ..., 0)_0, for v >= 1 (no overflow in float64 math)
            return 1.0 / (1.0 + (C - 1) * math.exp(-float(v)))

        def at(v):
            x = np.zeros(C, dtype=dtype)
            x[0] = v
            return jnp.asarray(x)

        def nonfinite(v):
            return not bool(jnp.all(jnp.isfinite(f(at(v)))))

        def wrong(v):
            out = np.asarray(f(at(v)))
            return not (np.all(np.isfinite(out)) and abs(float(out[0]) - truth_first(v)) < 1e-3)

        def grad_wrong(v):
            e = math.exp(-float(v))  # the Jacobian diag(y) - y y^T of (v, 0, ..., 0), in float64 math
            y = np.array([1.0] + [e] * (C - 1)) / (1.0 + (C - 1) * e)
            J = np.asarray(jac(at(v)), dtype=np.float64)
            return not (np.all(np.isfinite(J)) and np.max(np.abs(J - (np.diag(y) - np.outer(y, y)))) < 1e-3)

        hi = 1e4 if dtype == "float64" else 1e3
        return {
            "non-finite": _first_failing(nonfinite, 1.0, hi, dtype),
            "wrong": _first_failing(wrong, 1.0, hi, dtype),
            "gradient wrong": _first_failing(grad_wrong, 1.0, hi, dtype),
            "ln(max float)": math.log(float(np.finfo(dtype).max)),
        }


def first_outputs(dtype: str, C: int = 4, top: float = 800.0, points: int = 801):
    """softmax(v, 0, ..., 0)_0 by the textbook and the shifted form for v in [0, top] (the report's figure)."""
    ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
    with ctx:
        v = np.linspace(0.0, top, points)
        x = np.zeros((points, _classes(C)), dtype=dtype)
        x[:, 0] = v
        both = jax.jit(jax.vmap(lambda a: jnp.stack([softmax_naive(a)[0], softmax_shifted(a)[0]])))
        out = np.asarray(both(jnp.asarray(x)), dtype=np.float64)
    return {"v": v, "naive": out[:, 0], "shifted": out[:, 1]}


@claim(
    seeds=("003",), expected=("verified", "refuted"),
    title=r"The shifted softmax never overflows; the textbook form does above $\ln(\max \mathrm{float})$",
    statement=r"$\operatorname{softmax}(a - \max a)$ is finite for every finite input; the textbook form overflows "
              r"once $\max(a) > \ln(\max \mathrm{float})$: $88.72$ in float32, $709.78$ in float64, thresholds the "
              r"suite finds itself",
    params={"C": 4},
)
def stable(C=4) -> Derivation:
    C = _classes(C)
    a = array_symbols("a", (C,))
    fmax = sp.Symbol(r"\mathrm{float}_{\max}", positive=True)
    # ln of the largest finite float, exactly: the binary formats' largest values in closed form
    def ln_largest(mantissa_bits, max_exponent):  # ln((2 - 2^-p) 2^e), kept unevaluated for display
        two = sp.Integer(2)
        mant = sp.Add(two, -sp.Pow(two, -mantissa_bits, evaluate=False), evaluate=False)
        return sp.log(sp.Mul(mant, sp.Pow(two, max_exponent, evaluate=False), evaluate=False), evaluate=False)

    ln64, ln32 = ln_largest(52, 1023), ln_largest(23, 127)
    return Derivation(
        statement=[sp.Eq(sp.Function("softmax")(sp.Symbol("a")),
                         sp.Symbol(r"e^{a - \max a} / \sum_k e^{a_k - \max a}")),
                   sp.StrictGreaterThan(sp.Symbol(r"\max_i a_i"), sp.log(fmax))],
        steps=[
            Step(sp.Symbol(r"e^{a_i}"), sp.oo, "overflows once a_i > ln(float_max): the textbook form gives inf/inf = NaN"),
            Step(sp.log(sp.Symbol(r"\mathrm{float64}_{\max}")), ln64,
                 f"= {float(ln64):.6f}; the largest float64 is (2 - 2^-52) 2^1023 (the verification finds the "
                 "threshold by bisection on the JAX function)"),
            Step(sp.log(sp.Symbol(r"\mathrm{float32}_{\max}")), ln32, f"= {float(ln32):.6f}; (2 - 2^-23) 2^127"),
            Step(sp.Symbol("a_i") - sp.Function("max")(sp.Symbol("a")), sp.Interval(-sp.oo, 0),
                 "after the shift every exponent is <= 0: e^{.} in (0, 1]"),
            Step(sp.Symbol(r"\sum_k e^{a_k - \max a}"), sp.Interval(1, C), "the largest term is e^0 = 1: no 0/0, no overflow"),
        ],
        objects={"C": C, "a": a, "ln_max": {"float64": ln64, "float32": ln32}},
    )


@stable.verifier
def _(d: Derivation, s: gradcheck.Settings):
    C = d["C"]
    for dtype in ("float64", "float32"):
        th = overflow_thresholds(dtype, C)
        report = gradcheck.check(softmax_naive, softmax_sym, shapes=[(C,)], domain=(-1000.0, 1000.0), dtype=dtype,
                                 max_examples=s.max_examples, seed=s.seed)
        nonfinite = [f for f in report.failures if f.kind == "non-finite" and f.argument is None]
        found = bool(nonfinite) and float(np.max(nonfinite[0].input[0])) >= th["non-finite"]
        exact = float(d["ln_max"][dtype])  # SymPy's closed form, against NumPy's finfo and the bisection
        near = (abs(th["non-finite"] - exact) <= 1e-5 * exact and abs(th["ln(max float)"] - exact) <= 1e-12 * exact)
        cex = (f"softmax_naive{nonfinite[0].input_repr()} = {nonfinite[0].got} in {dtype} (truth {nonfinite[0].expected})"
               if nonfinite else None)
        ok = found and near
        yield gradcheck.Finding(
            "refuted" if ok else None, ok,
            f"the textbook softmax overflows in {dtype}: NaN once max(a) > {th['non-finite']:.6f} "
            f"(ln of the largest {dtype}: {th['ln(max float)']:.6f})" if ok else
            f"the textbook softmax's overflow in {dtype} was not found where expected: {th}",
            "gradcheck.check (shrunk non-finite failure) + bisection on the JAX function",
            figure={k: round(v, 6) for k, v in th.items()},
            counterexample=cex,
            record={**report.record(), "thresholds": th},
            curves=first_outputs(dtype, C, top=800.0 if dtype == "float64" else 120.0),
        )
        big = float(np.finfo(dtype).max)
        # gradcheck.check is given +-max/2: with (-max, max) its uniform sampler computes hi - lo,
        # which overflows (OverflowError, reported to the engine).  The attack below covers the
        # whole finite range, +-max included.
        yield evidence.checked(softmax_shifted, softmax_sym,
                               f"the shifted softmax and its Jacobian agree with the truth for logits up to "
                                           f"+-{big / 2:.3g} ({dtype})",
                               s, shapes=[(C,)], domain=(-big / 2, big / 2), dtype=dtype)
        # the whole finite range, ends included: never a NaN or inf, in values or Jacobian
        width = 64 if dtype == "float64" else 32
        ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
        with ctx:
            f = jax.jit(lambda a: (softmax_shifted(a), jax.jacrev(softmax_shifted)(a)))

            eps = float(np.finfo(dtype).eps)

            def breaks(a, f=f, eps=eps):
                y, J = f(jnp.asarray(a))
                return not (bool(jnp.all(jnp.isfinite(y))) and bool(jnp.all(jnp.isfinite(J)))
                            and abs(float(jnp.sum(y)) - 1.0) <= 8 * eps)

            el = st.floats(-big, big, width=width, allow_nan=False, allow_infinity=False)
            yield evidence.attack(breaks, hnp.arrays(np.dtype(dtype), (C,), elements=el),
                                  f"the shifted softmax is finite, sums to 1 and has a finite Jacobian for every finite "
                                  f"{dtype} input", s)
