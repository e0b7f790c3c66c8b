"""The functions the checkers are timed and judged on, and a generic way to break a derivative rule.

:func:`mutate` turns any JAX function into one whose derivative rule is wrong on part of the
domain only (as a ``jax.custom_jvp`` or a ``jax.custom_vjp``): the kind of bug a check at a few
hand-picked points misses.  :func:`check_cases` are the four functions of the ``check`` group:
three correct, and the sigmoid with a rule 10% wrong for z > 2.  Their references are the
textbook ones of :mod:`gradcheck.models.references`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ..models.references import log_softmax_ref, sigmoid_ref, softmax_ref

__all__ = ["check_cases", "mutate"]


def mutate(f: Callable, threshold: float, mode: str = "jvp", error: float = 1e-3) -> Callable:
    """``f`` with a derivative rule wrong where the last input's last entry exceeds ``threshold``.

    ``mode="jvp"``: a ``jax.custom_jvp`` whose tangent is ``(1 + error)`` times JAX's own there;
    ``mode="vjp"``: a ``jax.custom_vjp`` whose cotangents are ``(1 - error)`` times JAX's own.
    Elsewhere the rule is JAX's, so the mutant is right on the rest of the domain.
    """
    if mode not in ("jvp", "vjp"):
        raise ValueError(f"mode: expected 'jvp' or 'vjp', got {mode!r}")
    if mode == "jvp":
        g = jax.custom_jvp(f)

        @g.defjvp
        def _(primals, tangents):
            y, dy = jax.jvp(f, primals, tangents)
            return y, jnp.where(jnp.ravel(primals[-1])[-1] > threshold, dy * (1 + error), dy)

        return g
    h = jax.custom_vjp(f)

    def fwd(*args):
        return f(*args), args

    def bwd(args, ct):
        _, pullback = jax.vjp(f, *args)
        bad = jnp.ravel(args[-1])[-1] > threshold
        return tuple(jnp.where(bad, gi * (1 - error), gi) for gi in pullback(ct))

    h.defvjp(fwd, bwd)
    return h


_DOMAIN = (-20.0, 20.0)


def check_cases() -> list[dict[str, Any]]:
    """What both checkers of the ``check`` group see: ``fn``, its SymPy ``ref``, the input
    ``shape``, the ``domain``, and whether the rule is ``broken`` (then a checker must flag it).

    Built fresh on each call: the engine caches a reference per reference callable and a
    program per function, so new objects keep ``gradcheck.check`` cold, as the group times it.
    """

    def fresh(ref):
        return lambda *args: ref(*args)

    return [
        {
            "name": "sigmoid",
            "fn": jax.nn.sigmoid,
            "ref": fresh(sigmoid_ref),
            "shape": (),
            "domain": _DOMAIN,
            "broken": False,
        },
        {
            "name": "softmax (5,)",
            "fn": jax.nn.softmax,
            "ref": fresh(softmax_ref),
            "shape": (5,),
            "domain": _DOMAIN,
            "broken": False,
        },
        {
            "name": "log_softmax (5,)",
            "fn": jax.nn.log_softmax,
            "ref": fresh(log_softmax_ref),
            "shape": (5,),
            "domain": _DOMAIN,
            "broken": False,
        },
        {
            "name": "broken custom_jvp sigmoid",
            "fn": mutate(jax.nn.sigmoid, 2.0, "jvp", error=0.1),
            "ref": fresh(sigmoid_ref),
            "shape": (),
            "domain": _DOMAIN,
            "broken": True,
        },
    ]
