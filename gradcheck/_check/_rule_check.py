"""Each custom rule of ``fn`` (:mod:`._rules` reads them from its jaxpr) checked on its own, at
the inputs it received at a failing point: :func:`check_rules`.

The rule becomes a function of its float inputs (:func:`_of_free`), the others held fixed, and is
checked with ``reference=None`` at ``args=`` its inputs, so that its inputs reach the compiled
programs as their points, never as constants inside them: a second check of the same rule, at
other inputs, finds them compiled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._x64 import dtype_context
from ._args import leaf_key
from ._complex import cast_dtype, delta_shape, perturbed, real_view
from ._rules import Rule, _table, custom_rules, rule_function, rule_inputs

__all__ = ["RuleVerdict", "check_rules"]

#: how far around a recorded input the sub-check samples (``args=``'s radius: relative to the
#: root mean square of each input)
_RADIUS = 1e-3


@dataclasses.dataclass(frozen=True)
class RuleVerdict:
    """A rule checked on its own: ``ok`` None when it was not checked (the reason in ``detail``)."""

    rule: Rule
    ok: bool | None
    detail: str


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _is_float(x: Any, kind: Any = jnp.floating) -> bool:
    dt = getattr(x, "dtype", None)
    return dt is not None and not jax.dtypes.issubdtype(dt, jax.dtypes.extended) and jnp.issubdtype(dt, kind)


def _cast_floats(args: Any, dtype: str) -> Any:
    """``args`` with every float leaf in ``dtype``, every complex one in its complex counterpart
    (integer, boolean and key leaves unchanged)."""
    return jax.tree_util.tree_map(
        lambda a: np.asarray(a, cast_dtype(np.asarray(a), dtype)) if _is_float(np.asarray(a), jnp.inexact) else a, args
    )


class _Held:
    """A rule input held fixed in its sub-check (a value the rule closes over, an integer, a key):
    a leaf that ``args=`` does not differentiate, equal to any other of the same value, so that
    the next check of the same rule at the same held values finds its programs compiled."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self._key = leaf_key(value, False)  # by its data, as a fixed leaf of args= is

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Held) and self._key == other._key


#: the function of a rule's free inputs (:func:`_of_free`), per (fn, rule, shapes and dtypes)
_FREE: dict = {}
_FREE_SIZE = 64


def _of_free(fn: Callable, key: Any, args: tuple, rule: Rule, free: list[int], n: int) -> Callable:
    """``g(*free_inputs, held)``: the rule applied to its free inputs, the others (``held``, a
    tuple of :class:`_Held`) in their places; its float outputs (a complex one as its parts).
    One function per (``key``: fn, the rule, the arguments' shapes and dtypes), its values only
    ever arguments: the rule is traced from ``fn`` at abstract arguments, once per dtype it is
    called in (the numerical truth of a float32 check runs in float64, which must not pass
    through a float32 equation)."""
    kinds = [("complex" if np.iscomplexobj(a) else "float") if _is_float(a, jnp.inexact) else "" for a in args]
    avals = [(tuple(np.shape(a)), a.dtype, k) for a, k in zip(args, kinds)]  # shapes, not the values
    full_key: Any = (key, rule.key, tuple((s, str(d), k) for s, d, k in avals), tuple(free), n)
    try:
        hit = _FREE.get(full_key)
    except Exception:  # an unhashable fn, or one whose == is no bool: this call's alone
        full_key, hit = None, None
    if hit is not None:
        return hit
    fns: dict[str, Callable] = {}

    def rule_in(dt: str) -> Callable:
        if dt not in fns:
            with dtype_context(dt):
                complex_of = "complex64" if dt == "float32" else "complex128"
                real = [jax.ShapeDtypeStruct(s, {"float": dt, "complex": complex_of}.get(k, d)) for s, d, k in avals]
                fns[dt] = rule_function(fn, rule, *real)
        return fns[dt]

    def g(*xs: Any) -> Any:
        *values, held = xs
        it, kept = iter(values), iter(held)
        ins = [next(it) if i in free else next(kept).value for i in range(n)]
        outs = rule_in(np.finfo(jnp.result_type(values[0])).dtype.name)(*ins)
        outs = [real_view(o) for o in (outs if isinstance(outs, tuple) else (outs,)) if _is_float(o, jnp.inexact)]
        if not outs:
            raise TypeError(f"rule {rule.name!r} has no float output")
        return outs[0] if len(outs) == 1 else tuple(outs)

    g.__name__ = f"rule {rule.name}"
    if full_key is not None:
        _FREE[full_key] = g
        while len(_FREE) > _FREE_SIZE:
            del _FREE[next(iter(_FREE))]
    return g


