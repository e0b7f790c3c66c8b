"""Softmax: softmax.sums_to_one, softmax.jacobian, softmax.cross_entropy_grad, softmax.shift_invariance."""

from __future__ import annotations

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

from ._forms import (
    _C,
    _S,
    CLASSES,
    F,
    _a,
    _classes,
    _i,
    _j,
    _j_in_range,
    _k,
    _m,
    _t,
    _y,
    softmax_naive,
    softmax_shifted,
    softmax_sym,
    softmax_textbook,
    textbook_jacobian,
)


# --- softmax.sums_to_one ------------------------------------------------------------------------
@claim(
    seeds=("003",),
    expected=("proved", "verified"),
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
    yield evidence.identity(
        sp.Sum(_y(_i), (_i, 1, _C)).doit().xreplace({_i: _k}), num, "sum_i y_i = sum_i e^{a_i} / sum_k e^{a_k}"
    )
    yield evidence.identity(num, 1, "sum_i y_i = 1 for symbolic C")
    C = d["C"]
    for dtype in ("float64", "float32"):
        yield evidence.checked(
            lambda a: jnp.sum(jax.nn.softmax(a)),
            lambda a: sum(softmax_sym(a)),
            f"sum of jax.nn.softmax is 1, its gradient 0 ({dtype}, logits up to +-1000)",
            s,
            shapes=[(C,)],
            domain=(-1000.0, 1000.0),
            dtype=dtype,
        )


# --- softmax.jacobian ---------------------------------------------------------------------------
def _textbook(y):
    C = y.shape[0]
    return sp.Matrix(C, C, lambda i, j: y[i] * (sp.KroneckerDelta(i, j) - y[j]))


def _note_form(y):
    """The note's two cases: y_i (1 - y_j) for i = j, -y_i y_j for i != j."""
    C = y.shape[0]
    return sp.Matrix(C, C, lambda i, j: y[i] * (1 - y[j]) if i == j else -y[i] * y[j])


@claim(
    seeds=("003",),
    expected=("proved", "verified"),
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
        statement=sp.Eq(
            sp.Derivative(sp.Indexed("y", _i), sp.Indexed("a", _j)),
            sp.Indexed("y", _i) * (sp.KroneckerDelta(_i, _j) - sp.Indexed("y", _j)),
        ),
        steps=[
            Step(sp.Indexed("y", _i), _y(_i), "definition"),
            Step(sp.Symbol(r"\partial y / \partial a"), J, f"Matrix.jacobian, C = {C}"),
            Step(
                sp.Symbol(r"\partial y / \partial a"), _textbook(ysym), "equal entry by entry to y_i (delta_ij - y_j)"
            ),
            Step(
                sp.Derivative(sp.Indexed("y", _i), sp.Indexed("a", _j)),
                d_idx,
                "index form, symbolic C (C = j + m, m >= 0)",
            ),
        ],
        objects={"C": C, "a": a, "y": y, "J": J, "d_idx": d_idx},
    )


@jacobian.verifier
def _(d: Derivation, s: gradcheck.Settings):
    for c in CLASSES:
        a = array_symbols("a", (c,))
        y = softmax_sym(a)
        yield evidence.identity(y.jacobian(a), _textbook(y), f"Jacobian of the softmax = y_i (delta_ij - y_j), C = {c}")
    yield evidence.identity(
        _textbook(d["y"]), _note_form(d["y"]), "the note's form y_i (1 - y_j) (i = j), -y_i y_j (i != j) is the same"
    )
    idx_textbook = _y(_i) * (sp.KroneckerDelta(_i, _j) - _y(_j))
    yield evidence.identity(d["d_idx"], idx_textbook.subs(_C, _j + _m), "Jacobian in index form, symbolic C")
    C = d["C"]
    for fn, what in (
        (jax.nn.softmax, "jax.nn.softmax"),
        (softmax_shifted, "the shifted softmax"),
        (softmax_textbook, "a softmax whose JVP is the textbook Jacobian"),
    ):
        yield evidence.checked(
            fn,
            softmax_sym,
            f"jacfwd/jacrev/jvp/vjp of {what} agree with the SymPy Jacobian (float64)",
            s,
            shapes=[(C,)],
            domain=(-1000.0, 1000.0),
            dtype="float64",
        )
    # and the closed form itself against JAX's own transforms of jax.nn.softmax
    with gradcheck.float64():
        fwd, rev = jax.jit(jax.jacfwd(jax.nn.softmax)), jax.jit(jax.jacrev(jax.nn.softmax))
        closed = jax.jit(lambda a: textbook_jacobian(jax.nn.softmax(a)))

        def differs(a):
            a = jnp.asarray(a)
            want = closed(a)
            return any(float(jnp.max(jnp.abs(J(a) - want))) > 1e-15 for J in (fwd, rev))

        yield evidence.attack(
            differs,
            hnp.arrays(np.float64, (C,), elements=st.floats(-1e3, 1e3)),
            "diag(y) - y y^T = jax.jacfwd = jax.jacrev of jax.nn.softmax (float64, to 1e-15)",
            s,
        )


# --- softmax.cross_entropy_grad -------------------------------------------------------------
@claim(
    seeds=("003",),
    expected=("proved", "verified"),
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
    constraint = {t[C - 1]: 1 - sum(t[: C - 1])}  # sum_i t_i = 1
    L_idx = -sp.Sum(_t[_i] * sp.expand_log(sp.log(_y(_i)), force=True), (_i, 1, _C))
    g_idx = _j_in_range(sp.diff(L_idx, _a[_j]))
    g_idx = sp.simplify(g_idx)
    Lsym = sp.Symbol("L")
    return Derivation(
        statement=sp.Eq(sp.Derivative(Lsym, sp.Indexed("a", _j)), sp.Indexed("y", _j) - sp.Indexed("t", _j)),
        steps=[
            Step(
                Lsym,
                -sp.Sum(sp.Indexed("t", _i) * sp.log(sp.Indexed("y", _i)), (_i, 1, _C)),
                "cross-entropy with targets t",
            ),
            Step(sp.Symbol(r"\partial L / \partial a"), g, f"sympy.diff, C = {C}"),
            Step(
                sp.Symbol(r"\partial L / \partial a"), y * sp.Symbol(r"\sum_i t_i") - t, "= y sum_i t_i - t for any t"
            ),
            Step(sp.Derivative(Lsym, sp.Indexed("a", _j)), g_idx, "index form, symbolic C"),
            Step(
                sp.Derivative(Lsym, sp.Indexed("a", _j)),
                sp.Indexed("y", _j) - sp.Indexed("t", _j),
                "with sum_i t_i = 1",
            ),
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
        constraint = {t[c - 1]: 1 - sum(t[: c - 1])}
        yield evidence.identity(
            g.subs(constraint), (y - t).subs(constraint), f"with sum t = 1: dL/da = softmax(a) - t, C = {c}"
        )
    idx_general = _y(_j) * sp.Sum(_t[_i], (_i, 1, _C)) - _t[_j]
    yield evidence.identity(
        d["g_idx"], idx_general.subs(_C, _j + _m), "index form: dL/da_j = y_j sum_i t_i - t_j, symbolic C"
    )
    C = d["C"]
    # atol 1e-11: the gradient in u is softmax's VJP y * (g - <y, g>) with g = -log_softmax(a), whose
    # entries reach 2000 for logits in +-1000; where t is nearly one-hot the result is a
    # cancellation of terms that size, exact only to about 2000 eps = 4e-13 in any float64
    # implementation (the default floor, 1e-12, would leave only a factor 2.5 of margin here)
    yield evidence.checked(
        xent_of_logits,
        _xent_reference,
        "the rule dL/da = softmax(a) - t (a custom_vjp) agrees with SymPy, t = softmax(u) (float64)",
        s,
        shapes=[(C,), (C,)],
        domain=(-1000.0, 1000.0),
        dtype="float64",
        atol=1e-11,
    )
    with gradcheck.float64():
        g_jax = jax.jit(jax.grad(lambda a, t: -jnp.sum(t * jax.nn.log_softmax(a))))

        def differs(au):
            a, u = jnp.asarray(au[0]), jnp.asarray(au[1])
            t = jax.nn.softmax(u)
            return float(jnp.max(jnp.abs(g_jax(a, t) - (jax.nn.softmax(a) - t)))) > 1e-14

        arr = hnp.arrays(np.float64, (C,), elements=st.floats(-1e3, 1e3))
        yield evidence.attack(
            differs, st.tuples(arr, arr), "jax.grad of -sum t log_softmax(a) = softmax(a) - t (float64)", s
        )


# --- softmax.shift_invariance -------------------------------------------------------------------
@claim(
    seeds=("003",),
    expected=("proved",),
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
            Step(sp.Indexed("y", _i), _y(_i, F), "shift every logit by F"),
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
        yield evidence.identity(
            softmax_sym(a + sp.ones(c, 1) * F), softmax_sym(a), f"softmax(a + F) = softmax(a), symbolic F, C = {c}"
        )
    yield evidence.identity(_y(_i, F), _y(_i), "softmax(a + F)_i = softmax(a)_i, index form, symbolic C and F")
    C = d["C"]
    # the naive form as far as it cannot overflow (|a|, |F| <= 300 or 40: |a + F| below ln max),
    # and jax.nn.softmax (which shifts by the maximum itself) over a wider range
    cases = (
        ("float64", softmax_naive, 300.0, "the textbook form"),
        ("float32", softmax_naive, 40.0, "the textbook form"),
        ("float64", jax.nn.softmax, 1e4, "jax.nn.softmax"),
        ("float32", jax.nn.softmax, 1e4, "jax.nn.softmax"),
    )
    for dtype, fn, bound, what in cases:
        width = 64 if dtype == "float64" else 32
        el = st.floats(-bound, bound, width=width, allow_subnormal=False)
        strat = st.tuples(hnp.arrays(np.dtype(dtype), (C,), elements=el), el)
        ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
        with ctx:
            yield evidence.attack(
                shift_violation(fn, dtype),
                strat,
                f"softmax(a + F) = softmax(a) up to the rounding of a + F ({what}, {dtype}, |a|, |F| <= {bound:g})",
                s,
            )
