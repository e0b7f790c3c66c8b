"""The one-neuron chain of seed 000 (Nielsen's argument): vanishing, exploding, unstable.

The network is ``z_j = w_j a_{j-1} + b_j``, ``a_j = sigma(z_j)``, ``C = (a_L - y)^2 / 2``
(:mod:`gradcheck.networks` builds it).  Every gradient is derived by SymPy from the per-layer
chain-rule factor, which :func:`gradcheck.networks.layer_rule` derives once by ``sympy.diff``
of one layer followed by an *undefined* function G (the rest of the network): that lemma is the
induction step that makes the product hold at every depth, so depth L costs O(L) symbolic work
instead of a nested expression that swells.  For L = 1..8 the product is also shown equal to
``sympy.diff`` of the fully nested network.

Claims: chain.grad_b1, chain.grad_bj (both take the depth ``L``, default 4 as in the seed),
chain.term_bound, chain.ratio_b1_b3, chain.exploding, chain.window, chain.unstable.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import sympy as sp
from hypothesis import strategies as st

import gradcheck
from gradcheck.catalogue import Derivation, Finding, Step, evidence
from gradcheck import networks as nw
from gradcheck.networks import dC, dsigma
from gradcheck.symbolic import concrete, logistic, prove_equal, sigma
from proofs import claim

z = sp.Symbol("z", real=True)

#: Deepest chain whose fully nested ``sympy.diff`` is compared with the product (and whose
#: closed form goes through ``gradcheck.check``).  Beyond it the nested derivative swells
#: (a sum of L terms each repeating the nested arguments) and the lemma carries the proof.
EXPANDED_MAX_L = 8

#: Draws of random chains whose gradients are compared with mpmath's truth one by one.
TRUTH_POINTS = 16


def _same(a, b) -> bool:
    """Equal as SymPy proves it (:func:`gradcheck.symbolic.prove_equal`: expansion, rational
    functions of e^(v/2), then simplification)."""
    return prove_equal(a, b)


def _identity(a, b, what: str) -> Finding:
    """``proved`` when :func:`_same` shows ``a = b``; a failed finding otherwise."""
    return evidence.fact(_same(a, b), what, "sympy: the difference is 0")


def _log_tol(dtype: str, L: int) -> float:
    """Tolerance on ``|log|got| - log|truth||`` (a relative error) for a product of L factors.

    Each of the ~2L roundings of the forward pass and of the product adds about one ulp of
    relative error; measured errors are 1e-15 (L = 4) to 1e-12 (L = 1024) in float64 and
    1e-6 to 5e-4 in float32, so 64 ulp per layer leaves a margin of about 15.
    """
    return 64 * float(jnp.finfo(dtype).eps) * (L + 1)


# =====================================================================================
# Shared machinery: the gradients of random chains in log space
# =====================================================================================
@functools.lru_cache(maxsize=16)
def _programs(rule: nw.LayerRule):
    """One jitted, vmapped program: (jax.grad's dC/db, log|closed form|, its sign)."""
    _, log_closed = nw.closed_form_from(rule)

    def both(a0, w, b, y):
        return (nw.chain_autodiff(a0, w, b, y)[1], *log_closed(a0, w, b, y))

    return jax.jit(jax.vmap(both))


def log_space_check(L: int, layers, rule: nw.LayerRule, settings, n: int | None = None) -> list[Finding]:
    """Compare ``jax.grad`` of random depth-L chains with the product form, in log space.

    ``layers`` are the 1-based layers j whose dC/db_j are compared.  ``n`` chains (default the
    profile's ``max_examples``) with w, b ~ N(0, 1) are drawn from ``settings.seed``; for each
    dtype (float64, float32), jitted and vmapped:

    * the log-space closed form built from ``rule`` agrees with the mpmath truth (50 digits) on
      ``TRUTH_POINTS`` chains, within :func:`_log_tol`;
    * ``jax.grad`` agrees with the float64 log-space closed form wherever its result is a
      normal number (subnormals carry too few digits to compare);
    * where ``jax.grad`` gives 0 or a subnormal, the closed form says the true value is below
      the smallest normal number of the dtype: underflow is then the right answer, and the
      fraction of such gradients is reported (the trap of DESIGN.md: dC/db_1 underflows
      float32 by L = 64 and float64 by L = 1024).
    """
    n = n or settings.max_examples
    cols = np.asarray(layers, dtype=int) - 1
    program = _programs(rule)
    out = []
    with gradcheck.float64():
        # drawn in float32 and widened, so that both dtypes see exactly the same chains
        params32 = nw.random_chain(settings.seed, L, n, dtype=np.float32)
        params64 = [p.astype(np.float64) for p in params32]
        results = {"float64": program(*params64), "float32": program(*params32)}
        ref_log = np.asarray(results["float64"][1])[:, cols]
        k = min(TRUTH_POINTS, n)
        truth = [nw.chain_truth(*(np.asarray(p[i]) for p in params64)) for i in range(k)]
        tl = np.stack([t[0] for t in truth])[:, cols]
        ts = np.stack([t[1] for t in truth])[:, cols]
        for dtype, params in (("float64", params64), ("float32", params32)):
            tol = _log_tol(dtype, L)
            g, got_log, got_sign = (np.asarray(v, dtype=np.float64)[:, cols] for v in results[dtype])
            tiny = float(jnp.finfo(dtype).tiny)
            err_truth = float(np.max(np.abs(got_log[:k] - tl)))
            sign_ok = bool(np.all(got_sign[:k] == ts))
            normal = np.abs(g) >= tiny
            with np.errstate(divide="ignore"):
                err_auto = float(np.max(np.abs(np.log(np.abs(g[normal])) - ref_log[normal]), initial=0.0))
            auto_sign_ok = bool(np.all(np.sign(g[normal]) == np.sign(np.asarray(got_sign)[normal])))
            lost = ~normal & (ref_log > math.log(tiny) + tol)  # underflow where the truth is normal
            underflow = float(np.mean(~normal))
            b1 = float(np.mean(~normal[:, 0])) if cols[0] == 0 else None
            ok = err_truth <= tol and sign_ok and err_auto <= tol and auto_sign_ok and not lost.any()
            rec = dict(examples=n, truth_points=k, dtype=dtype, seed=settings.seed, tolerance=tol,
                       max_log_error_closed_vs_truth=err_truth, max_log_error_autodiff=err_auto,
                       autodiff_underflow_fraction=underflow, autodiff_underflow_fraction_b1=b1,
                       lost_gradients=int(lost.sum()), depth=L)
            what = (f"jax.grad of {n} random depth-{L} chains (jitted, vmapped) agrees with the product "
                    f"form in log space, and the log-space product with the 50-digit truth ({dtype}); "
                    f"jax.grad underflows to 0/subnormal in {underflow:.0%} of the gradients")
            if ok:
                out.append(Finding("verified", True, what, "log-space comparison (jax.grad, closed form, mpmath)", record=rec))
            else:
                out.append(Finding(None, False, f"log-space comparison failed ({dtype}): max error vs truth "
                                   f"{err_truth:.3g}, vs autodiff {err_auto:.3g}, tolerance {tol:.3g}, signs "
                                   f"{'ok' if sign_ok and auto_sign_ok else 'differ'}, {int(lost.sum())} "
                                   "gradient(s) lost to underflow", "log-space comparison", record=rec))
    return out


def _chain_check(exprs, L: int, settings, dtype="float64"):
    """``gradcheck.check`` of jax.grad's dC/db (the given layers) against SymPy closed forms."""
    layers = [j for j, _ in exprs]
    refs = [nw.chain_reference(e, L) for _, e in exprs]
    cols = jnp.asarray([j - 1 for j in layers])

    def grad_b(a0, w, b, y):
        return nw.chain_autodiff(a0, w, b, y)[1][cols] if len(layers) > 1 else nw.chain_autodiff(a0, w, b, y)[1][cols[0]]

    def reference(a0, w, b, y):
        vals = [r(a0, w, b, y) for r in refs]
        return sp.Matrix(vals) if len(vals) > 1 else vals[0]

    grad_b.__name__ = f"jax_grad_chain_L{L}_db" + "_".join(map(str, layers))
    with gradcheck.float64():
        return gradcheck.check(grad_b, reference, shapes=[(), (L,), (L,), ()], domain=(-5.0, 5.0),
                               order=1, dtype=dtype, max_examples=settings.max_examples, seed=settings.seed)


def _lemma_finding(rule: nw.LayerRule) -> Finding:
    """The induction step, as SymPy derived it: one layer followed by an undefined G."""
    G = sp.Function("G")
    pre = rule.w * rule.a_prev + rule.b
    ok = True
    for raw, fac in zip(rule.lemma, (rule.d_db, rule.d_dw, rule.d_dprev)):
        ok &= not fac.has(G) and _same(raw, rule.g_prime * fac.subs(rule.z, pre))
    return evidence.fact(
        ok,
        "one layer: d G(sigma(w a + b))/db = G'(a) sigma'(z), /dw = G'(a) a_prev sigma'(z), "
        "/da_prev = G'(a) w sigma'(z) for an undefined G (the rest of the network): the per-layer "
        "factors do not depend on what follows, the induction step of the product at any depth",
        "sympy.diff with an undefined downstream function",
    )


def _log_form_finding() -> Finding:
    """The identity the log-space closed form rests on: sigma'(z) = sigma(z) sigma(-z)."""
    return _identity(
        concrete(sp.diff(sigma(z), z)), logistic(z) * logistic(-z),
        "sigma'(z) = sigma(z) sigma(-z), so log sigma'(z) = log sigma(z) + log sigma(-z) "
        "(two log-sigmoids, finite for every finite z)",
    )


# =====================================================================================
# chain.grad_b1 and chain.grad_bj
# =====================================================================================
def _statement_b(g: nw.ChainGradient, j):
    """``dC/db_j = product``: the explicit product up to L = 8, the Product form beyond."""
    s = g.s
    if g.L <= EXPANDED_MAX_L:
        return sp.Eq(dC(s.b[j - 1]), g.seed_form(j))
    k = sp.Symbol("k", integer=True, positive=True)
    W, Z = sp.IndexedBase("w"), sp.IndexedBase("z")
    prod = sp.Product(W[k] * sp.Derivative(sigma(Z[k]), Z[k]), (k, j + 1, g.L))
    return sp.Eq(dC(s.b[j - 1]), sp.Mul(dsigma(s.z[j - 1]), prod, dC(s.a[-1])))


@claim(
    seeds=("000",), expected=("proved", "verified"),
    title=r"$\partial C/\partial b_{1}$ of the one-neuron chain is a product of one factor per layer",
    statement=r"for the depth-$L$ chain $a_{j} = \sigma(w_{j} a_{j-1} + b_{j})$, $C = (a_{L} - y)^{2}/2$: "
              r"$\frac{\partial C}{\partial b_{1}} = \sigma'(z_{1}) w_{2} \sigma'(z_{2}) \cdots w_{L} \sigma'(z_{L}) "
              r"\frac{\partial C}{\partial a_{L}}$ ($L = 4$ in the seed; any $L$)",
    params={"L": 4},
)
def grad_b1(L: int = 4) -> Derivation:
    g = nw.chain_backward(L)
    return Derivation(
        statement=_statement_b(g, 1),
        steps=g.steps(1),
        objects={"L": g.L, "gradient": g, "rule": g.rule, "product": g.grad_b(1), "layers": (1,)},
    )


def _verify_products(d: Derivation, s) -> list[Finding]:
    g: nw.ChainGradient = d["gradient"]
    L, layers = d["L"], d["layers"]
    products = d["products"] if "products" in d.objects else {1: d["product"]}
    out = [_lemma_finding(d["rule"])]
    textbook_ok = all(_same(products[j], nw.chain_textbook(L, j)) for j in layers)
    out.append(evidence.fact(
        textbook_ok,
        f"the product of the per-layer factors, unrolled over L = {L} layers, is the textbook "
        f"sigma'(z_j) prod_(k>j) w_k sigma'(z_k) dC/da_L for j in {_span(layers)}",
        "per-layer factor derived once, instantiated per layer; compared with Product(...) expanded",
    ))
    if L <= EXPANDED_MAX_L:
        net = nw.nested_chain(L)
        ok = all(_same(g.nested(products[j], net), nw.expanded_grad(net, g.s.b[j - 1])) for j in layers)
        out.append(evidence.fact(
            ok,
            f"sympy.diff of the fully nested depth-{L} network equals the product for j in {_span(layers)}",
            "sympy.diff of the nested network; difference is 0",
        ))
    out.append(_log_form_finding())
    return out


def _same_log(a, b) -> bool:
    """``c log(X) == d log(Y)``: c = d and X = Y (log is injective), else :func:`_same`."""
    ca, la = sp.sympify(a).as_independent(sp.log, as_Add=False)
    cb, lb = sp.sympify(b).as_independent(sp.log, as_Add=False)
    if isinstance(la, sp.log) and isinstance(lb, sp.log):
        return _same(ca, cb) and _same(la.args[0], lb.args[0])
    return _same(a, b)


def _span(layers) -> str:
    layers = list(layers)
    return str(layers[0]) if len(layers) == 1 else f"{layers[0]}..{layers[-1]}"


@grad_b1.verifier
def _verify_grad(d: Derivation, s) -> list[Finding]:
    L, layers = d["L"], d["layers"]
    out = _verify_products(d, s)
    if L <= EXPANDED_MAX_L:
        products = d["products"] if "products" in d.objects else {1: d["product"]}
        report = _chain_check([(j, products[j]) for j in layers], L, s)
        out.append(evidence.from_report(report, f"jax.grad of the depth-{L} chain agrees with the derived product "
                                                f"(values and derivatives, gradcheck.check, float64)"))
    out += log_space_check(L, layers, d["rule"], s)
    return out


@claim(
    seeds=("000",), expected=("proved", "verified"),
    title=r"$\partial C/\partial b_{j}$ for every layer $j$ is the suffix product",
    statement=r"$\frac{\partial C}{\partial b_{j}} = \sigma'(z_{j}) \prod_{k=j+1}^{L} w_{k} \sigma'(z_{k}) \, "
              r"\frac{\partial C}{\partial a_{L}}$ for every layer $j$ of the depth-$L$ chain",
    params={"L": 4},
    verify=_verify_grad,
)
def grad_bj(L: int = 4) -> Derivation:
    g = nw.chain_backward(L)
    s = g.s
    steps = [Step(dC(s.a[-1]), g.out, "sympy.diff of the cost (a_L - y)^2/2")]
    for k in range(L, 0, -1):
        steps.append(Step(dC(s.b[k - 1]), sp.Mul(g.head[k - 1], dC(s.a[k])),
                          f"layer {k}: sympy.diff of sigma(w_{k} a_{k - 1} + b_{k}) with respect to b_{k}"))
        if k > 1:
            steps.append(Step(dC(s.a[k - 1]), sp.Mul(g.link[k - 1], dC(s.a[k])),
                              f"layer {k}: with respect to a_{k - 1}"))
    j = sp.Symbol("j", integer=True, positive=True)
    expr, (jj, LL, _), _, _ = nw.textbook_product()
    return Derivation(
        statement=sp.Eq(sp.Symbol(r"\frac{\partial C}{\partial b_j}"), expr.subs({jj: j, LL: L})),
        steps=steps,
        objects={"L": g.L, "gradient": g, "rule": g.rule, "layers": tuple(range(1, L + 1)),
                 "products": {k: g.grad_b(k) for k in range(1, L + 1)}},
    )


# =====================================================================================
# chain.term_bound
# =====================================================================================
_u = sp.Symbol("u", nonnegative=True)  # |w|


@claim(
    seeds=("000",), expected=("proved",),
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
            Step(sp.Rational(1, 4) - _u * sp.Derivative(sigma(z), z), split,
                 "the difference with this sum simplifies to 0: both terms are >= 0, the first > 0 when u < 1"),
        ],
        objects={"dsig": dsig, "gap": gap, "split": split, "terms": (first, second)},
    )


