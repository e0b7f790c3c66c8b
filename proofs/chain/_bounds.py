"""The one-neuron chain: chain.term_bound, chain.ratio_b1_b3, chain.exploding."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from hypothesis import strategies as st

import gradcheck
from gradcheck import models as nw
from gradcheck.catalogue import Derivation, Finding, Step, evidence
from gradcheck.models import dC, dsigma
from gradcheck.symbolic import concrete, logistic, sigma
from proofs import claim

from ._gradients import _identity, _same, z

# =====================================================================================
# chain.term_bound
# =====================================================================================
_u = sp.Symbol("u", nonnegative=True)  # |w|


@claim(
    seeds=("000",),
    expected=("proved",),
    title=r"$|w| < 1$ makes every chain factor smaller than $1/4$",
    statement=r"if $|w| < 1$ then $|w \sigma'(z)| < 1/4$ for every real $z$",
)
def term_bound() -> Derivation:
    dsig = concrete(sp.diff(sigma(z), z))
    gap = sp.Rational(1, 4) - _u * dsig
    first, second = (1 - _u) / 4, _u * (logistic(z) - sp.Rational(1, 2)) ** 2
    split = first + second
    w = sp.Symbol("w", real=True)
    return Derivation(
        statement=sp.Implies(sp.Lt(sp.Abs(w), 1), sp.Lt(sp.Abs(w * sp.Derivative(sigma(z), z)), sp.Rational(1, 4))),
        steps=[
            Step(sp.Derivative(sigma(z), z), dsig, "sympy.diff of 1/(1+e^{-z}), positive for every real z"),
            Step(sp.Abs(w * sp.Derivative(sigma(z), z)), _u * sp.Derivative(sigma(z), z), "u = |w|, since sigma' > 0"),
            Step(
                sp.Rational(1, 4) - _u * sp.Derivative(sigma(z), z),
                split,
                "the difference with this sum simplifies to 0: both terms are >= 0, the first > 0 when u < 1",
            ),
        ],
        objects={"dsig": dsig, "gap": gap, "split": split, "terms": (first, second)},
    )


@term_bound.verifier
def _(d: Derivation, s):
    dsig = d["dsig"]
    yield evidence.fact(
        bool(dsig.is_positive) or bool(sp.simplify(dsig).is_positive),
        "sigma'(z) > 0 for every real z, so |w sigma'(z)| = |w| sigma'(z)",
        "sympy: assumptions on the derived sigma'",
    )
    yield _identity(d["gap"], d["split"], "1/4 - |w| sigma'(z) = (1 - |w|)/4 + |w| (sigma(z) - 1/2)^2")
    eps = sp.Symbol("epsilon", positive=True)  # |w| = 1 - epsilon: the hypothesis |w| < 1
    first, second = d["terms"]
    ok = bool(first.subs(_u, 1 - eps).is_positive) and bool(second.is_nonnegative)
    yield evidence.fact(
        ok,
        "with |w| = 1 - epsilon, epsilon > 0: (1 - |w|)/4 > 0 and |w| (sigma - 1/2)^2 >= 0, so |w sigma'(z)| < 1/4",
        "sympy: signs under assumptions",
    )
    yield term_bound_attack(s)


def term_bound_attack(s, w_max: float = 1.0) -> Finding:
    """Hypothesis looks for |w| < w_max, z with |w sigma'(z)| >= 1/4 (jax.grad of jax.nn.sigmoid).

    With ``w_max = 1`` (the claim) it must find nothing; a wider range (the test's broken
    variant) must yield a counterexample near w = 1, z = 0.
    """
    with gradcheck.float64():
        dsig_jax = jax.jit(jax.vmap(jax.grad(jax.nn.sigmoid)))

        def violates(t):
            w, zz = t
            return abs(w * float(dsig_jax(jnp.asarray([zz], jnp.float64))[0])) >= 0.25

        return evidence.attack(
            violates,
            st.tuples(st.floats(-w_max, w_max, exclude_min=True, exclude_max=True), st.floats(-1e3, 1e3)),
            f"|w| < {w_max:g} implies |w sigma'(z)| < 1/4 (jax.grad of jax.nn.sigmoid, float64)",
            s,
        )


# =====================================================================================
# chain.ratio_b1_b3
# =====================================================================================
@claim(
    seeds=("000",),
    expected=("proved", "verified"),
    title=r"$\partial C/\partial b_{1}$ is below $1/16$ of $\partial C/\partial b_{3}$ when all $|w| < 1$",
    statement=r"$\frac{\partial C/\partial b_{1}}{\partial C/\partial b_{3}} = \sigma'(z_{1}) w_{2} \sigma'(z_{2}) "
    r"w_{3}$ exactly; with all $|w_{j}| < 1$ its absolute value is below $1/16$ (the note's '$\partial "
    r"C/\partial b_{1}$ is usually $1/16$ of $\partial C/\partial b_{3}$' is this bound, not a typical "
    r"value)",
)
def ratio_b1_b3() -> Derivation:
    g = nw.chain_backward(4)
    s = g.s
    ratio = sp.cancel(g.grad_b(1) / g.grad_b(3))
    textbook = dsigma(s.z[0]) * s.w[1] * dsigma(s.z[1]) * s.w[2]
    return Derivation(
        statement=[
            sp.Eq(dC(s.b[0]) / dC(s.b[2]), textbook),
            sp.Implies(
                sp.And(*[sp.Lt(sp.Abs(w), 1) for w in s.w]), sp.Lt(sp.Abs(dC(s.b[0]) / dC(s.b[2])), sp.Rational(1, 16))
            ),
        ],
        steps=[
            Step(dC(s.b[0]), g.seed_form(1), "chain.grad_b1 at L = 4"),
            Step(dC(s.b[2]), g.seed_form(3), "chain.grad_bj at j = 3"),
            Step(dC(s.b[0]) / dC(s.b[2]), ratio, "sympy.cancel of the quotient"),
        ],
        objects={"gradient": g, "ratio": ratio, "textbook": textbook},
    )


@ratio_b1_b3.verifier
def _(d: Derivation, s):
    g = d["gradient"]
    sy = g.s
    yield _identity(d["ratio"], d["textbook"], "dC/db_1 / dC/db_3 = sigma'(z_1) w_2 sigma'(z_2) w_3")
    # the bound: |ratio| = sigma'(z_1) * (|w_2| sigma'(z_2)) * |w_3| with sigma' <= 1/4 (sigmoid.max_derivative),
    # |w_2| sigma'(z_2) < 1/4 (chain.term_bound) and |w_3| < 1: write 1/16 - p q r as a sum of
    # nonnegative terms with one positive, p in (0, 1/4], q in [0, 1/4), r in [0, 1)
    p, q, r = sp.symbols("p q r", nonnegative=True)
    e1, e2, e3 = sp.symbols("e1 e2 e3", nonnegative=True)  # slacks: p = 1/4 - e1, q = 1/4 - e2, r = 1 - e3
    split = e2 * p * r + p * e3 / 4 + e1 / 4
    subs = {p: sp.Rational(1, 4) - e1, q: sp.Rational(1, 4) - e2, r: 1 - e3}
    ok_split = _same(sp.expand((sp.Rational(1, 16) - p * q * r).subs(subs)), sp.expand(split.subs(subs)))
    ratio_abs = d["ratio"].subs({sy.w[1]: sp.Abs(sy.w[1]), sy.w[2]: sp.Abs(sy.w[2])})
    ok_form = _same(ratio_abs, dsigma(sy.z[0]) * (sp.Abs(sy.w[1]) * dsigma(sy.z[1])) * sp.Abs(sy.w[2]))
    yield evidence.fact(
        ok_split and ok_form,
        "|dC/db_1 / dC/db_3| = sigma'(z_1) (|w_2| sigma'(z_2)) |w_3| < (1/4)(1/4)(1) = 1/16 when all |w_j| < 1: "
        "with p = 1/4 - e1, q = 1/4 - e2, r = 1 - e3: 1/16 - pqr = e2 p r + p e3/4 + e1/4 > 0 "
        "(slacks e2 > 0, e1, e3 >= 0, p > 0; r = 0 gives e3 = 1)",
        "sympy: identity of the slack decomposition; factor bounds from sigmoid.max_derivative and chain.term_bound",
    )
    n = s.max_examples
    with gradcheck.float64():
        a0, w, b, y = nw.random_chain(s.seed, 4, n)
        auto = jax.jit(jax.vmap(nw.chain_autodiff))

        @jax.jit
        @jax.vmap
        def closed_ratio(a0, w, b, y):
            zz, _ = nw.chain_forward(a0, w, b)
            return nw.dsigmoid(zz[0]) * w[1] * nw.dsigmoid(zz[1]) * w[2]

        db = np.asarray(auto(a0, w, b, y)[1])
        got = db[:, 0] / db[:, 2]
        want = np.asarray(closed_ratio(a0, w, b, y))
        err = float(np.max(np.abs(got - want) / np.abs(want)))
        yield evidence.fact(
            err < 1e-12,
            f"jax.grad's dC/db_1 / dC/db_3 equals sigma'(z_1) w_2 sigma'(z_2) w_3 on {n} random chains "
            f"(max relative error {err:.2g}, float64)",
            "jax.grad, jitted and vmapped",
            verdict="verified",
            examples=n,
            seed=s.seed,
            dtype="float64",
            max_relative_error=err,
        )

        def violates(t):
            ws, bs, a0_, y_ = t
            dbs = np.asarray(auto(jnp.asarray([a0_]), jnp.asarray([ws]), jnp.asarray([bs]), jnp.asarray([y_]))[1])[0]
            return dbs[2] != 0 and abs(dbs[0] / dbs[2]) >= 1 / 16

        unit = st.floats(-1.0, 1.0, exclude_min=True, exclude_max=True)
        yield evidence.attack(
            violates,
            st.tuples(
                st.lists(unit, min_size=4, max_size=4),
                st.lists(st.floats(-50, 50), min_size=4, max_size=4),
                st.floats(-10, 10),
                st.floats(-10, 10),
            ),
            "|dC/db_1 / dC/db_3| < 1/16 when all |w_j| < 1 (jax.grad, float64)",
            s,
        )


# =====================================================================================
# chain.exploding
# =====================================================================================
@claim(
    seeds=("000",),
    expected=("proved", "verified"),
    title=r"$w_{j} = 100$ with $z_{j} = 0$ makes the gradient explode as $25^{L}$",
    statement=r"with $w_{j} = 100$ and $b_{j} = -100 a_{j-1}$, $z_{j} = 0$ and $w_{j} \sigma'(z_{j}) = 25$ in every "
    r"layer, so $\partial C/\partial b_{1} = 25^{L-1} (a_{L} - y)/4$ grows as $25^{L}$",
    params={"L": 4},
)
def exploding(L: int = 4) -> Derivation:
    g = nw.chain_backward(L)
    sy = g.s
    # b_j = -100 a_{j-1}: substitute layer by layer into the nested network and let SymPy evaluate
    vals, a_prev = {sy.w[k]: 100 for k in range(L)}, sy.a0
    zs = []
    for k in range(L):
        zk = sp.simplify((sy.w[k] * a_prev + sy.b[k]).subs(vals).subs(sy.b[k], -100 * a_prev))
        zs.append(zk)
        vals[sy.b[k]] = -100 * a_prev
        a_prev = concrete(sigma(zk))
    point = {sy.w[k]: 100 for k in range(L)} | {sy.z[k]: zs[k] for k in range(L)} | {sy.a[L]: a_prev}
    link = concrete(g.link[1].subs(point)) if L > 1 else None  # w_2 sigma'(z_2) at the point
    value = concrete(g.grad_b(1).subs(point))
    kk = sp.Symbol("k", integer=True, positive=True)
    Ls = sp.Symbol("L", integer=True, positive=True)
    general = (sp.Rational(1, 4) * sp.Product(25, (kk, 2, Ls)) * (sp.Rational(1, 2) - sy.y)).doit()
    return Derivation(
        statement=sp.Eq(dC(sy.b[0]), general),
        steps=[
            Step(sp.Symbol("z_j"), sp.Matrix([zs]), "b_j = -100 a_{j-1} with w_j = 100: every weighted input is 0"),
            Step(sp.Symbol("a_j"), sp.Matrix([[concrete(sigma(zk)) for zk in zs]]), "sigma(0) = 1/2"),
            Step(
                sp.Symbol(r"w_j \sigma'(z_j)"),
                link if link is not None else sp.Integer(25),
                "100 sigma'(0) = 100/4 = 25",
            ),
            Step(dC(sy.b[0]), value, f"the product of chain.grad_b1 at L = {L}"),
        ],
        objects={"L": L, "z": zs, "value": value, "general": general, "Ls": Ls, "link": link, "y": sy.y},
    )


@exploding.verifier
def _(d: Derivation, s):
    L, y = d["L"], d["y"]
    yield evidence.fact(
        all(zk == 0 for zk in d["z"]),
        f"z_j = 0 for j = 1..{L} (b_j = -100 a_{{j-1}}, w_j = 100)",
        "sympy substitution into the nested network",
    )
    if d["link"] is not None:
        yield _identity(d["link"], 25, "w_j sigma'(z_j) = 100 sigma'(0) = 25")
    yield _identity(
        d["value"], d["general"].subs(d["Ls"], L), f"dC/db_1 = 25^(L-1) (1/2 - y) / 4 at L = {L}: grows as 25^L"
    )
    # JAX: the same construction in one chain of depth D: its layers j..D are themselves such a
    # chain (input a_{j-1} = 1/2, b_j = -50), so dC/db_j is dC/db_1 of depth D - j + 1
    D = max(L, 40)
    yv = 0.0
    exact = sp.lambdify(d["Ls"], d["general"].subs(y, yv), "mpmath")
    got = {}
    with gradcheck.float64():
        for dtype in ("float64", "float32"):
            w = jnp.full((D,), 100.0, dtype)
            # a_0 = 1/4 keeps b_1 = -25 and every z_j = 0 exact: the forward pass amplifies an
            # error in z_1 by w sigma'(0) = 25 per layer as well (a rounding of 1e-16 in
            # 100 * 0.3 reaches 1e-8 by layer 6 and throws sigma(z) off the point by layer 12)
            a0 = jnp.asarray(0.25, dtype)
            b = jnp.concatenate([(-100.0 * a0)[None], jnp.full((D - 1,), -50.0, dtype)])  # b_j = -w_j a_{j-1}
            db = np.asarray(jax.jit(nw.chain_autodiff)(a0, w, b, jnp.asarray(yv, dtype))[1], dtype=np.float64)
            got[dtype] = {D - j: db[j] for j in range(D)}  # depth -> dC/db_1
    errs = [abs(got["float64"][n] - float(exact(n))) / float(exact(n)) for n in range(1, D + 1)]
    err = max(errs)
    f32 = [n for n in range(1, D + 1) if not math.isfinite(got["float32"][n])]
    f32_inf = min(f32) if f32 else None
    ok = err < 1e-12 and f32_inf is not None
    yield evidence.fact(
        ok,
        f"jax.grad of the constructed chain gives dC/db_1 = 25^(L-1)(1/2 - y)/4 for L = 1..{D} "
        f"(max relative error {err:.2g}, float64); in float32 it overflows to inf from L = {f32_inf}",
        "jax.grad at the constructed parameters",
        verdict="verified",
        depths=[1, D],
        max_relative_error=err,
        float32_overflow_depth=f32_inf,
        y=yv,
    )
