"""A diagnosis for every failure, computed at its input, not guessed.

* **Is the same function right in float64 there?** (float32 checks: ``fn``'s program run in
  float64 at the same input along the same directions.)  If so the rule is right and the
  failure is the dtype's: its *range* when the result overflowed or underflowed or the input
  lies where squares leave the range (beyond sqrt(max) or below sqrt(tiny)), else its
  *precision*.  If not, the rule or the formula is wrong.
* **Do forward and reverse mode disagree?**  Only one family failing points at a custom rule.
* **Do jit and eager disagree?**  The failing mode run eagerly at the same point (XLA fuses and
  approximates some float32 functions, e.g. tanh, only under jit).
* **Is the error below the dtype's resolution at that scale?**  (within 1,024 ulps of the
  largest of 1, the inputs and the truth).

A precision artefact (float64 right and the error below that resolution, or jit-only with the
eager result right) is an *accuracy note*, not a failure, unless ``strict=True``; a range limit
stays a failure in its own class, with the range stated.
"""

from __future__ import annotations

import contextvars
import math

import jax
import numpy as np

from .._x64 import dtype_context
from ..oracles.mpmath_truth import Status
from ._modes import IN64, mode_of
from ._rule_check import check_rules
from ._rules import describe, rules_in

__all__ = ["diagnose", "CATEGORIES"]

#: in the order failures are listed
CATEGORIES = (
    "batching",  # vmap(fn) differs from fn point by point: its batching rule (see _batching)
    "wrong rule",
    "custom rule",
    "raised",
    "precision loss",
    "range limit",
    "undefined entry",
    "precision",
    "inaccurate",  # an accuracy finding made a failure (strict=True or accuracy=; see _accuracy)
)

_RESOLUTION_ULPS = 1024
#: set while a custom rule is checked on its own (see :func:`diagnose`)
_RULE_CHECK: contextvars.ContextVar[bool] = contextvars.ContextVar("gradcheck_rule_check", default=False)


def _entry(out, e):
    return float(np.asarray(out, np.float64).reshape(-1)[e])


def _close(got, exp, rtol, atol):
    if not (math.isfinite(got) and math.isfinite(exp)):
        return got == exp
    return abs(got - exp) <= atol + rtol * abs(exp)


def in_range_trouble(x: np.ndarray, dtype: str) -> bool:
    fi = np.finfo(dtype)
    a = np.abs(np.asarray(x, np.float64))
    nz = a[a > 0]
    return bool(nz.size and (nz.min() < math.sqrt(float(fi.tiny)) or nz.max() > math.sqrt(float(fi.max))))


def _undefined_beside(eng, x, got: float) -> str:
    """Why a non-finite derivative of a defined entry is no wrong rule, or "".

    Where the reference is undefined at some entries of a point (x / y at y = 0), JAX's
    derivatives of the whole function carry NaN into the defined entries too (0 * inf in the
    chain rule of the stacked output): a property of the point, judged apart from wrong rules.
    """
    if math.isfinite(got) or eng.path != "entries":
        return ""
    _, status, *_ = eng.truth_at(x, hessian=False)
    undefined = int((np.asarray(status) == Status.UNDEFINED).sum())
    if not undefined:
        return ""
    return (
        f"the reference is undefined at {undefined} other quantit{'y' if undefined == 1 else 'ies'} of this "
        "point: the non-finite value comes from there through the chain rule of the whole output "
        "(0 * inf), not from a wrong rule of this entry"
    )


#: equations that only move data: a function that is one custom rule and these is that rule
_PLUMBING = {"reshape", "squeeze", "expand_dims", "concatenate", "convert_element_type", "broadcast_in_dim"}