@term_bound.verifier
def _(d: Derivation, s):
    dsig = d["dsig"]
    yield evidence.fact(bool(dsig.is_positive) or bool(sp.simplify(dsig).is_positive),
                        "sigma'(z) > 0 for every real z, so |w sigma'(z)| = |w| sigma'(z)",
                        "sympy: assumptions on the derived sigma'")
    yield _identity(d["gap"], d["split"], "1/4 - |w| sigma'(z) = (1 - |w|)/4 + |w| (sigma(z) - 1/2)^2")
    eps = sp.Symbol("epsilon", positive=True)  # |w| = 1 - epsilon: the hypothesis |w| < 1
    first, second = d["terms"]
    ok = bool(first.subs(_u, 1 - eps).is_positive) and bool(second.is_nonnegative)
    yield evidence.fact(ok, "with |w| = 1 - epsilon, epsilon > 0: (1 - |w|)/4 > 0 and |w| (sigma - 1/2)^2 >= 0, "
                            "so |w sigma'(z)| < 1/4", "sympy: signs under assumptions")
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
            f"|w| < {w_max:g} implies |w sigma'(z)| < 1/4 (jax.grad of jax.nn.sigmoid, float64)", s,
        )


# =====================================================================================
# chain.ratio_b1_b3
# =====================================================================================
@claim(
    seeds=("000",), expected=("proved", "verified"),
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
            sp.Implies(sp.And(*[sp.Lt(sp.Abs(w), 1) for w in s.w]),
                       sp.Lt(sp.Abs(dC(s.b[0]) / dC(s.b[2])), sp.Rational(1, 16))),
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
        yield evidence.fact(err < 1e-12,
                            f"jax.grad's dC/db_1 / dC/db_3 equals sigma'(z_1) w_2 sigma'(z_2) w_3 on {n} random chains "
                            f"(max relative error {err:.2g}, float64)", "jax.grad, jitted and vmapped",
                            verdict="verified", examples=n, seed=s.seed, dtype="float64", max_relative_error=err)

        def violates(t):
            ws, bs, a0_, y_ = t
            dbs = np.asarray(auto(jnp.asarray([a0_]), jnp.asarray([ws]), jnp.asarray([bs]), jnp.asarray([y_]))[1])[0]
            return dbs[2] != 0 and abs(dbs[0] / dbs[2]) >= 1 / 16

        unit = st.floats(-1.0, 1.0, exclude_min=True, exclude_max=True)
        yield evidence.attack(
            violates,
            st.tuples(st.lists(unit, min_size=4, max_size=4), st.lists(st.floats(-50, 50), min_size=4, max_size=4),
                      st.floats(-10, 10), st.floats(-10, 10)),
            "|dC/db_1 / dC/db_3| < 1/16 when all |w_j| < 1 (jax.grad, float64)", s,
        )


# =====================================================================================
# chain.exploding
# =====================================================================================
@claim(
    seeds=("000",), expected=("proved", "verified"),
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
            Step(sp.Symbol(r"w_j \sigma'(z_j)"), link if link is not None else sp.Integer(25), "100 sigma'(0) = 100/4 = 25"),
            Step(dC(sy.b[0]), value, f"the product of chain.grad_b1 at L = {L}"),
        ],
        objects={"L": L, "z": zs, "value": value, "general": general, "Ls": Ls, "link": link, "y": sy.y},
    )


