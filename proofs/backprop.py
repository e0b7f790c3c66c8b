"""The backpropagation update of seed 002: delta w = -alpha dLoss/dw, through a 4-layer chain.

The note's network is ``f_{i+1} = f(f_i w_{i+1} + b_{i+1})``: the one-neuron chain of
:mod:`gradcheck.networks` with the activation f.  Its update for the second layer is
``dLoss/dw_2 = dLoss/df_4 df_4/df_3 df_3/df_2 df_2/dw_2`` with ``df_2/dw_2 = f'(f_1 w_2) f_1``:
the derivative of the activation times the layer's input.

Claim: backprop.update.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import gradcheck
from gradcheck import Claim, Derivation, Finding, Step, evidence, register
from gradcheck import networks as nw
from gradcheck.networks import dC
from gradcheck.symbolic import concrete

f = sp.Function("f", real=True)
f1, w2, b2 = sp.symbols("f_1 w_2 b_2", real=True)
wv, alpha = sp.symbols("w alpha", real=True)
Loss = sp.Function("Loss")

L = 4  # the note's network
#: alpha of the first-order check.  The rate is measured by a central difference, whose error is
#: O(alpha^2) (measured: below 3e-7 at 1e-3 over 6000 random chains); a smaller alpha loses to
#: the rounding of the loss, which for small gradients reaches 1e-4 relative at alpha = 1e-6.
STEP = 1e-3


def _derive_update() -> Derivation:
    xi = sp.Dummy("xi", real=True)
    layer = sp.diff(f(f1 * w2), w2)
    layer_tb = sp.Subs(sp.Derivative(f(xi), xi), xi, f1 * w2) * f1
    g = nw.chain_backward(L, activation=f)  # the 4-layer chain with activation f
    dw2 = g.grad_w(2)
    net = nw.nested_chain(L, activation=f)
    expanded = nw.expanded_grad(net, g.s.w[1])
    D = sp.diff(Loss(wv), wv)
    step = -alpha * D
    first_order = sp.series(Loss(wv + step), alpha, 0, 2).removeO().doit()
    s = g.s
    return Derivation(
        statement=[
            sp.Eq(sp.Symbol(r"\Delta w"), -alpha * sp.Derivative(Loss(wv), wv)),
            sp.Eq(sp.Derivative(sp.Symbol("f_2"), w2), layer_tb),
            sp.Eq(dC(s.w[1]), sp.Mul(*g.factors_w(2)[:-1], dC(s.a[-1]))),
        ],
        steps=[
            Step(sp.Derivative(sp.Symbol("f_2"), w2), layer, "sympy.diff of f(f_1 w_2): f'(f_1 w_2) times the input f_1"),
            Step(sp.Symbol("Loss(w + \\Delta w)"), first_order,
                 "sympy.series in alpha: to first order the loss falls by alpha (dLoss/dw)^2"),
            *g.steps(2)[:-2],
            Step(dC(s.w[1]), sp.Mul(*g.factors_w(2)[:-1], dC(s.a[-1])),
                 "dLoss/df_4 df_4/df_3 df_3/df_2 df_2/dw_2, one factor per layer"),
        ],
        objects={"layer": layer, "layer_tb": layer_tb, "dw2": dw2, "expanded": expanded, "gradient": g,
                 "first_order": first_order, "D": D, "nested": g.nested(dw2, net)},
    )


@functools.lru_cache(maxsize=1)
def _programs():
    closed, _ = nw.closed_form_from(nw.layer_rule())

    def one(a0, w, b, y):
        dw, _ = nw.chain_autodiff(a0, w, b, y)
        dw_closed, _ = closed(a0, w, b, y)
        c0 = nw.chain_cost(a0, w, b, y)
        c_minus = nw.chain_cost(a0, w - STEP * dw, b, y)  # one step of delta w = -alpha dLoss/dw
        c_plus = nw.chain_cost(a0, w + STEP * dw, b, y)
        g2 = jnp.sum(dw**2)
        coef_err = jnp.abs((c_plus - c_minus) / (2 * STEP * g2) - 1)  # the alpha^2 term cancels
        lowered = c_minus < c0
        return dw, dw_closed, coef_err, lowered

    return jax.jit(jax.vmap(one))


def _verify_update(d: Derivation, s):
    yield evidence.fact(d["layer"] == d["layer_tb"], "df_2/dw_2 = f'(f_1 w_2) f_1: the activation's derivative times "
                                                     "the layer's input", "sympy.diff (generic f)")
    D = d["D"]
    fo = d["first_order"]
    yield evidence.fact(sp.expand(fo - (Loss(wv) - alpha * D**2)) == 0,
                        "with delta w = -alpha dLoss/dw, Loss(w + delta w) = Loss(w) - alpha (dLoss/dw)^2 + O(alpha^2): "
                        "the update descends", "sympy.series (generic Loss)")
    yield evidence.fact(d["nested"] == d["expanded"],
                        "dLoss/dw_2 of the note's 4-layer network is the product dLoss/df_4 df_4/df_3 df_3/df_2 "
                        "df_2/dw_2 (equal to sympy.diff of the nested network)", "sympy.diff of the nested network")
    n = s.max_examples
    with gradcheck.float64():
        a0, w, b, y = nw.random_chain(s.seed, L, n)
        auto, closed, coef_err, lowered = (np.asarray(v) for v in _programs()(a0, w, b, y))
    err = float(np.max(np.abs(auto - closed) / np.abs(closed)))
    # the SymPy product itself (sigmoid made concrete), at the first draws
    sy = d["gradient"].s
    f_ref = sp.lambdify(sy.params, concrete(d["nested"], f=sp.Lambda(sp.Symbol("u"), 1 / (1 + sp.exp(-sp.Symbol("u"))))), "mpmath")
    k = min(n, 16)
    err_sym = max(abs(float(f_ref(a0[i], *w[i], *b[i], y[i])) - auto[i, 1]) / abs(auto[i, 1]) for i in range(k))
    descent = float(np.max(coef_err))
    ok = err < 1e-12 and err_sym < 1e-12 and descent < 1e-5 and bool(np.all(lowered))
    yield Finding("verified" if ok else None, ok,
                  f"on {n} random 4-layer sigmoid chains jax.grad's dLoss/dw equals the product of per-layer factors "
                  f"(max relative error {err:.2g}; the SymPy product in mpmath at {k} of them: {err_sym:.2g}); one "
                  f"step delta w = -alpha grad (alpha = {STEP:g}) lowers the loss on every chain, at the rate "
                  f"|grad|^2 (central difference, max relative error {descent:.2g})", "jax.grad, jitted and vmapped (float64)",
                  record={"examples": n, "seed": s.seed, "dtype": "float64", "max_relative_error": err,
                          "max_relative_error_symbolic": err_sym, "first_order_error": descent, "alpha": STEP})


update = register(Claim(
    id="backprop.update",
    title="The backpropagation update and the factor f'(f_1 w_2) f_1",
    seeds=("002",),
    expected=("proved", "verified"),
    derive=_derive_update,
    verify=_verify_update,
    statement="delta w = -alpha dLoss/dw (a descent step to first order), and in f_{i+1} = f(f_i w_{i+1} + b_{i+1}), "
              "df_2/dw_2 = f'(f_1 w_2) f_1, the layer's input times the activation's derivative; dLoss/dw_2 is the "
              "product dLoss/df_4 df_4/df_3 df_3/df_2 df_2/dw_2",
))
