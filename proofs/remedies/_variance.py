"""Remedies: remedies.init_variance (Glorot and He initialisation, measured)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from proofs import claim

from ._clipping import _positive_int

# --- remedies.init_variance ------------------------------------------------------------------------
#: name -> (weight variance as a function of (n_in, n_out), activation)
INIT_SCHEMES = {
    "He, ReLU": (lambda n_in, n_out: 2.0 / n_in, jax.nn.relu),
    "N(0,1)/sqrt(n), ReLU": (lambda n_in, n_out: 1.0 / n_in, jax.nn.relu),
    "Glorot, tanh": (lambda n_in, n_out: 2.0 / (n_in + n_out), jnp.tanh),
}


@functools.partial(jax.jit, static_argnames=("act",))
def _layer_variances(W, X, R, act):
    """Per net and layer: mean of (dL/dh_l)^2 and variance of dL/dW_l, for L = sum(h_depth * r)."""
    depth, batch, width = W.shape[1], X.shape[1], X.shape[2]

    def loss(eps, W, X, R):
        def body(h, we):
            w, e = we
            return act(h @ w.T) + e, None  # e = 0: its gradient is dL/dh_l

        h, _ = jax.lax.scan(body, X, (W, eps))
        return jnp.sum(h * R)

    def one(W, X, R):
        eps = jnp.zeros((depth, batch, width), X.dtype)
        g_h, g_w = jax.grad(loss, argnums=(0, 1))(eps, W, X, R)
        return jnp.mean(g_h**2, axis=(1, 2)), jnp.var(g_w, axis=(1, 2))

    return jax.vmap(one)(W, X, R)


def gradient_variances(var_fn, act, width=64, depth=16, batch=32, nets=8, seed=0) -> dict:
    """Per-layer variance of dL/dh_l (backpropagated gradient) and of dL/dW_l over random nets.

    The net is h_l = act(W_l h_{l-1}), no biases, inputs and the loss's cotangent N(0, 1); the
    loss is L = sum(h_depth * r).  ``ratio`` is the geometric mean over layers of
    Var[dL/dh_{l-1}] / Var[dL/dh_l]: how much one layer of backpropagation scales the variance.
    ``weight_gradient_ratio`` is the same for dL/dW_l, ``first_over_last`` the total change.
    """
    width, batch, nets = (_positive_int(k, v) for k, v in (("width", width), ("batch", batch), ("nets", nets)))
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2 (a ratio needs two layers), got {depth!r}")
    rng = np.random.default_rng([seed, 11])  # NumPy: no sampler to compile
    W = (rng.standard_normal((nets, depth, width, width)) * np.sqrt(var_fn(width, width))).astype(np.float32)
    X = rng.standard_normal((nets, batch, width)).astype(np.float32)
    R = rng.standard_normal((nets, batch, width)).astype(np.float32)
    v_h, v_w = _layer_variances(W, X, R, act=act)
    v_h, v_w = np.asarray(v_h, np.float64).mean(0), np.asarray(v_w, np.float64).mean(0)

    def gmean_ratio(v):
        return float(np.exp(np.mean(np.log(v[:-1] / v[1:]))))

    return {
        "ratio": gmean_ratio(v_h),
        "weight_gradient_ratio": gmean_ratio(v_w),
        "first_over_last": float(v_h[0] / v_h[-1]),
    }


@claim(
    seeds=("002",),
    expected=("measured",),
    title=r"Glorot and He initialisation keep the gradient variance roughly constant with depth",
    statement=r"with $\operatorname{Var}[W] = 2/n_{\mathrm{in}}$ and ReLU (He) the backpropagated gradient's "
    r"variance is kept from layer to layer (ratio about $1$); with $N(0, 1)/\sqrt{n}$ it halves (ratio "
    r"about $1/2$); Glorot's $2/(n_{\mathrm{in}} + n_{\mathrm{out}})$ with $\tanh$ keeps it roughly (ratio "
    r"a little below $1$, because $\tanh' < 1$ away from $0$)",
    params={"width": 64},
)
def init_variance(width=64) -> Derivation:
    width = _positive_int("width", width)
    n_in, n_out = sp.symbols("n_in n_out", positive=True)
    var_w = sp.Symbol(r"\mathrm{Var}[W]", positive=True)
    # one layer of backpropagation through a linear map with iid weights: Var[dh_{l-1}] = n_out Var[W] E[f'^2] Var[dh_l]
    factor = n_out * var_w
    relu_d2 = sp.Rational(1, 2)  # E[relu'(z)^2] for z symmetric about 0
    he = sp.solve(sp.Eq(factor * relu_d2, 1), var_w)[0]
    glorot = 2 / (n_in + n_out)
    return Derivation(
        statement=[sp.Eq(var_w, glorot), sp.Eq(var_w, he.subs(n_out, n_in))],
        steps=[
            Step(
                sp.Symbol(r"\mathrm{Var}[\partial L/\partial h_{l-1}] / \mathrm{Var}[\partial L/\partial h_l]"),
                factor * sp.Symbol(r"E[f'(z)^2]"),
                "one layer of backpropagation, iid weights",
            ),
            Step(
                sp.Symbol(r"\mathrm{Var}[W]_{\mathrm{He}}"),
                he,
                "ratio 1 with ReLU, E[relu'^2] = 1/2 (square layers: 2/n_in)",
            ),
            Step(
                sp.Symbol(r"\mathrm{Var}[W]_{\mathrm{Glorot}}"),
                glorot,
                "the compromise between the forward (1/n_in) and backward (1/n_out) conditions, f' ~ 1",
            ),
            Step(
                sp.Symbol(r"\mathrm{ratio}_{N(0,1)/\sqrt{n},\ \mathrm{ReLU}}"),
                (factor * relu_d2).subs({var_w: 1 / n_out}),
                "plain 1/n weights with ReLU halve the variance at every layer",
            ),
        ],
        objects={"width": width, "he": he, "glorot": glorot},
    )


@init_variance.verifier
def _(d: Derivation, s: gradcheck.Settings):
    width, depth, nets = d["width"], 16, 8
    figures = {
        name: gradient_variances(vf, act, width=width, depth=depth, nets=nets, seed=s.seed)
        for name, (vf, act) in INIT_SCHEMES.items()
    }
    he, plain, glorot = (figures[k]["ratio"] for k in INIT_SCHEMES)
    ok = 0.9 <= he <= 1.1 and 0.45 <= plain <= 0.55 and 0.75 <= glorot <= 1.05
    yield evidence.measured(
        f"layer-to-layer ratio of backpropagated gradient variance, {depth} layers of width {width}, {nets} nets: "
        f"He + ReLU {he:.3f}, N(0,1)/sqrt(n) + ReLU {plain:.3f}, Glorot + tanh {glorot:.3f}",
        {k: round(v["ratio"], 3) for k, v in figures.items()},
        ok,
        "jax.grad through random networks (lax.scan, float32), variances over units, batch and nets",
        width=width,
        depth=depth,
        nets=nets,
        batch=32,
        seed=s.seed,
        details={k: {kk: float(f"{vv:.4g}") for kk, vv in v.items()} for k, v in figures.items()},
    )