@exploding.verifier
def _(d: Derivation, s):
    L, y = d["L"], d["y"]
    yield evidence.fact(all(zk == 0 for zk in d["z"]), f"z_j = 0 for j = 1..{L} (b_j = -100 a_{{j-1}}, w_j = 100)",
                        "sympy substitution into the nested network")
    if d["link"] is not None:
        yield _identity(d["link"], 25, "w_j sigma'(z_j) = 100 sigma'(0) = 25")
    yield _identity(d["value"], d["general"].subs(d["Ls"], L),
                            f"dC/db_1 = 25^(L-1) (1/2 - y) / 4 at L = {L}: grows as 25^L")
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
    yield evidence.fact(ok,
                        f"jax.grad of the constructed chain gives dC/db_1 = 25^(L-1)(1/2 - y)/4 for L = 1..{D} "
                        f"(max relative error {err:.2g}, float64); in float32 it overflows to inf from L = {f32_inf}",
                        "jax.grad at the constructed parameters", verdict="verified", depths=[1, D],
                        max_relative_error=err, float32_overflow_depth=f32_inf, y=yv)


# =====================================================================================
# chain.window
# =====================================================================================
_U = sp.Symbol("u", positive=True)  # |w|
_q = sp.Symbol("q", positive=True)  # right end of the z-interval


