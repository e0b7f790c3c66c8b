"""The one-neuron chain: shared machinery (gradients of random chains in log space), chain.grad_b1, chain.grad_bj."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import gradcheck
from gradcheck import models as nw
from gradcheck.catalogue import Derivation, Finding, Step, evidence
from gradcheck.models import dC, dsigma
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
        for dtype, _params in (("float64", params64), ("float32", params32)):
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
            rec = dict(
                examples=n,
                truth_points=k,
                dtype=dtype,
                seed=settings.seed,
                tolerance=tol,
                max_log_error_closed_vs_truth=err_truth,
                max_log_error_autodiff=err_auto,
                autodiff_underflow_fraction=underflow,
                autodiff_underflow_fraction_b1=b1,
                lost_gradients=int(lost.sum()),
                depth=L,
            )
            what = (
                f"jax.grad of {n} random depth-{L} chains (jitted, vmapped) agrees with the product "
                f"form in log space, and the log-space product with the 50-digit truth ({dtype}); "
                f"jax.grad underflows to 0/subnormal in {underflow:.0%} of the gradients"
            )
            if ok:
                out.append(
                    Finding("verified", True, what, "log-space comparison (jax.grad, closed form, mpmath)", record=rec)
                )
            else:
                out.append(
                    Finding(
                        None,
                        False,
                        f"log-space comparison failed ({dtype}): max error vs truth "
                        f"{err_truth:.3g}, vs autodiff {err_auto:.3g}, tolerance {tol:.3g}, signs "
                        f"{'ok' if sign_ok and auto_sign_ok else 'differ'}, {int(lost.sum())} "
                        "gradient(s) lost to underflow",
                        "log-space comparison",
                        record=rec,
                    )
                )
    return out


def _chain_check(exprs, L: int, settings, dtype="float64"):
    """``gradcheck.check`` of jax.grad's dC/db (the given layers) against SymPy closed forms."""
    layers = [j for j, _ in exprs]
    refs = [nw.chain_reference(e, L) for _, e in exprs]
    cols = jnp.asarray([j - 1 for j in layers])

    def grad_b(a0, w, b, y):
        return (
            nw.chain_autodiff(a0, w, b, y)[1][cols] if len(layers) > 1 else nw.chain_autodiff(a0, w, b, y)[1][cols[0]]
        )

    def reference(a0, w, b, y):
        vals = [r(a0, w, b, y) for r in refs]
        return sp.Matrix(vals) if len(vals) > 1 else vals[0]

    grad_b.__name__ = f"jax_grad_chain_L{L}_db" + "_".join(map(str, layers))
    with gradcheck.float64():
        return gradcheck.check(
            grad_b,
            reference,
            shapes=[(), (L,), (L,), ()],
            domain=(-5.0, 5.0),
            order=1,
            dtype=dtype,
            max_examples=settings.max_examples,
            seed=settings.seed,
        )


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
        concrete(sp.diff(sigma(z), z)),
        logistic(z) * logistic(-z),
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
    seeds=("000",),
    expected=("proved", "verified"),
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
    out.append(
        evidence.fact(
            textbook_ok,
            f"the product of the per-layer factors, unrolled over L = {L} layers, is the textbook "
            f"sigma'(z_j) prod_(k>j) w_k sigma'(z_k) dC/da_L for j in {_span(layers)}",
            "per-layer factor derived once, instantiated per layer; compared with Product(...) expanded",
        )
    )
    if L <= EXPANDED_MAX_L:
        net = nw.nested_chain(L)
        ok = all(_same(g.nested(products[j], net), nw.expanded_grad(net, g.s.b[j - 1])) for j in layers)
        out.append(
            evidence.fact(
                ok,
                f"sympy.diff of the fully nested depth-{L} network equals the product for j in {_span(layers)}",
                "sympy.diff of the nested network; difference is 0",
            )
        )
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
        out.append(
            evidence.from_report(
                report,
                f"jax.grad of the depth-{L} chain agrees with the derived product "
                f"(values and derivatives, gradcheck.check, float64)",
            )
        )
    out += log_space_check(L, layers, d["rule"], s)
    return out


@claim(
    seeds=("000",),
    expected=("proved", "verified"),
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
        steps.append(
            Step(
                dC(s.b[k - 1]),
                sp.Mul(g.head[k - 1], dC(s.a[k])),
                f"layer {k}: sympy.diff of sigma(w_{k} a_{k - 1} + b_{k}) with respect to b_{k}",
            )
        )
        if k > 1:
            steps.append(
                Step(dC(s.a[k - 1]), sp.Mul(g.link[k - 1], dC(s.a[k])), f"layer {k}: with respect to a_{k - 1}")
            )
    j = sp.Symbol("j", integer=True, positive=True)
    expr, (jj, LL, _), _, _ = nw.textbook_product()
    return Derivation(
        statement=sp.Eq(sp.Symbol(r"\frac{\partial C}{\partial b_j}"), expr.subs({jj: j, LL: L})),
        steps=steps,
        objects={
            "L": g.L,
            "gradient": g,
            "rule": g.rule,
            "layers": tuple(range(1, L + 1)),
            "products": {k: g.grad_b(k) for k in range(1, L + 1)},
        },
    )
