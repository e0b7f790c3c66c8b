"""The custom rules of ``fn`` (``jax.custom_jvp`` / ``jax.custom_vjp``), read from its jaxpr, and
each checked on its own at the inputs it received.

Whether ``fn`` holds a custom rule is a fact of its jaxpr: a ``custom_jvp_call`` or
``custom_vjp_call`` equation, at the top level or nested in the jaxprs of other equations'
params (``jit``, ``closed_call``, ``checkpoint``, ``cond`` branches, ``scan``/``while`` bodies,
other custom rules' ``call_jaxpr``).  JAX 0.10 names the rule by the function it was defined on
in ``eqn.params["call_jaxpr"].jaxpr.debug_info`` (``func_src_info = "my_act at file.py:12"``,
whose first word is ``func_name``); a ``jit`` equation carries ``params["name"]``.

* :func:`custom_rules` lists them, :func:`describe` words them for a report;
* :func:`interpret` evaluates ``fn``'s jaxpr and records each rule's concrete inputs
  (:func:`rule_inputs`); :func:`rule_function` makes one rule's equation a callable;
* :mod:`._rule_check` checks each rule with the numerical-truth check, around its inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

__all__ = ["Rule", "custom_rules", "rules_in", "describe", "interpret", "rule_inputs", "rule_function"]

_CUSTOM = {"custom_jvp_call": "custom_jvp", "custom_vjp_call": "custom_vjp"}
_LOOPS = ("scan", "while")
#: equations whose sub-jaxpr the interpreter steps into (when it holds a rule): their inputs
#: are the sub-jaxpr's inputs (``cond`` after its branch index)
_CALLS = ("jit", "pjit", "closed_call", "core_call", "remat2", "checkpoint", "cond", *_CUSTOM)


@dataclasses.dataclass(frozen=True)
class Rule:
    """One custom rule of ``fn``: the function it was defined on, its kind and where it sits."""

    name: str  # the Python function's name ("attention"), or "<custom_jvp>"/"<custom_vjp>"
    kind: str  # "custom_jvp" or "custom_vjp"
    where: str  # "top level", "inside jit 'loss'", "inside jit 'loss' > scan", ...
    in_loop: bool  # inside a scan/while body: its inputs differ per iteration
    index: int  # order of first appearance in a depth-first walk of the jaxpr

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.kind, self.where)


def _rule_name(eqn: Any) -> str:
    info = getattr(eqn.params.get("call_jaxpr"), "jaxpr", None)
    info = getattr(info, "debug_info", None)
    name = getattr(info, "func_name", "") if info is not None else ""
    return name if name and name != "<unknown>" else f"<{_CUSTOM[eqn.primitive.name]}>"


def _subjaxprs(eqn: Any) -> Iterator[tuple[str, int, Any, Sequence]]:
    """(param key, position, Jaxpr, consts) of every jaxpr in the equation's params."""
    for k, v in eqn.params.items():
        for i, s in enumerate(v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(s, jcore.ClosedJaxpr):
                yield k, i, s.jaxpr, s.consts
            elif isinstance(s, jcore.Jaxpr):
                yield k, i, s, ()


def _scope(eqn: Any, key: str, i: int) -> str:
    p = eqn.primitive.name
    if p in _CUSTOM:
        return f"{_CUSTOM[p]} '{_rule_name(eqn)}'"
    if p == "cond":
        return f"cond branch {i}"
    if p == "while":
        return "while body" if key == "body_jaxpr" else "while condition"
    if p in ("remat2", "checkpoint"):
        return "checkpoint"
    name = eqn.params.get("name")
    return f"{p} '{name}'" if isinstance(name, str) and name else p


def _where(scope: tuple[str, ...]) -> str:
    return "inside " + " > ".join(scope) if scope else "top level"


def _sites(jaxpr: Any, scope: tuple[str, ...] = (), in_loop: bool = False) -> Iterator[tuple[Any, tuple, bool]]:
    """Every custom-rule equation, depth first: (eqn, scope, in_loop)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in _CUSTOM:
            yield eqn, scope, in_loop
        for key, i, sub, _ in _subjaxprs(eqn):
            yield from _sites(sub, (*scope, _scope(eqn, key, i)), in_loop or eqn.primitive.name in _LOOPS)


def _table(jaxpr: Any) -> dict[tuple[str, str, str], tuple[Rule, Any]]:
    """(name, kind, where) -> (Rule, its first equation), in order of first appearance."""
    table: dict[tuple[str, str, str], tuple[Rule, Any]] = {}
    for eqn, scope, in_loop in _sites(jaxpr):
        rule = Rule(_rule_name(eqn), _CUSTOM[eqn.primitive.name], _where(scope), in_loop, len(table))
        table.setdefault(rule.key, (rule, eqn))
    return table


def custom_rules(fn: Callable, *args: Any) -> tuple[Rule, ...]:
    """Every custom_jvp/custom_vjp rule in ``fn``'s jaxpr at these arguments (arrays or
    ShapeDtypeStructs, any pytrees), de-duplicated by (name, kind, where), in order of
    appearance; () when there is none."""
    return rules_in(jax.make_jaxpr(fn)(*args).jaxpr)


def rules_in(jaxpr: Any) -> tuple[Rule, ...]:
    """:func:`custom_rules` of a jaxpr already traced."""
    try:
        return tuple(rule for rule, _ in _table(jaxpr).values())
    except Exception:  # an equation of an unforeseen shape: no rule can be named from it
        return ()


def describe(rules: Sequence[Rule]) -> str:
    """Words for the report: "no custom rule (...)" or "2 custom rules: attention (custom_vjp), ..."."""
    if not rules:
        return "no custom rule (jaxpr holds no custom_jvp/custom_vjp)"
    parts = [f"{r.name} ({r.kind}{'' if r.where == 'top level' else ', ' + r.where})" for r in rules]
    return f"{len(rules)} custom rule{'s' if len(rules) > 1 else ''}: " + ", ".join(parts)


def _concrete(x: Any) -> Any:
    """A recorded value as NumPy (key arrays, which NumPy cannot hold, stay JAX arrays)."""
    dt = getattr(x, "dtype", None)
    if dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.extended):
        return x
    return np.asarray(x)


# JAX has no public API that reports the inputs a sub-computation (here one custom_jvp_call or
# custom_vjp_call equation, possibly nested in jit, cond, checkpoint) received during a call:
# jax.core.eval_jaxpr evaluates a jaxpr but exposes nothing per equation, and a jit equation
# runs as one opaque compiled call.  So this small interpreter walks the jaxpr itself: each
# equation is bound as eval_jaxpr binds it, except that it steps into the sub-jaxprs that hold a
# rule (recording the rule's inputs on the way); everything else, loops included, runs as JAX
# runs it.
class _Interpreter:
    def __init__(self) -> None:
        self.seen: dict[tuple[str, str, str], tuple] = {}
        self._holds: dict[int, tuple[Any, bool]] = {}

    def holds_rule(self, jaxpr: Any) -> bool:
        hit = self._holds.get(id(jaxpr))
        if hit is None or hit[0] is not jaxpr:
            hit = self._holds[id(jaxpr)] = (jaxpr, next(_sites(jaxpr), None) is not None)
        return hit[1]

    def run(self, jaxpr: Any, consts: Sequence, args: Sequence, scope: tuple[str, ...]) -> list:
        env: dict[Any, Any] = {}

        def read(v: Any) -> Any:
            return v.val if isinstance(v, jcore.Literal) else env[v]

        env.update(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, args))
        for eqn in jaxpr.eqns:
            outs = self.eqn(eqn, [read(v) for v in eqn.invars], scope)
            env.update(zip(eqn.outvars, outs))
        return [read(v) for v in jaxpr.outvars]

    def eqn(self, eqn: Any, invals: list, scope: tuple[str, ...]) -> list:
        p = eqn.primitive.name
        if p in _CUSTOM:
            self.seen.setdefault((_rule_name(eqn), _CUSTOM[p], _where(scope)), tuple(map(_concrete, invals)))
        subs = list(_subjaxprs(eqn)) if p in _CALLS else []
        if p == "cond":
            i = min(max(int(np.asarray(invals[0])), 0), len(subs) - 1)
            key, _, sub, consts = subs[i]
            if self.holds_rule(sub):
                return self.run(sub, consts, invals[1:], (*scope, _scope(eqn, key, i)))
        elif len(subs) == 1 and (p in _CUSTOM or self.holds_rule(subs[0][2])):
            key, i, sub, consts = subs[0]
            return self.run(sub, consts, invals, (*scope, _scope(eqn, key, i)))
        with eqn.ctx.manager:
            ans = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
        return list(ans) if eqn.primitive.multiple_results else [ans]


def interpret(fn: Callable, *args: Any) -> tuple[Any, list[tuple[Rule, tuple | None]]]:
    """(``fn(*args)`` evaluated by the recording interpreter, :func:`rule_inputs`)."""
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    table = _table(closed.jaxpr)
    interp = _Interpreter()
    leaves = [_cast(a, v.aval) for a, v in zip(jax.tree_util.tree_leaves(args), closed.jaxpr.invars)]
    outs = interp.run(closed.jaxpr, closed.consts, leaves, ())
    out = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)
    found = [(rule, None if rule.in_loop else interp.seen.get(key)) for key, (rule, _) in table.items()]
    return out, found


def rule_inputs(fn: Callable, *args: Any) -> list[tuple[Rule, tuple | None]]:
    """Each custom rule of ``fn`` (as :func:`custom_rules` lists them) with the concrete inputs
    (NumPy arrays: the equation's invars, its consts included) its first occurrence received at
    these arguments; None for a rule inside a loop, or not reached (an untaken cond branch)."""
    return interpret(fn, *args)[1]


def _cast(x: Any, aval: Any) -> Any:
    dt = getattr(aval, "dtype", None)
    if dt is None or jax.dtypes.issubdtype(dt, jax.dtypes.extended):
        return x
    x = jnp.asarray(x) if not isinstance(x, jax.Array) else x
    return x if x.dtype == dt else jax.lax.convert_element_type(x, dt)


def rule_function(fn: Callable, rule: Rule, *args: Any) -> Callable:
    """A differentiable callable of the rule's inputs (positional arrays, as :func:`rule_inputs`
    gives them) that applies exactly that rule's equation (its first occurrence in ``fn``'s
    jaxpr at these arguments): ``jax.jvp``/``jax.vjp`` of it run the user's rule; forward mode
    of a custom_vjp raises, as JAX's own does.  Returns one array, or a tuple for several outputs."""
    table = _table(jax.make_jaxpr(fn)(*args).jaxpr)
    if rule.key not in table:
        raise LookupError(f"no {rule.kind} {rule.name!r} {rule.where} in fn's jaxpr at these arguments")
    eqn = table[rule.key][1]
    avals = [v.aval for v in eqn.invars]

    def apply(*xs: Any) -> Any:
        if len(xs) != len(avals):
            raise TypeError(f"rule {rule.name!r} takes {len(avals)} inputs, got {len(xs)}")
        xs = tuple(_cast(x, a) for x, a in zip(xs, avals))
        with eqn.ctx.manager:
            outs = eqn.primitive.bind(*xs, **eqn.primitive.get_bind_params(eqn.params))
        return outs[0] if len(outs) == 1 else tuple(outs)

    apply.__name__ = rule.name
    return apply
