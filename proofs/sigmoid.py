"""The logistic sigmoid: its derivative and the bound sigma' <= 1/4 (seeds 000, 001, 002)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import sympy as sp
from hypothesis import strategies as st

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import concrete, logistic, sigma
from proofs import claim

z = sp.Symbol("z", real=True)


# --- sigmoid.derivative -------------------------------------------------------------------
@claim(
    seeds=("001", "002"),
    expected=("proved", "verified"),
    title=r"Derivative of the logistic sigmoid",
    statement=r"$\sigma'(z) = \sigma(z) (1 - \sigma(z))$ for every real $z$",
)
def derivative() -> Derivation:
    generic = sp.diff(sigma(z), z)  # sigma'(z), unevaluated
    derived = concrete(generic)  # SymPy differentiates 1/(1+e^{-z})
    textbook = logistic(z) * (1 - logistic(z))
    return Derivation(
        statement=sp.Eq(generic, sigma(z) * (1 - sigma(z))),
        steps=[
            Step(sigma(z), logistic(z), "definition of the logistic sigmoid"),
            Step(generic, derived, "sympy.diff of the definition"),
            Step(generic, sigma(z) * (1 - sigma(z)), "the difference with sigma (1 - sigma) simplifies to 0"),
        ],
        objects={"derived": derived, "textbook": textbook},
    )


@derivative.verifier
def _(d: Derivation, s: gradcheck.Settings):
    yield evidence.identity(d["derived"], d["textbook"], "sympy.diff(1/(1+exp(-z))) = sigma(z)(1 - sigma(z))")
    for dtype in ("float64", "float32"):
        yield evidence.checked(
            jax.nn.sigmoid,
            lambda x: logistic(x),
            f"jax.nn.sigmoid and its first two derivatives agree with the SymPy form ({dtype})",
            s,
            shapes=[()],
            domain=(-1000.0, 1000.0),
            order=2,
            dtype=dtype,
        )


# --- sigmoid.max_derivative ------------------------------------------------------------------
@claim(
    seeds=("000", "002"),
    expected=("proved",),
    title=r"$\sigma'$ is at most $1/4$",
    statement=r"$\sigma'(z) \leq 1/4$ for every real $z$, with equality only at $z = 0$",
)
def max_derivative() -> Derivation:
    dsig = concrete(sp.diff(sigma(z), z))
    crit = sp.solve(sp.Eq(sp.diff(dsig, z), 0), z)
    second = sp.simplify(sp.diff(dsig, z, 2))
    return Derivation(
        statement=sp.Le(sp.diff(sigma(z), z), sp.Rational(1, 4)),
        steps=[
            Step(sp.diff(sigma(z), z), dsig, "sympy.diff of 1/(1+e^{-z})"),
            Step(sp.Symbol(r"z^{*}"), sp.FiniteSet(*crit), "critical points: solve sigma''(z) = 0"),
            Step(sp.Subs(sp.diff(sigma(z), z), z, 0), dsig.subs(z, 0), "value at the critical point"),
            Step(sp.Symbol(r"\lim_{z\to\pm\infty}\sigma'(z)"), sp.limit(dsig, z, sp.oo), "limits at both ends are 0"),
        ],
        objects={"dsig": dsig, "critical": crit, "second_at_crit": [second.subs(z, c) for c in crit]},
    )


@max_derivative.verifier
def _(d: Derivation, s: gradcheck.Settings):
    dsig, crit = d["dsig"], d["critical"]
    lim_hi, lim_lo = sp.limit(dsig, z, sp.oo), sp.limit(dsig, z, -sp.oo)
    # continuous, one critical point, a maximum there, limits 0 below it: the global maximum
    ok = crit == [0] and all(v.is_negative for v in d["second_at_crit"]) and lim_hi == 0 and lim_lo == 0
    ok = ok and sp.simplify(dsig.subs(z, 0) - sp.Rational(1, 4)) == 0
    yield evidence.fact(
        ok,
        "sigma' has its only critical point at z = 0, a maximum of value 1/4, and tends to 0 at both ends",
        "sympy: solve, second derivative, limits",
        max_value=float(dsig.subs(z, crit[0])) if crit else None,
        argmax=float(crit[0]) if crit else None,
    )
    # equality only at 0: 1/4 - sigma'(z) = (sigma - 1/2)^2 >= 0, with equality iff sigma(z) = 1/2
    gap = sp.Rational(1, 4) - dsig
    yield evidence.identity(
        gap, (logistic(z) - sp.Rational(1, 2)) ** 2, "1/4 - sigma'(z) = (sigma(z) - 1/2)^2, zero only at z = 0"
    )
    with gradcheck.float64():
        dsig_jax = jax.jit(jax.grad(jax.nn.sigmoid))
        yield evidence.attack(
            lambda v: float(dsig_jax(jnp.float64(v))) > 0.25,
            st.floats(-1e3, 1e3, allow_nan=False),
            "sigma'(z) <= 1/4 (jax.grad of jax.nn.sigmoid, float64)",
            s,
        )