def _rules_of(spec, dtype: str) -> tuple[tuple, bool]:
    """The custom rules in ``fn``'s jaxpr at the checked shapes (``()`` where it cannot be traced),
    and whether ``fn`` is its one rule itself (nothing but that rule's equation and data moves)."""
    try:
        with dtype_context(dtype):
            leaves = [jax.ShapeDtypeStruct(tuple(s), dtype) for s in spec.leaf_shapes]
            jaxpr = jax.make_jaxpr(spec.flat_fn)(*leaves).jaxpr  # traced once for both questions
            rules = rules_in(jaxpr)
            eqns = [e for e in jaxpr.eqns if e.primitive.name not in _PLUMBING]
    except Exception:
        return (), False
    sole = len(rules) == 1 and len(eqns) == 1 and eqns[0].primitive.name in ("custom_jvp_call", "custom_vjp_call")
    return rules, sole


def diagnose(eng, spec, prog, modes_failed: list[str], mode: str, e: int, x, dirs, exp: float, got: float):
    """(category, diagnosis in words)."""
    dtype = spec.dtype
    # a float32 check's failure of fn's own float64 derivative (the numerical path's second tier)
    in64 = mode.endswith(IN64)
    mode, modes_failed = mode.removesuffix(IN64), [m.removesuffix(IN64) for m in modes_failed]
    x = np.asarray(eng.absolute(np.asarray(x, dtype)[None])[0], np.float64)  # where fn ran
    spill = _undefined_beside(eng, x, got)
    if spill:
        return "undefined entry", spill
    t, c, s = (np.asarray(v, np.float64) for v in dirs) if dirs is not None else (None, None, None)
    facts = []
    right64 = None
    if in64:
        right64 = False
        facts.append(
            f"fn's own float64 derivative is wrong: {got:.9g} where the truth is {exp:.9g}; in float32 "
            "the same rule's error is within float32's tolerance, and far beyond its rounding"
        )
    elif dtype == "float32" and dirs is not None:
        assert t is not None and c is not None and s is not None  # as dirs is not None
        try:
            flat64 = eng.float64_at(mode, x, t, c, s)
            if flat64 is not None and math.isfinite(exp) and abs(exp) <= float(np.finfo("float32").max):
                g64 = float(flat64[e])
                f = spec.order2_factor if mode_of(mode).order == 2 else 1.0
                right64 = _close(g64, exp, 1e-6 * f, 1e-12 * max(1.0, abs(exp)))
                facts.append(f"float64 at the same input gives {g64:.9g} ({'right' if right64 else 'also wrong'})")
        except Exception as err:
            facts.append(f"float64 re-run not possible ({type(err).__name__})")
    fam_fwd = [m for m in modes_failed if mode_of(m).family == "forward"]
    fam_rev = [m for m in modes_failed if mode_of(m).family == "reverse"]
    other = "reverse" if fam_fwd else "forward"
    other_ran = any(mode_of(m).family == other for m in prog.names)
    one_family = bool((fam_fwd and not fam_rev) or (fam_rev and not fam_fwd)) and other_ran
    # a custom rule is a fact of fn's jaxpr, not of which modes failed: JAX's own rules also
    # disagree between the modes where the range runs out (x / y at y = 5e-324: jvp NaN, vjp inf)
    found = eng.rules_found  # once per check, not once per failure
    if found is None:
        found = eng.rules_found = _rules_of(spec, dtype)
    rules, sole = found
    custom = one_family and bool(rules)
    if one_family:
        which = "forward" if fam_fwd else "reverse"
        if custom:
            facts.append(f"only {which} mode is wrong: the two modes disagree, and fn holds {describe(rules)}")
        else:
            facts.append(
                f"only {which} mode is wrong, but fn's jaxpr holds no custom rule (custom_jvp/custom_vjp): "
                "JAX's own rules of the two modes round or overflow differently here"
            )
    jit_only = False
    # jit against eager only where it can tell something: float64 wrong too shows the rule wrong
    # (eager runs op by op, each op compiled on its first call: 1.8 s at 150,000 parameters)
    if dirs is not None and mode in prog.names and not in64 and right64 is not False:
        try:
            with dtype_context(dtype), jax.disable_jit():
                g = prog.mode_fn(mode)
                cast = lambda v: np.asarray(v, dtype)
                eager = _entry(g(cast(x), cast(t), cast(c), cast(s)), e)
            if not _close(eager, got, spec.rtol, spec.atol):
                jit_only = _close(eager, exp, spec.rtol, spec.atol)
                facts.append(
                    f"eager (no jit) gives {eager:.9g}: jit and eager disagree"
                    + (", and eager is right" if jit_only else "")
                )
        except Exception:
            pass
    eps = float(np.finfo("float64" if in64 else dtype).eps)
    scale = max(1.0, float(np.max(np.abs(x))) if x.size else 1.0, abs(exp) if math.isfinite(exp) else 1.0)
    below = math.isfinite(got) and math.isfinite(exp) and abs(got - exp) <= _RESOLUTION_ULPS * eps * scale
    if below:
        facts.append(
            f"the error {abs(got - exp):.2g} is within {_RESOLUTION_ULPS} ulps of "
            f"{'float64' if in64 else dtype} at the "
            f"inputs' scale ({scale:.3g})"
        )
    fi = np.finfo(dtype)
    # overflow explains an infinite result, or a truth beyond the dtype; a NaN is explained by the
    # range only where the inputs themselves are at its edge (betainc's NaN Hessian at x = 0 is not)
    overflowish = math.isinf(got) or (math.isfinite(exp) and abs(exp) > float(fi.max))
    range_pos = in_range_trouble(x, dtype)
    if right64 is False or (right64 is None and not custom and not range_pos and not overflowish):
        category = "custom rule" if custom else "wrong rule"
    elif custom and right64 is not True:
        category = "custom rule"
    elif overflowish or range_pos:
        category = "range limit"
        facts.append(
            f"where {dtype}'s range runs out (finite numbers {float(fi.tiny):.3g} to {float(fi.max):.3g}; "
            f"squares leave it below {math.sqrt(float(fi.tiny)):.3g} and above {math.sqrt(float(fi.max)):.3g})"
        )
    elif jit_only or (right64 and below):
        category = "precision"
    else:  # right in float64 but far beyond float32's resolution
        category = "precision loss"
        facts.append(
            "right in float64 but far beyond float32's resolution: the formula "
            "loses precision in float32 (cancellation), not a wrong rule"
        )
    if sole and category in ("wrong rule", "custom rule"):
        # fn is that rule: checking it on its own would repeat this check
        category = "custom rule"
        facts.append(f"fn is its custom rule {rules[0].name} ({rules[0].kind}) itself: the wrong rule is that one")
    elif rules and category in ("wrong rule", "custom rule") and dirs is not None and not _RULE_CHECK.get():
        # each rule on its own, at the inputs it received at this point (not again inside that
        # sub-check), once per check: at the first failure's point, the same verdicts for the rest
        verdicts = eng.rule_verdicts
        if verdicts is None:
            leaves = [np.asarray(v, dtype) for v in prog.unflatten(x)]
            token = _RULE_CHECK.set(True)
            try:
                verdicts = eng.rule_verdicts = check_rules(
                    spec.flat_fn, leaves, dtype, seed=spec.seed, key=(spec.fn, repr(spec.shapes))
                )
            finally:
                _RULE_CHECK.reset(token)
        wrong = [v for v in verdicts if v.ok is False]
        if wrong:
            category = "custom rule"
            facts.extend(f"custom rule {v.rule.name} ({v.rule.kind}) is wrong on its own: {v.detail}" for v in wrong)
        for v in verdicts:
            if v.ok is not False:
                state = " is right on its own" if v.ok else ""
                facts.append(f"custom rule {v.rule.name} ({v.rule.kind}){state}: {v.detail}")
    return category, "; ".join(facts)
