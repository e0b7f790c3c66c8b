"""``slowdown``: the single sigmoid neuron of Nielsen's chapter 3 (seed 003's "strange rmse").

One input x = 1, target y = 0, output ``a = sigma(w x + b)``; gradient descent with learning
rate 0.15 for 300 epochs from w = 0.6, b = 0.9 (output 0.82) and from w = b = 2 (output 0.98),
under the quadratic cost ``(a - y)^2 / 2`` and the cross-entropy
``-[y ln a + (1 - y) ln(1 - a)]``.  The quadratic cost's gradient carries a factor
``sigma'(z)``, tiny when the neuron is saturated, so the worse start learns *slower*; the
cross-entropy's gradient is ``x (a - y)``, with no such factor.

The sweep (``seeds`` random starts, w and b uniform on [0, 3]) measures how many epochs each
start needs before the output first falls below 1/2, and sets it beside the time the gradient
flow ``dz/dt = -2 eta dC/dz`` takes (z = w + b moves twice as fast as w or b when x = 1),
integrated by SymPy from the derivative of each cost: ``e^{z0} + 3 z0 + 5/2 - ...`` for the
quadratic cost, ``z0 + 1 - e^{-z0}`` for cross-entropy (both over 2 eta).  So the quadratic
cost's learning time grows like ``a0 / (1 - a0)``, the cross-entropy's like ``ln(a0/(1 - a0))``.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._environment import environment
from .._x64 import float64
from ..symbolic import logistic
from ._common import (
    Result,
    block_size,
    check_count,
    figure,
    finish,
    prepare_out,
    progress,
    quantiles,
    seed_key,
    sweep,
    sweep_record,
)

#: Nielsen's two starting points (w, b), learning rate and number of epochs.
STARTS = ((0.6, 0.9), (2.0, 2.0))
LR = 0.15
EPOCHS = 300
X_IN, Y_TARGET = 1.0, 0.0
#: The sweep's starts: w, b uniform on [0, START_HI]; the output starts between 1/2 and 0.9975.
START_HI = 3.0
#: The sweep runs this many epochs at most (the slowest start, z0 = 6, needs about 1410).
HORIZON = 3000

DEFAULTS = {"seeds": 200}
_BLOCK = 100

COSTS = ("quadratic", "cross-entropy")


def _cost(name: str, a, y):
    if name == "quadratic":
        return (a - y) ** 2 / 2
    return -(y * jnp.log(a) + (1 - y) * jnp.log1p(-a))


def _sym_cost(name: str, a, y):
    if name == "quadratic":
        return (a - y) ** 2 / 2
    return -(y * sp.log(a) + (1 - y) * sp.log(1 - a))


def _neuron_cost(name):
    def c(w, b):
        return _cost(name, jax.nn.sigmoid(w * X_IN + b), Y_TARGET)

    return c


@functools.cache
def _curves(name: str):
    """jitted (w0, b0) -> (outputs (EPOCHS+1,), costs (EPOCHS+1,), dC/dw at the start)."""
    c = _neuron_cost(name)
    g = jax.grad(c, argnums=(0, 1))

    def run(w, b):
        def step(p, _):
            w, b = p
            gw, gb = g(w, b)
            return (w - LR * gw, b - LR * gb), (jax.nn.sigmoid(w * X_IN + b), c(w, b))

        (w, b), (a, cost) = jax.lax.scan(step, (w, b), None, length=EPOCHS)
        a = jnp.append(a, jax.nn.sigmoid(w * X_IN + b))
        cost = jnp.append(cost, c(w, b))
        return a, cost

    def both(w0, b0):
        a, cost = run(w0, b0)
        return a, cost, g(w0, b0)[0]

    return jax.jit(both)


@functools.cache
def _time_to_half(name: str):
    """vmapped seed -> (w0, b0, epochs until the output first falls below 1/2, or -1)."""
    c = _neuron_cost(name)
    g = jax.grad(c, argnums=(0, 1))

    def one(seed):
        w0, b0 = jax.random.uniform(seed_key(seed), (2,), maxval=START_HI)

        def step(carry, t):
            w, b, first = carry
            below = (jax.nn.sigmoid(w * X_IN + b) < 0.5) & (first < 0)
            first = jnp.where(below, t, first)
            gw, gb = g(w, b)
            return (w - LR * gw, b - LR * gb, first), None

        (_, _, first), _ = jax.lax.scan(step, (w0, b0, jnp.asarray(-1)), jnp.arange(HORIZON + 1))
        return w0, b0, first

    return jax.vmap(one)


@functools.cache
def flow_time(name: str):
    """SymPy: epochs the gradient flow needs from z0 down to z = 0 (output 1/2), and how.

    ``C(w, b)`` is built from the cost and the neuron, differentiated by SymPy; with x = 1,
    ``dz/dt = dw/dt + db/dt = -eta (dC/dw + dC/db)``; the time is ``int_0^z0 dz / |dz/dt|``.
    Returns (expression in z0, a float function of z0 arrays, the rate dz/dt as an expression).
    """
    w, b, z, z0 = sp.symbols("w b z z0", positive=True)
    eta = sp.Rational(LR).limit_denominator(1000)
    C = _sym_cost(name, logistic(w * sp.Integer(int(X_IN)) + b), sp.Integer(int(Y_TARGET)))
    rate = -eta * (sp.diff(C, w) + sp.diff(C, b))
    rate = sp.simplify(rate.subs(b, z - w))  # depends on w + b only
    T = sp.simplify(sp.integrate(sp.simplify(-1 / rate), (z, 0, z0)))
    return T, sp.lambdify(z0, T, "numpy"), rate


def slowdown(seeds: int = DEFAULTS["seeds"], out: str | Path | None = None, *, console=None) -> Result:
    """Nielsen's learning slowdown, and a sweep of ``seeds`` random starts against the flow.

    Writes ``slowdown.png`` and ``slowdown.json`` into ``out`` when given.
    """
    seeds = check_count(seeds, "seeds")
    out = prepare_out(out)
    t0 = time.perf_counter()
    curves: dict[str, dict[str, dict[str, Any]]] = {}  # cost -> start -> its curve
    sweep_out: dict[str, dict[str, Any]] = {}
    info = None
    block = block_size(seeds, _BLOCK)
    with float64(), progress(console) as bar:
        task = bar.add_task("slowdown: starts", total=len(COSTS) * (len(STARTS) + seeds))
        for name in COSTS:
            for w0, b0 in STARTS:
                a, cost, g0 = _curves(name)(jnp.float64(w0), jnp.float64(b0))
                a, cost = np.asarray(a), np.asarray(cost)
                below = np.nonzero(a < 0.5)[0]
                above = np.nonzero(a <= 0.9)[0]
                curves.setdefault(name, {})[f"w={w0:g},b={b0:g}"] = {
                    "w0": w0,
                    "b0": b0,
                    "output": a.tolist(),
                    "cost": cost.tolist(),
                    "initial_output": float(a[0]),
                    "initial_dC_dw": float(g0),
                    "first_epoch_below_half": int(below[0]) if below.size else None,
                    "epochs_above_0.9": int(above[0]) if above.size else EPOCHS + 1,
                }
                bar.advance(task)
            rows = np.arange(seeds, dtype=np.int32)
            (w0s, b0s, first), info = sweep(_time_to_half(name), [rows], block=block, bar=bar, task=task)
            z0 = w0s * X_IN + b0s
            T_expr, T, _ = flow_time(name)
            pred = T(z0)
            ok = first >= 0
            rel = np.abs(first[ok] - pred[ok]) / pred[ok]
            sweep_out[name] = {
                "w0": w0s.tolist(),
                "b0": b0s.tolist(),
                "initial_output": _sig(z0).tolist(),
                "epochs_to_half": [int(f) if f >= 0 else None for f in first],
                "flow_prediction": pred.tolist(),
                "flow_time_formula": sp.sstr(T_expr),
                "reached_within_horizon": float(np.mean(ok)),
                "relative_difference_to_flow": quantiles(rel) if rel.size else None,
                "max_relative_difference_to_flow": float(rel.max()) if rel.size else None,
                "max_epochs_difference_to_flow": float(np.max(np.abs(first[ok] - pred[ok]))) if rel.size else None,
            }

    result = Result(
        "slowdown",
        {
            "experiment": "slowdown",
            "what": "one sigmoid neuron, x = 1, y = 0, gradient descent on w and b",
            "environment": environment(),
            "dtype": "float64",
            "settings": {
                "starts": [list(s) for s in STARTS],
                "lr": LR,
                "epochs": EPOCHS,
                "seeds": seeds,
                "sweep_starts": f"w, b ~ U(0, {START_HI:g})",
                "horizon": HORIZON,
            },
            "sweep": sweep_record(info, block),
            "curves": curves,
            "random_starts": sweep_out,
        },
    )
    result.tables = [_table(curves)]
    result.findings = _findings(curves, sweep_out)
    result.figure = _plot(curves, sweep_out)
    return finish(result, out, t0)


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _table(curves):
    from rich.table import Table

    t = Table(title=f"One sigmoid neuron, x = 1, y = 0, lr {LR:g}: output a after each epoch")
    t.add_column("cost")
    t.add_column("start")
    t.add_column("dC/dw at 0", justify="right")
    for e in (0, 50, 100, 150, 200, 250, 300):
        t.add_column(f"a @ {e}", justify="right")
    t.add_column("a < 1/2 from", justify="right")
    for name in COSTS:
        last = list(curves[name])[-1]
        for key, r in curves[name].items():
            k = r["first_epoch_below_half"]
            t.add_row(
                name,
                key,
                f"{r['initial_dC_dw']:.4f}",
                *[f"{r['output'][e]:.3f}" for e in (0, 50, 100, 150, 200, 250, 300)],
                "never" if k is None else f"epoch {k}",
                end_section=key == last,
            )
    return t


def _findings(curves, sw) -> list[str]:
    q = curves["quadratic"]
    good, bad = q["w=0.6,b=0.9"], q["w=2,b=2"]
    ce = curves["cross-entropy"]
    out = [
        f"Quadratic cost: from w = b = 2 (output {bad['initial_output']:.3f}) the output stays "
        f"above 0.9 for {bad['epochs_above_0.9']} epochs and first falls below 1/2 at epoch "
        f"{bad['first_epoch_below_half']}; from w = 0.6, b = 0.9 (output "
        f"{good['initial_output']:.3f}) it is below 1/2 at epoch {good['first_epoch_below_half']}. "
        f"The worse start learns slower: its initial dC/dw is {bad['initial_dC_dw']:.4f} against "
        f"{good['initial_dC_dw']:.4f}.",
        f"Cross-entropy: below 1/2 at epoch {ce['w=0.6,b=0.9']['first_epoch_below_half']} and "
        f"{ce['w=2,b=2']['first_epoch_below_half']}; the worse start has the larger initial "
        f"gradient ({ce['w=2,b=2']['initial_dC_dw']:.4f} against "
        f"{ce['w=0.6,b=0.9']['initial_dC_dw']:.4f}).",
    ]
    for name in COSTS:
        s = sw[name]
        if s["max_relative_difference_to_flow"] is not None:
            out.append(
                f"{name}, {len(s['w0'])} random starts: epochs to output < 1/2 match the "
                f"gradient-flow time T(z0) = {s['flow_time_formula']} (SymPy, z0 = w0 + b0): "
                f"median difference {100 * s['relative_difference_to_flow']['median']:.1f}%, "
                f"at most {s['max_epochs_difference_to_flow']:.1f} epochs "
                f"({100 * s['reached_within_horizon']:.0f}% reached within {HORIZON} epochs)."
            )
    return out


def _plot(curves, sw):
    fig = figure(15, 4.2)
    axes = fig.subplots(1, 3)
    styles = {"quadratic": "-", "cross-entropy": "--"}
    colors = {"w=0.6,b=0.9": "tab:blue", "w=2,b=2": "tab:red"}
    for name in COSTS:
        for key, r in curves[name].items():
            e = np.arange(len(r["output"]))
            lab = f"{name}, {key.replace(',', ', ')}"
            axes[0].plot(e, r["output"], styles[name], color=colors[key], label=lab)
            axes[1].plot(e, r["cost"], styles[name], color=colors[key], label=lab)
    axes[0].axhline(0.9, color="0.6", lw=0.8, ls=":")
    axes[0].axhline(0.5, color="0.6", lw=0.8, ls=":")
    axes[0].set_title(f"output a, x = 1, y = 0, lr {LR:g}")
    axes[1].set_title("cost")
    for ax in axes[:2]:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    ax = axes[2]
    for name, color in (("quadratic", "tab:purple"), ("cross-entropy", "tab:green")):
        s = sw[name]
        a0 = np.asarray(s["initial_output"])
        ep = np.array([np.nan if v is None else v for v in s["epochs_to_half"]], dtype=float)
        ax.plot(a0, ep, ".", color=color, ms=4, alpha=0.7, label=f"{name}: measured")
        grid = np.linspace(0.05, 2 * START_HI, 200)
        ax.plot(_sig(grid), flow_time(name)[1](grid), "-", color=color, lw=1, label=f"{name}: gradient flow (SymPy)")
    ax.set_xscale("logit")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.8)
    ax.set_xlabel("initial output a0 (= initial error, y = 0)")
    ax.set_ylabel("epochs until output < 1/2")
    ax.set_title(f"{len(sw['quadratic']['w0'])} random starts, w, b ~ U(0, {START_HI:g})")
    ax.legend(fontsize=7)
    return fig