def claimed_width(u):
    """The note's width of the window, (2/u) ln(u (1 + sqrt(1 - 4/u))/2 - 1), for u = |w| >= 4."""
    return 2 / u * sp.log(u * (1 + sp.sqrt(1 - 4 / u)) / 2 - 1)


@claim(
    seeds=("000",), expected=("proved", "verified"),
    title=r"The window of inputs where a chain factor reaches $1$ is at most $0.4477$ wide",
    statement=r"$\{a : |w \sigma'(w a + b)| \geq 1\}$ is an interval of width $\frac{2}{|w|} \ln\left(\frac{|w| (1 + "
              r"\sqrt{1 - 4/|w|})}{2} - 1\right)$ for $|w| \geq 4$ and empty for $|w| < 4$; the width is largest, "
              r"about $0.4477$, at $|w| \approx 6.894$",
)
def window(width=None) -> Derivation:
    width = claimed_width(_U) if width is None else width
    sv = sp.Symbol("s", positive=True)
    dsig = concrete(sp.diff(sigma(z), z))
    # |w| sigma'(z) >= 1  <=>  s (1 - s) >= 1/u with s = sigma(z)  (sigma' = sigma (1 - sigma))
    roots = sorted(sp.solve(sp.Eq(_U * sv * (1 - sv), 1), sv), key=lambda r: float(r.subs(_U, 5)))
    s_lo, s_hi = roots
    logit = sp.solve(sp.Eq(logistic(z), sv), z)[0]  # z = log(s / (1 - s))
    z_hi = logit.subs(sv, s_hi)
    derived_width = 2 * z_hi / _U  # the z-interval is [-z_hi, z_hi]; a = (z - b)/w scales it by 1/|w|
    # parametrise by the right end q = z_hi > 0: u = 1/sigma'(q), width = 2 q sigma'(q)
    dq = dsig.subs(z, _q)
    w_of_q = 2 * _q * dq
    dW = sp.diff(w_of_q, _q)
    return Derivation(
        statement=[
            sp.Eq(sp.Function("W")(_U), width),
            sp.Eq(sp.Symbol(r"\max_{|w| \geq 4} W"), sp.Float(0.4477, 4)),
        ],
        steps=[
            Step(sp.Symbol(r"\sigma'(z)"), dsig, "sympy.diff; even in z, decreasing for z > 0"),
            Step(sp.Symbol(r"s_{\pm}"), sp.Matrix([[s_lo, s_hi]]), "solve |w| s (1 - s) = 1 for s = sigma(z): real iff |w| >= 4"),
            Step(sp.Symbol(r"z_{\pm}"), sp.Matrix([[logit.subs(sv, s_lo), z_hi]]), "z = log(s/(1-s)), solved from sigma(z) = s"),
            Step(sp.Function("W")(_U), derived_width, "(z_+ - z_-)/|w|, with z_- = -z_+"),
            Step(sp.Function("W")(_U), width, "the note's form"),
            Step(sp.Symbol(r"W(q)"), w_of_q, "with q = z_+: |w| = 1/sigma'(q)"),
            Step(sp.Symbol(r"W'(q)"), dW, "sympy.diff: 2 sigma'(q) (1 - q tanh(q/2)), zero once"),
        ],
        objects={"width": width, "derived_width": derived_width, "s_lo": s_lo, "s_hi": s_hi, "z_hi": z_hi,
                 "dsig": dsig, "w_of_q": w_of_q, "dW": dW},
    )


