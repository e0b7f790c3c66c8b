"""costs.slow_learning: the badly wrong neuron's slow start under the quadratic cost, measured."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import logistic
from proofs import claim

from ._forms import _positive_int, b, cross_entropy, quadratic_cost

# --- costs.slow_learning ------------------------------------------------------------------------
#: Seed 003's two experiments (Nielsen's): one input x = 1, target y = 0, learning rate 0.15.
STARTS = {"0.82": (sp.Rational(3, 5), sp.Rational(9, 10)), "0.98": (sp.Integer(2), sp.Integer(2))}
LEARNING_RATE, EPOCHS = 0.15, 300


@claim(
    seeds=("003",),
    expected=("proved", "measured"),
    title=r"A badly wrong sigmoid neuron learns slowly under the quadratic cost, not under cross-entropy",
    statement=r"for $x = 1$, $y = 0$: the neuron started at output $0.98$ ($w = b = 2$) has a smaller quadratic-cost "
    r"gradient than the one at $0.82$ ($w = 0.6$, $b = 0.9$), and learns slower (learning rate $0.15$, 300 "
    r"epochs); under cross-entropy its gradient is larger and the slow start is gone",
)
def slow_learning() -> Derivation:
    w1 = sp.Symbol("w", real=True)
    pre = w1 * 1 + b  # x = 1
    costs = {"quadratic": quadratic_cost(logistic(pre), 0), "cross-entropy": cross_entropy(logistic(pre), 0)}
    grads, outputs, steps = {}, {}, []
    for start, (w0, b0) in STARTS.items():
        outputs[start] = logistic(w0 + b0)
        steps.append(
            Step(
                sp.Symbol(rf"a_{{\mathrm{{start}}}}(w={w0}, b={b0})"), outputs[start], f"= {float(outputs[start]):.4f}"
            )
        )
    for cname, C in costs.items():
        g = sp.diff(C, w1)  # with x = 1, dC/db is the same expression
        for start, (w0, b0) in STARTS.items():
            val = sp.simplify(g.subs({w1: w0, b: b0}))
            grads[(cname, start)] = val
            steps.append(
                Step(
                    sp.Symbol(rf"\partial C_{{\mathrm{{{cname}}}}}/\partial w\,|_{{a={start}}}"),
                    val,
                    f"= {float(val):.6f}",
                )
            )
    return Derivation(
        statement=[
            sp.StrictGreaterThan(grads[("quadratic", "0.82")], grads[("quadratic", "0.98")], evaluate=False),
            sp.StrictGreaterThan(grads[("cross-entropy", "0.98")], grads[("cross-entropy", "0.82")], evaluate=False),
        ],
        steps=steps,
        objects={"grads": grads, "outputs": outputs, "w": w1, "costs": costs},
    )


def _quad_1(p):
    return 0.5 * jax.nn.sigmoid(p[0] + p[1]) ** 2  # x = 1, y = 0


def _xent_1(p):
    return -jax.nn.log_sigmoid(-(p[0] + p[1]))  # -ln(1 - a), written stably


@functools.partial(jax.jit, static_argnames=("cost", "lr", "epochs"))
def _descend(p0, cost, lr, epochs):
    def step(p, _):
        p = p - lr * jax.grad(cost)(p)
        return p, jax.nn.sigmoid(p[0] + p[1])

    _, a = jax.lax.scan(step, p0, None, length=epochs)
    return jnp.concatenate([jax.nn.sigmoid(p0[0] + p0[1])[None], a])


def train(cost, w0: float, b0: float, lr: float = LEARNING_RATE, epochs: int = EPOCHS):
    """Plain gradient descent on one neuron, jitted as a ``lax.scan``: outputs a_0 .. a_epochs."""
    with gradcheck.float64():
        return np.asarray(_descend(jnp.array([w0, b0], dtype=jnp.float64), cost, float(lr), int(epochs)))


def epochs_below(a: np.ndarray, level: float) -> int:
    """First epoch at which the output is below ``level`` (len(a) if never)."""
    hit = np.nonzero(a < level)[0]
    return int(hit[0]) if hit.size else len(a)


def slow_learning_figures(lr: float = LEARNING_RATE, epochs: int = EPOCHS) -> dict:
    """The four learning curves' figures: epochs to output < 0.5, and the output after the run."""
    if not (isinstance(lr, (int, float)) and 0 < lr < float("inf")):
        raise ValueError(f"lr (the learning rate) must be a positive number, got {lr!r}")
    epochs = _positive_int("epochs", epochs)
    out = {}
    for cname, cost in (("quadratic", _quad_1), ("cross-entropy", _xent_1)):
        for start, (w0, b0) in STARTS.items():
            a = train(cost, float(w0), float(b0), lr, epochs)
            out[(cname, start)] = {
                "epochs_to_0.5": epochs_below(a, 0.5),
                "final": float(a[-1]),
                "after_30": float(a[30]),
            }
    return out


