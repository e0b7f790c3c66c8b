"""fn's modes as named records, in one table: each mode's name, its place in a report, its
family, and what JAX must run for it (formerly hand-named strings classified by prefix)."""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["IN64", "MODES", "MODE_ORDER", "Mode", "kind_of", "mode_kind", "mode_of"]

#: A mode's suffix where fn's own float64 derivative failed (a float32 check's second tier).
IN64 = " in float64"


class Mode(NamedTuple):
    """One of fn's modes (see :mod:`._program` for what each computes)."""

    name: str
    family: str  # the outermost differentiation: "value", "forward" or "reverse" ("" for the dot test)
    jvp: bool  # JAX runs forward mode for it (a custom_vjp has none)
    vjp: bool  # JAX runs reverse mode for it (a custom_vmap or a while_loop has none)
    order: int  # 0 the value, 1 first derivatives, 2 second derivatives
    probe: str  # the directional mode it is compared as, one point at a time (a Jacobian contracted)


#: In the order a failure's modes are reported: first the mode that names an input entry (a VJP
#: row names x[617]; a JVP only says "along a random tangent").
MODES = {
    m.name: m
    for m in (
        Mode("value", "value", False, False, 0, "value"),
        Mode("jacrev", "reverse", False, True, 1, "vjp"),
        Mode("jacfwd", "forward", True, False, 1, "jvp"),
        Mode("vjp", "reverse", False, True, 1, "vjp"),
        Mode("vjp.t", "", False, True, 1, "vjp"),  # the VJP's dot test c'J t alone: no entry named
        Mode("hessian fwd-over-rev", "forward", True, True, 2, "hvp fwd-over-rev"),
        Mode("hessian rev-over-rev", "reverse", False, True, 2, "hvp rev-over-rev"),
        Mode("hessian fwd-over-fwd", "forward", True, False, 2, "fwd-over-fwd"),
        Mode("hvp rev-over-rev", "reverse", False, True, 2, "hvp rev-over-rev"),
        Mode("hvp fwd-over-rev", "forward", True, True, 2, "hvp fwd-over-rev"),
        Mode("jvp", "forward", True, False, 1, "jvp"),
        Mode("fwd-over-fwd", "forward", True, False, 2, "fwd-over-fwd"),
    )
}
MODE_ORDER = tuple(MODES)


def mode_of(name: str) -> Mode:
    """The record of a mode, by its name (a float64 tier's ``"vjp in float64"`` included)."""
    return MODES[name.removesuffix(IN64)]


def mode_kind(mode: str) -> str:
    """What ``mode`` computes: ``"value"``, ``"gradient"`` or ``"second-derivative"``."""
    return ("value", "gradient", "second-derivative")[mode_of(mode).order]


def kind_of(mode: str, got: float, expected: float) -> str:
    """The kind of a failure of ``mode``: non-finite where only ``got`` is, else :func:`mode_kind`."""
    if not math.isfinite(got) and math.isfinite(expected):
        return "non-finite"
    return mode_kind(mode)