def _window_numeric():
    """JAX: the window's ends by bisection on |w sigma'(w a + b)| - 1 (jax.grad of the sigmoid)."""
    dsig = jax.grad(jax.nn.sigmoid)

    def g(a, w, b):
        return jnp.abs(w * dsig(w * a + b)) - 1.0

    def end(w, b, direction):
        center = -b / w  # z = 0: the factor is at its largest there
        lo, hi = center, center + direction * 60.0 / jnp.abs(w)  # |z| = 60: sigma' ~ 1e-26

        def body(_, lh):
            lo, hi = lh
            mid = 0.5 * (lo + hi)
            inside = g(mid, w, b) >= 0
            return jnp.where(inside, mid, lo), jnp.where(inside, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 200, body, (lo, hi))
        return 0.5 * (lo + hi)

    @jax.jit
    @jax.vmap
    def width(w, b):
        return end(w, b, 1.0) - end(w, b, -1.0)

    @jax.jit
    @jax.vmap
    def peak(w, b):
        return g(-b / w, w, b)

    return width, peak


@window.verifier
def _(d: Derivation, s):
    sy, width, dsig = d.objects, d["width"], d["dsig"]
    yield _identity(dsig.subs(z, -z), dsig, "sigma'(-z) = sigma'(z)")
    yield _identity(sp.diff(dsig, z), -dsig * sp.tanh(z / 2),
                            "sigma''(z) = -sigma'(z) tanh(z/2) < 0 for z > 0: {z : |w| sigma'(z) >= 1} is an interval "
                            "[-z_+, z_+], empty when |w| sigma'(0) = |w|/4 < 1")
    yield _identity(sy["s_lo"] + sy["s_hi"], 1, "s_- + s_+ = 1, so z_- = -z_+")
    yield evidence.fact(_same_log(sy["derived_width"], width),
                        "the derived width (z_+ - z_-)/|w| equals (2/|w|) ln(|w|(1 + sqrt(1 - 4/|w|))/2 - 1)",
                        "sympy: equal coefficients, and equal arguments of the logarithm (log is injective)")
    # the maximum: W(q) = 2 q sigma'(q) along q = z_+ > 0
    # q = z_+ parametrises the window: at |w| = 1/sigma'(q) the right end of the z-interval is q
    # (with e^q = 1 + r, r > 0, SymPy can take the square root of (e^q - 1)^2)
    r = sp.Symbol("r", positive=True)
    at_q = sp.simplify(sp.exp(sy["z_hi"]).subs(_U, 1 / dsig.subs(z, _q)))
    ok_param = _same(sp.simplify(at_q.subs(sp.exp(_q), 1 + r)), 1 + r)
    yield _identity(d["dW"], 2 * dsig.subs(z, _q) * (1 - _q * sp.tanh(_q / 2)), "dW/dq = 2 sigma'(q)(1 - q tanh(q/2))")
    h = _q * sp.tanh(_q / 2)
    dh, dh_pos = sp.diff(h, _q), sp.tanh(_q / 2) + _q / (2 * sp.cosh(_q / 2) ** 2)  # 1 - tanh^2 = 1/cosh^2
    mono = _same(dh, dh_pos) and bool(dh_pos.is_positive) and sp.limit(h, _q, sp.oo) is sp.oo and h.subs(_q, 0) == 0
    yield evidence.fact(mono and ok_param,
                        "q tanh(q/2) increases strictly from 0 to infinity on q > 0 and |w| = 1/sigma'(q) maps q >= 0 "
                        "onto |w| >= 4: W has exactly one critical point, its maximum",
                        "sympy: sign of the derivative, limits")
    with mpmath.workdps(50):
        fh = sp.lambdify(_q, h - 1, "mpmath")
        q_star = mpmath.findroot(fh, 1.5)
        u_star = 1 / sp.lambdify(_q, dsig.subs(z, _q), "mpmath")(q_star)
        w_star = sp.lambdify(_U, width, "mpmath")(u_star)
    u_star, w_star = float(u_star), float(w_star)
    ok = abs(w_star - 0.4477) < 5e-5 and abs(u_star - 6.894) < 5e-4
    yield evidence.fact(ok, f"the width is largest, {w_star:.6f}, at |w| = {u_star:.6f} "
                            f"(q* = {float(q_star):.6f} solves q tanh(q/2) = 1; mpmath, 50 digits)",
                        "mpmath.findroot of the critical-point equation", w_max=w_star, w_argmax=u_star,
                        opens_at_abs_w=float(1 / dsig.subs(z, 0)))
    # numerically: bisection on the JAX function, every batch padded to one shape (one compile)
    width_fn, peak_fn = _window_numeric()
    f_width = sp.lambdify(_U, width, "numpy")
    rng = np.random.default_rng(s.seed)
    n = s.max_examples
    size = max(2048, n + 7)

    def widths(ws, bs):
        k = len(ws)
        ws, bs = np.resize(ws, size), np.resize(bs, size)  # pad by repetition to the one shape
        return np.asarray(width_fn(jnp.asarray(ws), jnp.asarray(bs)))[:k]

    with gradcheck.float64():
        ws = np.concatenate([[4.000001, 4.5, 5.0, u_star, 10.0, 100.0, 1e3],
                             4 + rng.exponential(10.0, n)]) * rng.choice([-1.0, 1.0], n + 7)
        bs = rng.normal(0, 5, n + 7)
        num = widths(ws, bs)
        want = f_width(np.abs(ws))
        err = float(np.max(np.abs(num - want)))
        grid = np.linspace(4.0, 20.0, size)
        coarse = widths(grid, np.zeros(size))
        i = int(np.argmax(coarse))
        fine = np.linspace(grid[max(i - 1, 0)], grid[min(i + 1, size - 1)], size)
        vals = widths(fine, np.zeros(size))
        num_wmax, num_umax = float(vals.max()), float(fine[int(np.argmax(vals))])
        small = rng.uniform(-4, 4, n)
        peaks = np.asarray(peak_fn(jnp.asarray(small), jnp.asarray(rng.normal(0, 5, n))))
        # the width against |w| for the report's figure (b = 0; 0 where the factor never reaches 1)
        curve_w = np.linspace(0.5, 40.0, size)
        opens = np.asarray(peak_fn(jnp.asarray(curve_w), jnp.zeros(size))) >= 0
        curve = np.where(opens, widths(curve_w, np.zeros(size)), 0.0)
    ok = err < 1e-9 and abs(num_wmax - w_star) < 1e-9 and abs(num_umax - u_star) < 1e-3 and bool(np.all(peaks < 0))
    yield evidence.fact(ok,
                        f"bisection on |w sigma'(w a + b)| - 1 (jax.grad, float64) gives the formula's width for "
                        f"{n + 7} (w, b) (max error {err:.2g}); the numerical maximum {num_wmax:.6f} at |w| = "
                        f"{num_umax:.4f}; no window for |w| < 4",
                        "bisection on the JAX function", verdict="verified", examples=n + 7,
                        seed=s.seed, max_width_error=err, numeric_max=num_wmax, numeric_argmax=num_umax,
                        dtype="float64", curves={"abs_w": curve_w, "width": curve})

    def violates(t):
        w, a, b = t
        return abs(w * float(jax.nn.sigmoid(w * a + b) * (1 - jax.nn.sigmoid(w * a + b)))) >= 1

    with gradcheck.float64():
        yield evidence.attack(violates, st.tuples(st.floats(-4, 4, exclude_min=True, exclude_max=True),
                                                  st.floats(-100, 100), st.floats(-100, 100)),
                              "no a with |w sigma'(w a + b)| >= 1 when |w| < 4", s)


