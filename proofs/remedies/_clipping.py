"""Remedies: remedies.clipping and remedies.l2."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck
from gradcheck.catalogue import Derivation, Step, evidence
from gradcheck.symbolic import array_symbols, prove_equal
from proofs import claim

c = sp.Symbol("c", positive=True)


def _positive_int(name, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _norm(v):
    return sp.sqrt(sum(e**2 for e in v))


# --- remedies.clipping ---------------------------------------------------------------------------
def clip_sym(g, threshold=c):
    """Clipping by norm as SymPy: g if ||g|| <= c, else c g / ||g||."""
    N = _norm(g)
    return g.applyfunc(lambda e: sp.Piecewise((e, N <= threshold), (threshold * e / N, True)))


def unit_scale(x, m):
    """x / 2^e, where m < 2^e <= 2m: an exact rescaling of x by a power of two near max|x| = m.

    Why not ``x / m``: XLA rewrites division by a broadcast scalar as multiplication by its
    reciprocal, and 1/m is subnormal once m > 1/tiny (4.5e307 in float64, 8.5e37 in float32),
    which the CPU flushes to 0.  The power of two is applied as two normal factors 2^-h and
    2^(h-e), and multiplying by powers of two is exact.
    """
    _, e = jnp.frexp(m)
    h = e // 2
    one = jnp.ones_like(m)
    return x * jnp.ldexp(one, -h) * jnp.ldexp(one, h - e)


def clip_by_norm(g, threshold=1.0):
    """Scale g down to norm ``threshold`` when it is longer; JAX, safe at 0 and at extreme entries.

    Three numerical traps, all avoided here:

    * ``sqrt(sum(g**2))`` overflows to inf for entries above 1e154 (float64) or 1e19 (float32),
      and then ``threshold / inf = 0`` clips a huge gradient to the zero vector, losing its
      direction; so the norm is taken of g rescaled to entries of at most 1 (``unit_scale``),
      and the clipped vector is formed from that rescaled g, never from a tiny factor.
    * the rescaling itself must not divide by max|g| (see ``unit_scale``).
    * at g = 0 the derivative of sqrt is infinite, and ``jnp.where`` does not stop the NaN that
      0 * inf creates in the branch it discards; so sqrt only ever sees a positive argument.
    """
    m = jax.lax.stop_gradient(jnp.max(jnp.abs(g)))  # a scale: the result does not depend on it
    nonzero = m > 0
    m_safe = jnp.where(nonzero, m, 1.0)
    u = unit_scale(g, m_safe)  # g / 2^e, entries in [-1, 1]
    r = jnp.sqrt(jnp.where(nonzero, jnp.sum(u**2), 1.0))  # ||u|| >= 1/2 when g != 0
    clipped = u * (threshold / r)
    longer = nonzero & (r > unit_scale(jnp.asarray(threshold, g.dtype), m_safe))  # ||g|| > threshold, scaled alike
    return jnp.where(longer, clipped, g)


@claim(
    seeds=("002",),
    expected=("proved", "verified"),
    title=r"Clipping by norm bounds the norm and keeps the direction",
    statement=r"$\operatorname{clip}(g) = g$ if $\|g\| \leq c$, else $c g/\|g\|$: $\|\operatorname{clip}(g)\| \leq "
    r"c$ and $\operatorname{clip}(g) = \lambda g$ with $\lambda > 0$",
    params={"n": 3},
)
def clipping(n=3) -> Derivation:
    n = _positive_int("n (gradient entries)", n)
    g = array_symbols("g", (n,))
    N = _norm(g)
    clipped = clip_sym(g)
    over = g * c / N  # the branch taken when ||g|| > c
    return Derivation(
        statement=[
            sp.Le(sp.Symbol(r"\|\mathrm{clip}(g)\|"), c),
            sp.Eq(sp.Symbol(r"\mathrm{clip}(g)"), sp.Symbol(r"\lambda") * sp.Symbol("g")),
            sp.StrictGreaterThan(sp.Symbol(r"\lambda"), 0),
        ],
        steps=[
            Step(sp.Symbol(r"\mathrm{clip}(g)"), clipped, f"definition, n = {n}"),
            Step(
                sp.Symbol(r"\|c\,g/\|g\|\|"), sp.sqrt(sp.cancel(sum(e**2 for e in over))), "norm of the clipped branch"
            ),
            Step(
                sp.Symbol(r"\lambda"), sp.Piecewise((1, N <= c), (c / N, True)), "the factor: positive in both branches"
            ),
        ],
        objects={"g": g, "N": N, "clipped": clipped, "over": over},
    )


@clipping.verifier
def _(d: Derivation, s: gradcheck.Settings):
    g, N, over = d["g"], d["N"], d["over"]
    yield evidence.identity(_norm(over), c, "||c g / ||g|| || = c: the clipped branch has norm exactly c")
    # same direction: the clipped vector is a positive multiple of g in both branches
    lam = sp.cancel(over[0] / g[0])
    parallel = all(prove_equal(over[i] - lam * g[i], 0) for i in range(len(g)))
    yield evidence.fact(
        parallel and prove_equal(lam, c / N),
        "the clipped branch is (c / ||g||) g, a positive multiple (this branch has ||g|| > c > 0): "
        "the direction is kept",
        "sympy: ratio of entries",
    )
    yield evidence.identity((over.T * g)[0] / (_norm(over) * N), 1, "cosine between clip(g) and g is 1")
    n = len(g)
    for dtype, big in (("float64", 1e300), ("float32", 1e38)):
        yield evidence.checked(
            clip_by_norm,
            lambda v: clip_sym(v, 1),
            f"clip_by_norm and its Jacobian agree with the Piecewise definition, entries up to +-{big:g} ({dtype})",
            s,
            shapes=[(n,)],
            domain=(-big, big),
            dtype=dtype,
        )
    with gradcheck.float64():
        el = st.floats(allow_nan=False, allow_infinity=False)
        yield evidence.attack(
            clip_violation(clip_by_norm),
            hnp.arrays(np.float64, (n,), elements=el),
            "||clip(g)|| <= 1 and clip(g) parallel to g, for every finite float64 g",
            s,
        )


def clip_violation(clip, threshold: float = 1.0):
    """A predicate for Hypothesis: ``clip(g)`` is longer than ``threshold`` or not parallel to g.

    Both are judged on g and clip(g) rescaled to max-abs 1 (positive multiples then coincide),
    so that huge or tiny g do not overflow the check itself.  Call it with float64 enabled.
    """
    f = jax.jit(clip)

    def violates(v):
        v = np.asarray(v, np.float64)
        out = np.asarray(f(jnp.asarray(v)), np.float64)
        if not np.all(np.isfinite(out)):
            return True
        mo, mv = np.max(np.abs(out)), np.max(np.abs(v))
        if mv == 0:
            return bool(mo != 0)
        if mo == 0:
            return True  # a non-zero gradient clipped to nothing has lost its direction
        same_direction = np.max(np.abs(out / mo - v / mv)) <= 1e-12
        return not (math.hypot(*out) <= threshold * (1 + 1e-14) and same_direction)

    return violates


# --- remedies.l2 ----------------------------------------------------------------------------------
@claim(
    seeds=("002",),
    expected=("proved", "verified"),
    title=r"Gradient of the $L_{2}$-regularised squared error",
    statement=r"for $\mathrm{Loss} = (y - W^{T} x)^{2} + \alpha \|W\|^{2}$: $\nabla_{W} \mathrm{Loss} = -2 x (y - "
    r"W^{T} x) + 2 \alpha W$",
    params={"n": 3},
)
def l2(n=3) -> Derivation:
    n = _positive_int("n (weights)", n)
    W, x = array_symbols("W", (n,)), array_symbols("x", (n,))
    y, alpha = sp.Symbol("y", real=True), sp.Symbol("alpha", positive=True)
    resid = y - (W.T * x)[0]
    loss = resid**2 + alpha * (W.T * W)[0]
    grad = sp.Matrix([sp.diff(loss, wi) for wi in W])
    textbook = -2 * x * resid + 2 * alpha * W
    lr = sp.Symbol("eta", positive=True)
    step = sp.expand(W - lr * grad)
    return Derivation(
        statement=sp.Eq(sp.Symbol(r"\nabla_W \mathrm{Loss}"), sp.Symbol(r"-2x(y - W^T x) + 2\alpha W")),
        steps=[
            Step(sp.Symbol("Loss"), sp.Symbol(r"(y - W^T x)^2 + \alpha \|W\|^2"), f"seed 002, n = {n}"),
            Step(sp.Symbol(r"\nabla_W \mathrm{Loss}"), grad, "sympy.diff with respect to each W_i"),
            Step(
                sp.Symbol(r"W - \eta \nabla_W \mathrm{Loss}"),
                sp.Symbol(r"(1 - 2\eta\alpha) W + 2\eta x (y - W^T x)"),
                "a gradient step shrinks W by 1 - 2 eta alpha before the data term: weight decay",
            ),
        ],
        objects={
            "W": W,
            "x": x,
            "y": y,
            "alpha": alpha,
            "grad": grad,
            "textbook": textbook,
            "step": step,
            "lr": lr,
            "resid": resid,
        },
    )


def l2_loss(W, x, y, alpha):
    return (y - jnp.dot(W, x)) ** 2 + alpha * jnp.sum(W**2)


def _l2_reference(W, x, y, alpha):
    return (y - (W.T * x)[0]) ** 2 + alpha * (W.T * W)[0]


@l2.verifier
def _(d: Derivation, s: gradcheck.Settings):
    yield evidence.identity(d["grad"], d["textbook"], "grad = -2 x (y - W^T x) + 2 alpha W")
    W, x, lr, alpha = d["W"], d["x"], d["lr"], d["alpha"]
    yield evidence.identity(
        d["step"],
        (1 - 2 * lr * alpha) * W + 2 * lr * x * d["resid"],
        "W - eta grad = (1 - 2 eta alpha) W + 2 eta x (y - W^T x)",
    )
    n = W.shape[0]
    yield evidence.checked(
        l2_loss,
        _l2_reference,
        "jax.grad of the L2-regularised loss agrees with SymPy (float64)",
        s,
        shapes=[(n,), (n,), (), ()],
        domain=[(-1e3, 1e3), (-1e3, 1e3), (-1e3, 1e3), (0.0, 10.0)],
        dtype="float64",
    )
