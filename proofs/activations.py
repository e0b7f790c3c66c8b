"""ReLU, LeakyReLU and ELU: derivatives from their Piecewise definitions, and the kink (seed 002).

Seed 002 proposes "relu, leakyrelu, elu" as a remedy for vanishing gradients, because their
derivative is 1 on the positive side instead of at most 1/4 or 1.  Each is defined here as a
SymPy ``Piecewise`` and differentiated by ``sympy.diff``; the derivative is then compared with
the textbook form piece by piece.

At ``z = 0`` none of the three is differentiable (ELU is, for alpha = 1 only): the left and
right derivatives differ, and any value between them is a subgradient.  What a library returns
there is a *convention*, and conventions differ:

* SymPy's ``diff`` of the ``Piecewise`` takes the branch whose condition holds at 0 (here the
  right one, 1); its ``diff(Max(0, z))`` is ``Heaviside(z)`` with ``Heaviside(0) = 1/2``.
* JAX (0.10) returns the left derivative for ``jax.nn.relu`` (0) and ``jax.nn.elu`` (alpha), but
  the right one for ``jax.nn.leaky_relu`` (1).

The claim states the one-sided derivatives, measures JAX's choice and checks that it is one of
them; :func:`gradcheck.check` excuses kink points for the same reason.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import sympy as sp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from proofs import claim

z = sp.Symbol("z", real=True)
h = sp.Symbol("h", positive=True)  # the step of a one-sided difference quotient
p = sp.Symbol("p", positive=True)  # z = p on the right piece, z = -p on the left
alpha = sp.Symbol("alpha", positive=True)


def relu(x):
    """ReLU as a Piecewise: 0 for x < 0, x otherwise."""
    return sp.Piecewise((0, x < 0), (x, True))


def leaky_relu(x, a=alpha):
    """LeakyReLU(alpha): alpha x for x < 0, x otherwise."""
    return sp.Piecewise((a * x, x < 0), (x, True))


def elu(x, a=alpha):
    """ELU(alpha): alpha (e^x - 1) for x < 0, x otherwise."""
    return sp.Piecewise((a * (sp.exp(x) - 1), x < 0), (x, True))


#: name -> (SymPy definition with symbolic alpha, textbook derivative on (left piece, right piece))
TEXTBOOK = {
    "relu": (relu, (sp.S.Zero, sp.S.One)),
    "leaky_relu": (leaky_relu, (alpha, sp.S.One)),
    "elu": (elu, (alpha * sp.exp(-p), sp.S.One)),  # alpha e^z at z = -p
}


def _jax_fns(leaky_alpha: float, elu_alpha: float):
    return {
        "relu": jax.nn.relu,
        "leaky_relu": lambda x: jax.nn.leaky_relu(x, negative_slope=leaky_alpha),
        "elu": lambda x: jax.nn.elu(x, alpha=elu_alpha),
    }


#: LeakyReLU's slope is JAX's default; ELU at alpha = 1/2 (JAX's default is 1, where ELU is
#: differentiable at 0): a real kink to compare.
LEAKY_ALPHA, ELU_ALPHA = sp.Rational(1, 100), sp.Rational(1, 2)


# --- activations.derivatives ------------------------------------------------------------------
@claim(
    seeds=("002",),
    expected=("proved", "verified"),
    title=r"Derivatives of ReLU, LeakyReLU and ELU, and the value at the kink",
    statement=r"$\operatorname{relu}'(z) = 0$ for $z < 0$ and $1$ for $z > 0$; $\operatorname{LeakyReLU}'(z) = "
    r"\alpha$ and $1$; $\operatorname{ELU}'(z) = \alpha e^{z}$ ($= \operatorname{ELU}(z) + \alpha$) and "
    r"$1$. At $z = 0$ the left and right derivatives differ (except ELU with $\alpha = 1$); JAX returns "
    r"one of them, and which one is stated",
    params={"leaky_alpha": LEAKY_ALPHA, "elu_alpha": ELU_ALPHA},
)
def derivatives(leaky_alpha=LEAKY_ALPHA, elu_alpha=ELU_ALPHA) -> Derivation:
    steps, derived, sides, at_zero = [], {}, {}, {}
    for name, (f, _) in TEXTBOOK.items():
        fz = f(z)
        d = sp.diff(fz, z)  # SymPy differentiates each branch of the Piecewise
        left = sp.limit((f(-h) - f(sp.S.Zero)) / (-h), h, 0)
        right = sp.limit((f(h) - f(sp.S.Zero)) / h, h, 0)
        derived[name], sides[name], at_zero[name] = d, (left, right), d.subs(z, 0)
        lhs = sp.Derivative(sp.Function(name)(z), z)
        tex = name.replace("_", r"\_")
        steps += [
            Step(sp.Function(name)(z), fz, "definition"),
            Step(lhs, d, "sympy.diff of the Piecewise"),
            Step(sp.Symbol(rf"\mathrm{{{tex}}}'(0^-)"), left, "left derivative: limit of the difference quotient"),
            Step(sp.Symbol(rf"\mathrm{{{tex}}}'(0^+)"), right, "right derivative"),
        ]
    heaviside = sp.diff(sp.Max(0, z), z)
    steps.append(
        Step(
            sp.Derivative(sp.Max(0, z), z),
            heaviside,
            f"SymPy's ReLU as Max: its derivative at 0 is Heaviside(0) = {heaviside.subs(z, 0)}",
        )
    )
    return Derivation(
        statement=[sp.Eq(sp.Derivative(sp.Function(n)(z), z), derived[n]) for n in TEXTBOOK],
        steps=steps,
        objects={
            "derived": derived,
            "sides": sides,
            "sympy_at_zero": at_zero,
            "max_at_zero": heaviside.subs(z, 0),
            "leaky_alpha": sp.nsimplify(leaky_alpha),
            "elu_alpha": sp.nsimplify(elu_alpha),
        },
    )


def jax_kink_values(leaky_alpha: float, elu_alpha: float) -> dict[str, tuple[float, float]]:
    """What ``jax.grad`` returns at +0.0 and -0.0 for each activation (float64)."""
    out = {}
    with gradcheck.float64():
        for name, f in _jax_fns(leaky_alpha, elu_alpha).items():
            g = jax.grad(f)
            out[name] = (float(g(jnp.float64(0.0))), float(g(jnp.float64(-0.0))))
    return out


def kink_side(value: float, left: float, right: float) -> str:
    """Which one-sided derivative ``value`` is: 'left', 'right', 'both sides' or 'neither'."""
    if left == right:
        return "both sides" if value == left else "neither"
    return "left" if value == left else "right" if value == right else "neither"


@derivatives.verifier
def _(d: Derivation, s: gradcheck.Settings):
    derived, sides = d["derived"], d["sides"]
    a_leaky, a_elu = d["leaky_alpha"], d["elu_alpha"]
    # 1. the derivative of each piece, against the textbook, on z = -p < 0 and z = p > 0
    for name, (_f, (tb_left, tb_right)) in TEXTBOOK.items():
        dv = derived[name]
        yield evidence.identity(dv.subs(z, -p), tb_left, f"{name}'(z) on z < 0 is {sp.sstr(tb_left.subs(p, -z))}")
        yield evidence.identity(dv.subs(z, p), tb_right, f"{name}'(z) on z > 0 is 1")
    yield evidence.identity(derived["elu"].subs(z, -p), elu(-p) + alpha, "ELU'(z) = ELU(z) + alpha on z < 0")
    # 2. the kink: one-sided derivatives, and when they agree
    expected_sides = {"relu": (0, 1), "leaky_relu": (alpha, 1), "elu": (alpha, 1)}
    smooth_at = sp.solveset(sp.Eq(*sides["elu"]), alpha, sp.S.Reals)
    yield evidence.fact(
        all(sp.simplify(sp.Matrix(sides[n]) - sp.Matrix(v)) == sp.zeros(2, 1) for n, v in expected_sides.items())
        and smooth_at == sp.FiniteSet(1),
        "one-sided derivatives at 0: ReLU (0, 1), LeakyReLU (alpha, 1), ELU (alpha, 1); only ELU with alpha = 1 "
        "is differentiable at 0",
        "sympy: limits of difference quotients",
    )
    # 3. JAX's value at the kink: one of the two one-sided derivatives (a subgradient), and which
    kink = jax_kink_values(float(a_leaky), float(a_elu))
    numeric = {"relu": (0.0, 1.0), "leaky_relu": (float(a_leaky), 1.0), "elu": (float(a_elu), 1.0)}
    chosen, ok = {}, True
    for name, (at_pos, at_neg) in kink.items():
        side = kink_side(at_pos, *numeric[name])
        chosen[name] = f"{at_pos:g} ({side}{' derivative' if side in ('left', 'right') else ''})"
        ok &= side != "neither" and at_pos == at_neg
    sympy_choice = {
        n: str(v.subs(alpha, a_leaky if n == "leaky_relu" else a_elu)) for n, v in d["sympy_at_zero"].items()
    }
    yield evidence.fact(
        ok,
        "JAX's derivative at the kink is one of the one-sided derivatives: "
        + ", ".join(f"{n}'(0) = {v}" for n, v in chosen.items())
        + f"; SymPy's Piecewise diff gives {sympy_choice}, its Max diff Heaviside(0) = {d['max_at_zero']}",
        "jax.grad at +0.0 and -0.0 (float64) against the SymPy one-sided limits",
        verdict="verified",
        jax=chosen,
        sympy=sympy_choice,
        leaky_alpha=float(a_leaky),
        elu_alpha=float(a_elu),
    )
    # 4. away from the kink, JAX's derivatives against the SymPy definitions (kinks are excused)
    refs = {"relu": lambda x: relu(x), "leaky_relu": lambda x: leaky_relu(x, a_leaky), "elu": lambda x: elu(x, a_elu)}
    for name, f in _jax_fns(float(a_leaky), float(a_elu)).items():
        yield evidence.checked(
            f,
            refs[name],
            f"jax.nn.{name} and its derivative agree with the Piecewise definition (float64)",
            s,
            shapes=[()],
            domain=(-1000.0, 1000.0),
            order=1,
            dtype="float64",
        )