# =====================================================================================
# chain.unstable
# =====================================================================================
UNSTABLE_DEPTH = 4
UNSTABLE_NETS = 10_000


@claim(
    seeds=("000",), expected=("measured",),
    title=r"With $N(0, 1)$ weights the layers learn at speeds orders of magnitude apart",
    statement=r"'all layers learn at the same speed only if the products balance': for random one-neuron chains with "
              r"$N(0, 1)$ weights and biases, $|\partial C/\partial b_{j}|$ differs between layers by orders of "
              r"magnitude, and balanced nets are rare",
)
def unstable(L: int = UNSTABLE_DEPTH) -> Derivation:
    g = nw.chain_backward(L)
    s = g.s
    ratio = sp.cancel(g.grad_b(1) / g.grad_b(L))
    return Derivation(
        statement=sp.Eq(dC(s.b[0]) / dC(s.b[L - 1]),
                        sp.Mul(dsigma(s.z[0]), *g.link[1:]) / dsigma(s.z[L - 1])),
        steps=[Step(dC(s.b[0]) / dC(s.b[L - 1]), ratio,
                    "sympy.cancel of the products of chain.grad_bj: the speeds of layers 1 and L differ by this factor")],
        objects={"L": L, "ratio": ratio, "gradient": g},
    )


