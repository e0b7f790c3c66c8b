"""Gradient descent's step size (seed 001): 'a learning rate alpha > 1 stops progress'.

On the quadratic f(w) = lambda w^2 / 2 (the local model of any smooth minimum with curvature
lambda), SymPy derives the update, solves the recurrence and the convergence condition: gradient
descent converges iff 0 < alpha < 2/lambda.  The note's threshold 1 is the right one only when
lambda = 2; Hypothesis finds the counterexamples on both sides.

Claim: gd.step_size.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from hypothesis import strategies as st

import gradcheck
from gradcheck.catalogue import Derivation, Finding, Step, evidence
from proofs import claim

lam = sp.Symbol("lambda", positive=True)
alpha = sp.Symbol("alpha", positive=True)
w = sp.Symbol("w", real=True)
w0 = sp.Symbol("w_0", real=True)
t = sp.Symbol("t", integer=True, nonnegative=True)

#: Steps of the numerical runs.  Away from the threshold by a factor 1e-3 in |1 - alpha lambda|,
#: 100 steps change |w| by a factor below 0.905 or above 1.105: no run is ambiguous.
STEPS = 100
MARGIN = 1e-3


@claim(
    seeds=("001",),
    expected=("proved", "refuted"),
    title=r"Gradient descent converges iff $\alpha < 2/\lambda$, not iff $\alpha < 1$",
    statement=r"'a learning rate $\alpha > 1$ stops progress': for $f(w) = \lambda w^{2}/2$ gradient descent "
    r"converges iff $0 < \alpha < 2/\lambda$; the threshold is $1$ only when $\lambda = 2$, so the "
    r"sentence is false as stated",
)
def step_size() -> Derivation:
    f = lam * w**2 / 2
    grad = sp.diff(f, w)
    update = sp.expand(w - alpha * grad)  # one step of gradient descent
    factor = sp.cancel(update / w)  # w_{t+1} = factor * w_t
    seq = sp.Function("w")
    closed = sp.rsolve(seq(t + 1) - factor * seq(t), seq(t), {seq(0): w0})
    converges = sp.solveset(sp.Abs(factor) < 1, alpha, sp.S.Reals)
    threshold = converges.sup if isinstance(converges, sp.Interval) else None
    lam_for_one = sp.solve(sp.Eq(threshold, 1), lam) if threshold is not None else []
    return Derivation(
        statement=[
            sp.Eq(sp.Symbol(r"\{\alpha : w_t \to 0\}"), converges, evaluate=False),
            sp.Eq(sp.Symbol(r"\lambda \text{ where the threshold is } 1"), sp.FiniteSet(*lam_for_one), evaluate=False),
        ],
        steps=[
            Step(sp.Symbol("f(w)"), f, "the quadratic model of a minimum with curvature lambda"),
            Step(sp.Derivative(sp.Symbol("f"), w), grad, "sympy.diff"),
            Step(sp.Symbol("w_{t+1}"), update, "w - alpha f'(w)"),
            Step(sp.Symbol("w_t"), closed, "sympy.rsolve of the recurrence"),
            Step(sp.Symbol(r"\{\alpha : |1 - \alpha\lambda| < 1\}"), converges, "sympy.solveset"),
            Step(sp.Symbol(r"\lambda"), sp.FiniteSet(*lam_for_one), "2/lambda = 1"),
        ],
        objects={
            "f": f,
            "grad": grad,
            "update": update,
            "factor": factor,
            "closed": closed,
            "converges": converges,
            "threshold": threshold,
            "lam_for_one": lam_for_one,
            "seq": seq,
        },
    )


@functools.lru_cache(maxsize=1)
def _gd_program():
    """|w_T| / |w_0| after T steps of gradient descent on lambda w^2/2, gradient by jax.grad."""

    def run(lam_, alpha_):
        f = lambda v: lam_ * v**2 / 2
        w_T = jax.lax.fori_loop(0, STEPS, lambda _, v: v - alpha_ * jax.grad(f)(v), jnp.asarray(1.0, lam_.dtype))
        return jnp.abs(w_T)

    return jax.jit(jax.vmap(run))


def gd_progress(lams, alphas) -> np.ndarray:
    """True where gradient descent makes progress (|w_T| < |w_0|) after :data:`STEPS` steps."""
    with gradcheck.float64():
        return np.asarray(_gd_program()(jnp.asarray(lams, jnp.float64), jnp.asarray(alphas, jnp.float64))) < 1.0


@step_size.verifier
def _(d: Derivation, s):
    closed, factor = d["closed"], d["factor"]
    ok_closed = sp.expand(closed.subs(t, t + 1) - factor * closed) == 0 and closed.subs(t, 0) == w0
    yield evidence.fact(
        ok_closed and sp.expand(factor - (1 - alpha * lam)) == 0,
        "w_t = (1 - alpha lambda)^t w_0 solves w_{t+1} = w_t - alpha f'(w_t)",
        "sympy.rsolve, checked by substitution",
    )
    thr = d["threshold"]
    ok_set = d["converges"] == sp.Interval.open(0, 2 / lam)
    yield evidence.fact(
        ok_set,
        "gradient descent on lambda w^2/2 converges (for w_0 != 0) iff 0 < alpha < 2/lambda",
        "sympy.solveset of |1 - alpha lambda| < 1 (the iterates are geometric)",
    )
    yield evidence.fact(d["lam_for_one"] == [2], "the threshold 2/lambda equals 1 only at lambda = 2", "sympy.solve")
    # numerically: jax.grad's gradient descent makes progress exactly where alpha < threshold(lambda)
    rng = np.random.default_rng(s.seed)
    n = max(s.max_examples, 200)
    lams = np.exp(rng.uniform(np.log(1e-2), np.log(1e2), n))
    thr_f = sp.lambdify(lam, thr, "numpy") if thr is not None else (lambda v: np.full_like(v, np.nan))
    alphas = thr_f(lams) * np.exp(rng.uniform(np.log(0.05), np.log(3.0), n))
    keep = np.abs(np.abs(1 - alphas * lams) - 1) > MARGIN
    lams, alphas = lams[keep], alphas[keep]
    progress = gd_progress(lams, alphas)
    predicted = alphas < thr_f(lams)
    agree = bool(np.all(progress == predicted))
    yield Finding(
        None,
        agree,
        f"jax.grad gradient descent ({STEPS} steps, float64) makes progress exactly where alpha < "
        f"{sp.sstr(thr)} on {len(lams)} draws of (lambda, alpha)"
        if agree
        else f"the derived threshold {sp.sstr(thr)} disagrees with gradient descent at "
        f"{int(np.sum(progress != predicted))} of {len(lams)} draws",
        "jax.grad inside lax.fori_loop, jitted and vmapped",
        record={"examples": int(len(lams)), "seed": s.seed, "steps": STEPS, "margin": MARGIN},
    )

    def refutes_above(p):  # alpha > 1, yet progress
        lam_, a_ = p["lambda"], p["alpha"]
        return abs(abs(1 - a_ * lam_) - 1) > MARGIN and bool(gd_progress([lam_], [a_])[0])

    def refutes_below(p):  # alpha < 1, yet no progress
        lam_, a_ = p["lambda"], p["alpha"]
        return abs(abs(1 - a_ * lam_) - 1) > MARGIN and not bool(gd_progress([lam_], [a_])[0])

    yield evidence.search_counterexample(
        refutes_above,
        st.fixed_dictionaries({"lambda": st.floats(0.01, 100.0), "alpha": st.floats(1.0, 10.0, exclude_min=True)}),
        "'alpha > 1 stops progress': at this (lambda, alpha) with alpha > 1 gradient descent converges",
        s,
    )
    yield evidence.search_counterexample(
        refutes_below,
        st.fixed_dictionaries({"lambda": st.floats(0.01, 100.0), "alpha": st.floats(0.01, 1.0, exclude_max=True)}),
        "'alpha > 1 stops progress' read the other way: at this (lambda, alpha) with alpha < 1 gradient descent "
        "diverges",
        s,
    )