def _isolated(g: Callable, inputs: tuple, free: list[int], held: tuple, kind: str, dtype: str) -> None:
    """Raises unless ``g`` traces alone, derivatives included (a rule closing over fn's own
    tracers fails here), along real perturbations of its free inputs."""
    base = [np.asarray(inputs[i]) for i in free]

    def moved(*deltas: Any) -> Any:
        return g(*(perturbed(a, d) for a, d in zip(base, deltas)), held)

    with dtype_context(dtype):
        zeros = [jnp.zeros(delta_shape(a), dtype) for a in base]
        out, pull = jax.vjp(moved, *zeros)
        jax.eval_shape(pull, jax.tree_util.tree_map(jnp.ones_like, out))
        if kind == "custom_jvp":
            jax.eval_shape(lambda *d: jax.jvp(moved, tuple(d), tuple(d))[1], *zeros)


def _failure_line(f: Any, free: list[int], base: list[np.ndarray]) -> str:
    if f.argument is not None and 0 <= f.argument < len(free):
        of = f" of input {free[f.argument]} {tuple(base[f.argument].shape)}"
    else:
        of = ""
    if f.message:
        return f"{f.category}: {f.kind}{of} [{f.mode}] {f.message}"
    return (
        f"{f.category}: {f.kind}{of} [{f.mode}] {f.entry}: expected {f.expected:.6g}, got {f.got:.6g} "
        f"(error {f.error:.2g}, {f.points} point(s))"
    )


def _check_one(fn, key, args, rule, inputs, n_consts, dtype, max_examples, seed, run) -> RuleVerdict:
    if rule.in_loop:
        return RuleVerdict(rule, None, f"not checked: {rule.where}, a loop body whose inputs differ per iteration")
    if inputs is None:
        return RuleVerdict(
            rule, None, f"not checked: not reached at these arguments ({rule.where}: a branch not taken)"
        )
    # the values it closes over come first: its rule defines no derivative along them (JAX refuses
    # to differentiate a custom_vjp along a closed-over value), so they are held fixed too
    free = [i for i, x in enumerate(inputs) if i >= n_consts and _is_float(x, jnp.inexact) and np.size(x) > 0]
    if not free:
        return RuleVerdict(rule, None, "not checked: no float input (integer, boolean or key inputs only)")
    base = [np.asarray(inputs[i]) for i in free]
    held = tuple(_Held(x) for i, x in enumerate(inputs) if i not in free)
    try:
        g = _of_free(fn, key, args, rule, free, len(inputs))
        _isolated(g, inputs, free, held, rule.kind, dtype)
    except Exception as e:
        return RuleVerdict(rule, None, f"not checked: could not be isolated ({_one_line(e)})")
    try:  # at its inputs and perturbations of them (args=): warm where checked before at any values
        report = run(
            g, None, args=(*base, held), radius=_RADIUS, max_examples=max_examples, seed=seed, hypothesis_examples=0
        )
    except Exception as e:
        return RuleVerdict(rule, None, f"not checked: the sub-check raised {_one_line(e)}")
    if report.ok:
        return RuleVerdict(
            rule, True, f"right at {report.points_checked} points around its inputs ({'; '.join(report.modes)})"
        )
    return RuleVerdict(rule, False, _failure_line(report.failures[0], free, base))


def check_rules(
    fn: Callable,
    args: Sequence,
    dtype: str,
    *,
    max_examples: int = 8,
    seed: int = 0,
    check: Callable | None = None,
    key: Any = None,
) -> list[RuleVerdict]:
    """Each custom rule of ``fn``, checked on its own at the inputs it received at ``args`` (and
    small perturbations of them, up to 1e-3 times each input's root mean square), by ``check``
    (default :func:`gradcheck.check` with ``reference=None`` and ``args=``, the numerical truth).
    ``key``: what identifies ``fn`` across calls (default ``fn``): the same rule of the same
    key, at the same shapes, is one function, whose programs a later check finds compiled.

    Integer, boolean and key inputs of a rule are held fixed; a rule inside a loop, not reached,
    with no float input, or that cannot be isolated is not checked (``ok=None``, the reason in
    ``detail``); an exception of a sub-check is a verdict, never a crash."""
    if check is None:
        from ._pipeline import check as run  # lazily: _pipeline imports this module
    else:
        run = check
    args = tuple(args)
    with dtype_context(dtype):
        args = _cast_floats(args, dtype)
        try:
            found = rule_inputs(fn, *args)
            table = _table(jax.make_jaxpr(fn)(*args).jaxpr)
        except Exception as e:
            try:
                rules = custom_rules(fn, *args)
            except Exception:
                return []
            why = f"not checked: fn could not be evaluated at args ({_one_line(e)})"
            return [RuleVerdict(r, None, why) for r in rules]
    return [
        _check_one(
            fn,
            fn if key is None else key,
            args,
            rule,
            x,
            int(table[rule.key][1].params.get("num_consts", 0)),
            dtype,
            max_examples,
            seed,
            run,
        )
        for rule, x in found
    ]