def measure_unstable(L: int, n: int, seed: int) -> dict:
    """Spread of log10 |dC/db_j| over the layers of ``n`` random chains (w, b ~ N(0, 1))."""
    with gradcheck.float64():
        params = nw.random_chain(seed, L, n)
        lg, _ = jax.jit(jax.vmap(nw.chain_log_closed))(*params)
        lg10 = np.asarray(lg) / math.log(10)
    spread = lg10.max(axis=1) - lg10.min(axis=1)
    per_layer = lg10.mean(axis=0)
    slope = float(np.polyfit(np.arange(1, L + 1), per_layer, 1)[0])
    return {
        "depth": L,
        "nets": n,
        "median_spread_decades": round(float(np.median(spread)), 3),
        "p10_spread_decades": round(float(np.percentile(spread, 10)), 3),
        "p90_spread_decades": round(float(np.percentile(spread, 90)), 3),
        "balanced_fraction": float(np.mean(spread < 1.0)),  # all layers within a factor 10
        "decades_per_layer": round(slope, 3),  # mean log10|dC/db_j| gained per layer towards the output
        "mean_log10_grad_by_layer": [round(float(v), 3) for v in per_layer],
    }


@unstable.verifier
def _(d: Derivation, s):
    g = d["gradient"]
    L = d["L"]
    # supporting (the claim's verdict is the measurement): what the measured spread is made of
    yield evidence.fact(_same(d["ratio"], sp.Mul(*g.link[1:]) * dsigma(g.s.z[0]) / dsigma(g.s.z[L - 1])),
                        "dC/db_1 / dC/db_L is the product of the factors of the layers in between",
                        "sympy.cancel of the products of chain.grad_bj", verdict=None)
    n = UNSTABLE_NETS if s.profile == "default" else 10 * UNSTABLE_NETS
    fig = measure_unstable(L, n, s.seed)
    ok = fig["median_spread_decades"] >= 2.0 and fig["balanced_fraction"] < 0.01
    yield evidence.measured(
        f"with N(0,1) weights and biases the per-layer gradients |dC/db_j| of a depth-{L} chain spread over "
        f"{fig['median_spread_decades']} decades (median of {n} nets); all layers within a factor 10 in "
        f"{fig['balanced_fraction']:.2%} of them; about {fig['decades_per_layer']:.2f} decade lost per layer "
        "towards the input",
        fig, ok, "log-space product (chain.grad_bj) over random nets, jitted and vmapped", seed=s.seed, nets=n,
    )