@slow_learning.verifier
def _(d: Derivation, s: gradcheck.Settings):
    g = d["grads"]
    # exact values, compared by SymPy (numbers with a closed form; evalf decides the sign)
    q_ok = bool(g[("quadratic", "0.82")] > g[("quadratic", "0.98")])
    x_ok = bool(g[("cross-entropy", "0.98")] > g[("cross-entropy", "0.82")])
    out_ok = abs(float(d["outputs"]["0.82"]) - 0.82) < 0.005 and abs(float(d["outputs"]["0.98"]) - 0.98) < 0.005
    ratio = float(g[("quadratic", "0.82")] / g[("quadratic", "0.98")])
    yield evidence.fact(
        q_ok and x_ok and out_ok,
        f"quadratic cost: dC/dw = {float(g[('quadratic', '0.82')]):.4f} at output 0.82 and "
        f"{float(g[('quadratic', '0.98')]):.4f} at 0.98 ({ratio:.1f}x smaller); cross-entropy: "
        f"{float(g[('cross-entropy', '0.82')]):.4f} and {float(g[('cross-entropy', '0.98')]):.4f} (larger when more wrong)",
        "sympy: exact gradients at the two starting points",
        gradients={f"{c} {st}": str(v) for (c, st), v in g.items()},
    )
    # JAX's gradients at the start agree with the exact ones
    with gradcheck.float64():
        jg = {
            (c, st): float(jax.grad(f)(jnp.array([float(w0), float(b0)]))[0])
            for c, f in (("quadratic", _quad_1), ("cross-entropy", _xent_1))
            for st, (w0, b0) in STARTS.items()
        }
    err = max(abs(jg[k] - float(v)) / abs(float(v)) for k, v in g.items())
    yield evidence.fact(
        err < 1e-12,
        f"jax.grad at the starting points matches the exact values (max relative error {err:.1e})",
        "jax.grad (float64) against SymPy",
        verdict=None,
    )
    f = slow_learning_figures()
    qd = f[("quadratic", "0.98")]["epochs_to_0.5"] - f[("quadratic", "0.82")]["epochs_to_0.5"]
    xd = f[("cross-entropy", "0.98")]["epochs_to_0.5"] - f[("cross-entropy", "0.82")]["epochs_to_0.5"]
    figure = {
        "epochs to a < 0.5, from 0.82 and from 0.98": {
            c: (f[(c, "0.82")]["epochs_to_0.5"], f[(c, "0.98")]["epochs_to_0.5"])
            for c in ("quadratic", "cross-entropy")
        }
    }
    ok = (
        f[("quadratic", "0.98")]["epochs_to_0.5"] > 3 * f[("quadratic", "0.82")]["epochs_to_0.5"]
        and qd > 10 * max(xd, 1)
        and f[("quadratic", "0.98")]["final"] > f[("quadratic", "0.82")]["final"]
        and f[("cross-entropy", "0.98")]["epochs_to_0.5"] < f[("quadratic", "0.82")]["epochs_to_0.5"]
    )
    yield evidence.measured(
        f"gradient descent (lr {LEARNING_RATE}, {EPOCHS} epochs): under the quadratic cost the 0.98 start needs "
        f"{f[('quadratic', '0.98')]['epochs_to_0.5']} epochs to reach a < 0.5 against "
        f"{f[('quadratic', '0.82')]['epochs_to_0.5']} from 0.82 (a delay of {qd}); under cross-entropy "
        f"{f[('cross-entropy', '0.98')]['epochs_to_0.5']} against {f[('cross-entropy', '0.82')]['epochs_to_0.5']} (delay {xd})",
        figure,
        ok,
        "jitted jax.lax.scan of plain gradient descent (float64)",
        learning_rate=LEARNING_RATE,
        epochs=EPOCHS,
        curves={f"{c} from {st}": v for (c, st), v in f.items()},
    )
