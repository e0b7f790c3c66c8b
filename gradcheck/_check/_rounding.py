"""How far rounding in the checked dtype can move a correct result: Monte Carlo arithmetic.

A directional derivative of a model sums thousands of terms.  At a symmetric point (every logit
equal) a correct float32 JVP along 5,120 weights gives -1.1e-5 where the truth is 1e-11: the
softmax backward ``1 - 10 softmax`` cancels to 0 and keeps float32's rounding of terms of size
1, and the contraction after it sums 5,120 of those.  A tolerance sized by the result (1e-11),
or by the inputs' condition, calls that a failure.  It must be sized by the terms that were
summed, inside the computation, which no quantity at the inputs or the output shows.

So the rounding is simulated, as Monte Carlo arithmetic does (Parker 1997; Verificarlo,
CADNA): the same computation (``fn``'s own mode, the one being judged) is evaluated in float64
with every intermediate result perturbed by a random relative error of the checked dtype's
epsilon, and every operand of a sum (``dot_general``, ``reduce_sum``, ``conv``) by that epsilon
times the square root of the number of terms summed (the rounding of the partial sums).  The
spread of a few such evaluations around the unperturbed one is the rounding that a correct
evaluation in the checked dtype can make at that point.  It only sizes the tolerance: the
truth stays the independent one (extrapolated differences or the SymPy reference).  A rule
wrong by 1e-3 is a systematic error that the perturbations do not scatter, and one that rounds
badly on purpose (a cast to float16 inside a rule) is still larger than float32's epsilon.

Why written here: JAX has no Monte Carlo arithmetic, and the tools that do (Verificarlo,
CADNA, PROMISE) instrument compiled C or Fortran, not a jaxpr.  The interpreter follows the
jaxpr evaluation loop of ``jax.core.eval_jaxpr``, recursing into ``jit`` calls; control flow
(``scan``, ``while``, ``cond``) is bound as a whole, its outputs perturbed.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

__all__ = ["mca"]

_SUMS = {"dot_general": "dot", "reduce_sum": "reduce", "conv_general_dilated": "conv", "cumsum": "reduce"}
_CALLS = ("pjit", "jit", "closed_call", "core_call", "remat", "checkpoint", "custom_jvp_call", "custom_vjp_call")


def _terms(eqn) -> float:
    """How many terms one output entry of a summing equation adds up."""
    p = eqn.params
    kind = _SUMS[eqn.primitive.name]
    shape = eqn.invars[0].aval.shape
    if kind == "dot":
        (lhs_contract, _), _ = p["dimension_numbers"]
        return float(np.prod([shape[d] for d in lhs_contract])) if lhs_contract else 1.0
    if kind == "reduce":
        axes = p.get("axes", (p.get("axis", 0),))
        return float(np.prod([shape[d] for d in axes])) if axes else 1.0
    rhs = eqn.invars[1].aval.shape  # conv: the kernel's input features times its window
    return float(np.prod(rhs[1:]))


class _Noise:
    """Relative perturbations of the checked dtype's epsilon, different per equation, entry and draw.

    The perturbation pattern is a cheap quasi-random sequence (the sine of a Weyl sequence over
    the entries' index, the equation's count and the draw), not ``jax.random``: a threefry draw per
    equation made XLA take minutes to compile a small Equinox MLP's modes, and rounding needs only
    errors that do not line up with the computation, not statistical randomness."""

    def __init__(self, draw, eps):
        self.draw, self.eps, self.count = draw, eps, 0

    def __call__(self, v, scale: float = 1.0):
        if not (hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.floating)):
            return v
        self.count += 1
        shape = jnp.shape(v)
        idx = jax.lax.iota(v.dtype, int(np.prod(shape))).reshape(shape) if shape else jnp.zeros((), v.dtype)
        phase = 0.6180339887 * self.count + 2.2360679775 * self.draw
        u = jnp.sin(12.9898 * idx + phase * 78.233)
        return v * (1.0 + self.eps * scale * u)


def _eval(jaxpr, consts, args, noise: _Noise):
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        sub = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr")) if name in _CALLS else None
        if isinstance(sub, jcore.ClosedJaxpr):
            outs = _eval(sub.jaxpr, sub.consts, invals, noise)
        elif isinstance(sub, jcore.Jaxpr):
            outs = _eval(sub, (), invals, noise)
        else:
            if name in _SUMS:
                scale = float(np.sqrt(_terms(eqn)))
                invals = [noise(v, scale) for v in invals]
            params = eqn.primitive.get_bind_params(eqn.params)
            with eqn.ctx.manager:
                outs = eqn.primitive.bind(*invals, **params)
            outs = list(outs) if eqn.primitive.multiple_results else [outs]
        outs = [noise(o) for o in outs]
        for v, o in zip(eqn.outvars, outs):
            if not isinstance(v, jcore.DropVar):
                env[v] = o
    return [read(v) for v in jaxpr.outvars]


def mca(fns: dict[str, Callable], example: tuple, draws: int = 3) -> Callable:
    """A jitted program ``(X, T, C, S, eps) -> {mode: (draws, B, ...)}``: each of ``fns``
    (per-point functions of ``(x, t, c, s)``, traced at ``example``'s float64 shapes) over the
    batch, ``draws`` times with intermediate results perturbed by ``eps`` (see the module's
    docstring; an argument, so that float32's and float64's rounding share one compilation).
    Call it with float64 enabled."""
    jaxprs = {k: jax.make_jaxpr(g)(*example) for k, g in fns.items()}

    def one(draw, eps, x, t, c, s):
        out = {}
        for i, (k, closed) in enumerate(jaxprs.items()):
            noise = _Noise(draw + 0.37 * i, eps)
            (out[k],) = _eval(closed.jaxpr, closed.consts, (x, t, c, s), noise)
        return out

    def program(X, T, C, S, eps):
        ds = jnp.arange(1, draws + 1, dtype=X.dtype)
        return jax.vmap(lambda d: jax.vmap(lambda x, t, c, s: one(d, eps, x, t, c, s))(X, T, C, S))(ds)

    return jax.jit(program)
