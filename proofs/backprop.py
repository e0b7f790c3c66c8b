"""The backpropagation update of seed 002: delta w = -alpha dLoss/dw, through a 4-layer chain.

The note's network is ``f_{i+1} = f(f_i w_{i+1} + b_{i+1})``: the one-neuron chain of
:mod:`gradcheck.models` with the activation f.  Its update for the second layer is
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
from gradcheck import models as nw
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.models import dC
from gradcheck.symbolic import concrete
from proofs import claim

f = sp.Function("f", real=True)
f1, w2, b2 = sp.symbols("f_1 w_2 b_2", real=True)
wv, alpha = sp.symbols("w alpha", real=True)
Loss = sp.Function("Loss")

L = 4  # the note's network
#: alpha of the first-order check.  The rate is measured by a central difference, whose error is
#: O(alpha^2) (measured: below 3e-7 at 1e-3 over 6000 random chains); a smaller alpha loses to
#: the rounding of the loss, which for small gradients reaches 1e-4 relative at alpha = 1e-6.
STEP = 1e-3


@claim(
    seeds=("002",),
    expected=("proved", "verified"),
    title=r"The backpropagation update and the factor $f'(f_{1} w_{2}) f_{1}$",
    statement=r"$\Delta w = -\alpha \, \partial \mathrm{Loss}/\partial w$ (a descent step to first order), and in "
    r"$f_{i+1} = f(f_{i} w_{i+1} + b_{i+1})$, $\partial f_{2}/\partial w_{2} = f'(f_{1} w_{2}) f_{1}$, the "
    r"layer's input times the activation's derivative; $\partial \mathrm{Loss}/\partial w_{2}$ is the "
    r"product $\frac{\partial \mathrm{Loss}}{\partial f_{4}} \frac{\partial f_{4}}{\partial f_{3}} "
    r"\frac{\partial f_{3}}{\partial f_{2}} \frac{\partial f_{2}}{\partial w_{2}}$",
)
def update() -> Derivation:
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
            Step(
                sp.Derivative(sp.Symbol("f_2"), w2), layer, "sympy.diff of f(f_1 w_2): f'(f_1 w_2) times the input f_1"
            ),
            Step(
                sp.Symbol("Loss(w + \\Delta w)"),
                first_order,
                "sympy.series in alpha: to first order the loss falls by alpha (dLoss/dw)^2",
            ),
            *g.steps(2)[:-2],
            Step(
                dC(s.w[1]),
                sp.Mul(*g.factors_w(2)[:-1], dC(s.a[-1])),
                "dLoss/df_4 df_4/df_3 df_3/df_2 df_2/dw_2, one factor per layer",
            ),
        ],
        objects={
            "layer": layer,
            "layer_tb": layer_tb,
            "dw2": dw2,
            "expanded": expanded,
            "gradient": g,
            "first_order": first_order,
            "D": D,
            "nested": g.nested(dw2, net),
        },
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


@update.verifier
def _(d: Derivation, s):
    yield evidence.fact(
        d["layer"] == d["layer_tb"],
        "df_2/dw_2 = f'(f_1 w_2) f_1: the activation's derivative times the layer's input",
        "sympy.diff (generic f)",
    )
    D = d["D"]
    fo = d["first_order"]
    yield evidence.fact(
        sp.expand(fo - (Loss(wv) - alpha * D**2)) == 0,
        "with delta w = -alpha dLoss/dw, Loss(w + delta w) = Loss(w) - alpha (dLoss/dw)^2 + O(alpha^2): "
        "the update descends",
        "sympy.series (generic Loss)",
    )
    yield evidence.fact(
        d["nested"] == d["expanded"],
        "dLoss/dw_2 of the note's 4-layer network is the product dLoss/df_4 df_4/df_3 df_3/df_2 "
        "df_2/dw_2 (equal to sympy.diff of the nested network)",
        "sympy.diff of the nested network",
    )
    n = s.max_examples
    with gradcheck.float64():
        a0, w, b, y = nw.random_chain(s.seed, L, n)
        auto, closed, coef_err, lowered = (np.asarray(v) for v in _programs()(a0, w, b, y))
    err = float(np.max(np.abs(auto - closed) / np.abs(closed)))
    # the SymPy product itself (sigmoid made concrete), at the first draws
    sy = d["gradient"].s
    f_ref = sp.lambdify(
        sy.params, concrete(d["nested"], f=sp.Lambda(sp.Symbol("u"), 1 / (1 + sp.exp(-sp.Symbol("u"))))), "mpmath"
    )
    k = min(n, 16)
    err_sym = max(abs(float(f_ref(a0[i], *w[i], *b[i], y[i])) - auto[i, 1]) / abs(auto[i, 1]) for i in range(k))
    descent = float(np.max(coef_err))
    ok = err < 1e-12 and err_sym < 1e-12 and descent < 1e-5 and bool(np.all(lowered))
    yield evidence.fact(
        ok,
        f"on {n} random 4-layer sigmoid chains jax.grad's dLoss/dw equals the product of per-layer "
        f"factors (max relative error {err:.2g}; the SymPy product in mpmath at {k} of them: "
        f"{err_sym:.2g}); one step delta w = -alpha grad (alpha = {STEP:g}) lowers the loss on every "
        f"chain, at the rate |grad|^2 (central difference, max relative error {descent:.2g})",
        "jax.grad, jitted and vmapped (float64)",
        verdict="verified",
        examples=n,
        seed=s.seed,
        dtype="float64",
        max_relative_error=err,
        max_relative_error_symbolic=err_sym,
        first_order_error=descent,
        alpha=STEP,
    )


# =====================================================================================
# backprop.layer_speeds
# =====================================================================================
#: What the catalogue records for seed 002's training statement, measured in the setting of
#: gradcheck.experiments.TRAINING: each part, True where the note's statement holds.
#: The claim holds when the measurement reproduces exactly this (and the network learns).
LAYER_SPEEDS_EXPECTED = {
    "output_layers_faster_before_learning": True,
    "output_layers_faster_after_learning": False,
    "first_layer_moves_less_than_last": True,
    "first_layer_near_initial": False,
}
#: "close to its initial value": moved by less than half its initial Frobenius norm.
NEAR_INITIAL = 0.5
#: The network must learn for the question to mean anything (chance is 0.1).
MIN_HELDOUT_ACCURACY = 0.8


def _norm_symbol(tex: str) -> sp.Symbol:
    return sp.Symbol(tex, positive=True)


@claim(
    seeds=("002",),
    expected=("measured",),
    title=r"During training the layers near the output learn faster than those near the input",
    statement=r"During training the speed of learning $\|\partial C/\partial b^{l}\|$ is small in the layers near the "
    r"input and large near the output; after long training the first layer's weights $W^{1}$ can still be "
    r"close to their random initial values $W^{1}_{0}$. Measured with mini-batch stochastic gradient descent "
    r"on scikit-learn's digits, as Nielsen did on MNIST (chapter 5)",
)
def layer_speeds() -> Derivation:
    from gradcheck.experiments import TRAINING

    H = len(TRAINING["hidden"])
    L = H + 1
    speed = [_norm_symbol(rf"\left\|\frac{{\partial C}}{{\partial b^{{{l}}}}}\right\|") for l in range(1, H + 1)]
    change = {l: _norm_symbol(rf"\frac{{\|W^{{{l}}} - W^{{{l}}}_{{0}}\|_F}}{{\|W^{{{l}}}_{{0}}\|_F}}") for l in (1, L)}
    chain = [sp.Lt(a, b, evaluate=False) for a, b in zip(speed[:-1], speed[1:])]
    return Derivation(
        statement=[
            *chain,
            sp.Lt(change[1], change[L], evaluate=False),
            sp.Lt(change[1], sp.Rational(1, 2), evaluate=False),
        ],
        objects={"speed": speed, "change": change, "H": H, "L": L},
    )


def _part(holds: bool) -> str:
    return "holds" if holds else "does not hold"


@layer_speeds.verifier
def _(d: Derivation, s):
    from gradcheck.experiments import TRAINING, train

    tr = train(**TRAINING)
    f, g = tr["final"], tr["gap_last_over_first"]
    k = tr["first_epoch_median_train_accuracy_above_half"]
    acc = f["heldout_accuracy_median"]
    ch = f["weight_change"]["median"]
    ratio = f["weight_change_first_over_last"]["median"]
    before, after = g["plateau_geomean"], g["after_learning_geomean"]
    parts = {
        "output_layers_faster_before_learning": before is not None and before > 1,
        "output_layers_faster_after_learning": after is not None and after > 1,
        "first_layer_moves_less_than_last": ratio < 1,
        "first_layer_near_initial": ch[0] < NEAR_INITIAL,
    }
    held = sum(parts.values())
    truth = "true" if held == len(parts) else "false" if held == 0 else "only partly true"
    learns = acc >= MIN_HELDOUT_ACCURACY and k is not None
    ok = learns and parts == LAYER_SPEEDS_EXPECTED
    figure = {
        "heldout_accuracy_median": round(acc, 4),
        "epoch_train_accuracy_half": k,
        "speed_last_over_first_before_learning": before,
        "speed_last_over_first_after_learning": after,
        "speed_last_over_first_at_init": g["at_init"]["median"],
        "weight_change_median": [round(v, 4) for v in ch],
        "first_over_last_change": ratio,
        "parts": parts,
        "statement": truth,
    }
    H, L = d["H"], d["L"]
    yield evidence.measured(
        f"The note's training statement is {truth} for a 64-30-30-30-30-10 sigmoid network trained by "
        f"{tr['method']} on 1000 digits (median of {tr['seeds']} seeds; held-out accuracy {acc:.3f}). "
        f"Layers near the output learn faster before the network learns ({_part(parts['output_layers_faster_before_learning'])}): "
        f"$\\|\\partial C/\\partial b^{{{H}}}\\| / \\|\\partial C/\\partial b^{{1}}\\| = {before:.1f}$ over epochs 1 to {(k or tr['epochs']) - 1} "
        f"(geometric mean; {g['at_init']['median']:.0f} at initialisation); "
        f"and after it learns ({_part(parts['output_layers_faster_after_learning'])}): the ratio is {after:.2f} from epoch {k} on. "
        f"The first layer's weights move less than the last's ({_part(parts['first_layer_moves_less_than_last'])}): "
        f"$\\|W^{{l}} - W^{{l}}_{{0}}\\|_F / \\|W^{{l}}_{{0}}\\|_F = {ch[0]:.2f}$ for $l = 1$ and {ch[-1]:.2f} for $l = {L}$ "
        f"(ratio {ratio:.2f}); but they do not stay close to their initial values "
        f"(below {NEAR_INITIAL:g}: {_part(parts['first_layer_near_initial'])})",
        figure,
        ok,
        "mini-batch SGD in JAX (float64), jitted and vmapped over seeds",
        curves=tr,
        seed=0,
        examples=tr["seeds"],
        dtype="float64",
        setting={k_: v for k_, v in tr.items() if k_ in ("network", "method", "seeds", "epochs", "lr", "batch")},
    )
