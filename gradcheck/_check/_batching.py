"""Stage 3b of a check: the batching rule checked apart, and the modes JAX cannot run.

Every point of a check runs under ``vmap`` (:mod:`._program`), so a wrong batching rule would
corrupt the very numbers the check judges, and with ``reference=None`` the float64 truth too
(it is vmapped as well).  Before the sweep trusts ``vmap``:

* **Where fn's batching is its own.**  fn's jaxpr is walked (nested jaxprs included, as
  :mod:`._rules` walks it) for the equations whose batching rule is not JAX's: a
  ``custom_vmap_call`` (``jax.custom_batching.custom_vmap``), a ``pure_callback`` or
  ``ffi_call`` with a ``vmap_method`` other than ``"sequential"`` (the callback is trusted to
  handle a batch as that method says), a primitive whose batching rule is defined outside JAX.
  A jaxpr with none of them is batched by JAX's own rules, trusted as its own derivative
  rules are: nothing is compared, nothing is compiled (:func:`sites`).
* **vmap against point by point.**  Otherwise, at 4 points of the sweep's first batch, the
  vmapped program (its compiled program, on exactly the batch the sweep runs first, whose
  outputs the sweep then reuses) is compared with fn called one point at a time, never under
  vmap (one small jitted program of the directional modes: value, JVP, VJP, and with
  ``order=2`` the Hessian-vector products); a Jacobian or Hessian is compared through its
  contraction with the same random directions.  A difference beyond the dtype's tolerance,
  norm-wise per mode and point, is a failure of category ``batching`` naming the rule.
* **Then point by point.**  The rest of the check runs unbatched: its program (:func:`program`
  under :class:`._program.unbatched`: ``lax.map`` over the points and over a Jacobian's basis)
  and, with ``reference=None``, the float64 truth, whose differences are evaluated through a
  wrapper whose vmap is a ``lax.map``.  Its verdict on the derivatives then does not rest on the
  wrong rule.

:func:`no_reverse_mode` words why JAX refused reverse mode; :func:`skipped_failures` makes the
modes JAX cannot run failures under ``strict=True`` (category ``raised``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from .._x64 import dtype_context
from ._failure import Failure
from ._modes import MODES, mode_kind
from ._program import Program, program, run_sharded, unbatched
from ._rules import _subjaxprs
from ._truth64 import leaf_jvps, or_zeros, term_sizes  # the same guard and term sizes as the batched truth's

__all__ = ["Site", "sites", "check_batching", "no_reverse_mode", "skipped_failures", "mode_failure", "finish"]

ROWS = 4  # points compared, vmapped and one at a time
#: callbacks whose vmap JAX runs as a loop of its own: no assumption of the user's
_SEQUENTIAL = (None, "sequential", "sequential_unrolled")
_SITES: dict[tuple, tuple] = {}


@dataclasses.dataclass(frozen=True)
class Site:
    """An equation of fn's jaxpr whose batching rule is fn's own."""

    name: str  # the function it was defined on ("scaled_sin"), the callback's, the primitive's
    kind: str  # "custom_vmap", "pure_callback", "ffi_call" or "primitive"
    detail: str  # "rule scaled_sin_rule", "vmap_method='broadcast_all'", ...

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.detail})"


def _fname(f: Any) -> str:
    f = getattr(f, "func", f)  # functools.partial
    return str(getattr(f, "__name__", "") or type(f).__name__)


def _user_batcher(prim: Any) -> str:
    """The name of a primitive's batching rule where it is defined outside JAX, else ""."""
    try:
        from jax._src.interpreters import batching

        rule: Any = batching.fancy_primitive_batchers.get(prim)
        code = getattr(rule, "__code__", None)
        if code is not None and "batcher" in code.co_freevars and rule.__closure__:  # registered by name
            rule = rule.__closure__[code.co_freevars.index("batcher")].cell_contents
        module = str(getattr(getattr(rule, "func", rule), "__module__", "") or "")
    except Exception:
        return ""
    return _fname(rule) if rule is not None and module.split(".")[0] not in ("jax", "jaxlib") else ""


def _walk(jaxpr: Any) -> Iterator[Site]:
    for eqn in jaxpr.eqns:
        p, params = eqn.primitive.name, eqn.params
        if p == "custom_vmap_call":
            info = getattr(params["call"].jaxpr, "debug_info", None)
            name = getattr(info, "func_name", "") or "<custom_vmap>"
            yield Site(name, "custom_vmap", f"rule {_fname(params.get('rule'))}")
        elif p in ("pure_callback", "ffi_call") and params.get("vmap_method") not in _SEQUENTIAL:
            cb = params.get("callback")
            name = _fname(getattr(cb, "callback_func", cb)) if p == "pure_callback" else str(params.get("target_name"))
            yield Site(name, p, f"vmap_method={params.get('vmap_method')!r}")
        elif rule := _user_batcher(eqn.primitive):
            yield Site(p, "primitive", f"batching rule {rule}")
        for _, _, sub, _ in _subjaxprs(eqn):
            yield from _walk(sub)


def sites(prog: Program) -> tuple[Site, ...]:
    """The equations of fn's jaxpr whose batching rule is fn's own (once per fn and shapes)."""
    key = (prog.key, tuple(prog.shapes), prog.dtype)
    try:
        return _SITES[key]
    except (KeyError, TypeError):
        pass
    try:
        with dtype_context(prog.dtype):
            jaxpr = jax.make_jaxpr(prog.flat_fn)(jax.ShapeDtypeStruct((prog.n_in,), prog.dtype)).jaxpr
        found = tuple(dict.fromkeys(_walk(jaxpr)))
    except Exception:
        found = ()
    try:
        _SITES[key] = found
    except TypeError:
        pass
    return found


def no_reverse_mode(prog: Program) -> str:
    """Why JAX refused to linearize fn (reverse mode), in words."""
    held = [s for s in sites(prog) if s.kind == "custom_vmap"]
    if held:
        return (
            f"fn holds a jax.custom_batching.custom_vmap ({', '.join(s.name for s in held)}), which JAX cannot "
            "differentiate in reverse mode (it has no transpose)"
        )
    return "fn uses an operation that JAX cannot differentiate in reverse mode"


# ---- vmap against point by point -------------------------------------------------------------
def _pairs(mode: str, b: np.ndarray, u: dict, t, c, s) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(the directional mode it is compared as, batched, point by point) of one point; a
    Jacobian or Hessian through its contraction with the point's random directions, the JVPs
    per leaf summed (the leaves' tangents partition t)."""
    if mode not in MODES:
        return None
    key, got = MODES[mode].probe, b
    if mode == "jvp":
        got = b.sum(axis=0)
    elif mode == "jacfwd":
        got = np.einsum("kn,n->k", b, t)
    elif mode == "jacrev":
        got = np.einsum("kn,k->n", b, c)
    elif mode == "hessian fwd-over-rev":
        got = np.einsum("k,kij,j->i", c, b, t)
    elif mode == "hessian rev-over-rev":
        got = np.einsum("k,kij,i->j", c, b, t)
    elif mode == "hessian fwd-over-fwd":
        got = np.einsum("kij,i,j->k", b, t, s)
    if key not in u:
        return None
    return key, np.asarray(got, np.float64).reshape(-1), np.asarray(u[key], np.float64).reshape(-1)


def _differs(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> tuple[bool, int, float]:
    """(beyond rounding, the worst entry, its relative error): norm-wise over the entries that
    are finite in both, and any entry finite point by point but not under vmap."""
    both = np.isfinite(got) & np.isfinite(want)
    lost = np.isfinite(want) & ~np.isfinite(got)
    d = np.where(both, np.abs(got - want), 0.0)
    scale = max(float(np.linalg.norm(np.where(both, want, 0.0))), float(np.linalg.norm(np.where(both, got, 0.0))))
    bad = bool(lost.any()) or float(np.linalg.norm(d)) > atol * math.sqrt(max(int(both.sum()), 1)) + rtol * scale
    e = int(np.argmax(lost)) if lost.any() else int(np.argmax(d))
    err = abs(got[e] - want[e]) / abs(want[e]) if want[e] != 0 else abs(got[e] - want[e])
    return bad, e, float(err) if math.isfinite(err) else math.inf


def _compare(eng, prog: Program, X, T, C, S, n_regular: int) -> tuple[list, list, str]:
    """(rows that differ, [(mode, row, entry, expected, got, err)], what was compared)."""
    n = min(X.shape[0], eng.chunk)
    X = eng.absolute(X[:n])  # where fn runs (an args= check's perturbations added to the values)
    args = [eng._pad(A[:n], eng.chunk) for A in (X, T, C, S)]
    if jax.device_count() <= 1:  # the sweep's first batch: the sweep reuses these outputs
        Xj, Tj, Cj, Sj = (jnp.asarray(A) for A in args)
        out = prog.run(Xj, Tj, Cj, Sj, remember=True)
    else:
        out = run_sharded(prog, *(jnp.asarray(A) for A in args))[0]
    out = {k: np.asarray(v)[:n] for k, v in out.items()}
    finite = np.flatnonzero(np.isfinite(out["value"][: min(n, n_regular)]).reshape(min(n, n_regular), -1).all(1))
    rows = np.sort(np.random.default_rng([eng.seed, 43]).permutation(finite)[:ROWS])
    if not rows.size:
        raise ValueError("no point of the first batch has a finite value")
    probes = {MODES[m].probe for m in out if m in MODES}
    wanted = ["value"] + [m for m in ("jvp", "vjp") if m in probes]
    wanted += sorted(p for p in probes if MODES[p].order == 2)
    spec = eng.spec
    bad_rows, worst = [], []
    for r in rows:
        u = prog.by_point(tuple(wanted), *(jnp.asarray(A[r]) for A in (X, T, C, S)))
        u = {k: np.asarray(v) for k, v in u.items()}
        t, c, s = (np.asarray(A[r], np.float64) for A in (T, C, S))
        hit = False
        for mode, b in out.items():
            pair = _pairs(mode, np.asarray(b[r], np.float64), u, t, c, s)
            if pair is None:
                continue
            f = spec.order2_factor if mode_kind(mode) == "second-derivative" else 1.0
            bad, e, err = _differs(pair[1], pair[2], f * spec.rtol, f * spec.atol)
            if bad:
                hit = True
                worst.append((mode, pair[0], int(r), e, float(pair[2][e]), float(pair[1][e]), err))
        if hit:
            bad_rows.append(int(r))
    return bad_rows, worst, f"{', '.join(wanted)} at {rows.size} points"


def check_batching(eng, spec, X, T, C, S, n_regular: int):
    """(engine, program, [the batching failure]): the engine and program unbatched where
    fn's batching rule is wrong (:mod:`._batching`)."""
    prog = eng.prog
    found = sites(prog)
    if not found:
        prog.batching = (
            "JAX's own batching rules only (no custom_vmap, callback or primitive of fn's own): not compared"
        )
        return eng, prog, []
    try:
        bad_rows, worst, what = _compare(eng, prog, X, T, C, S, n_regular)
    except Exception as exc:
        prog.batching = f"vmap(fn) could not be compared with fn point by point ({type(exc).__name__}: {exc})"[:300]
        return eng, prog, []
    named = ", ".join(map(str, found))
    if not bad_rows:
        prog.batching = f"vmap(fn) agrees with fn called point by point ({what}; fn's own batching: {named})"
        return eng, prog, []
    modes = [m for m in prog.names if any(w[0] == m for w in worst)]
    kind = min((mode_kind(m) for m in modes), key=("value", "gradient", "second-derivative").index)
    mode, key, r, e, want, got, err = max((w for w in worst if mode_kind(w[0]) == kind), key=lambda w: w[6])
    rule = f"the batching rule of {named} is wrong" if len(found) == 1 else f"a batching rule of fn is wrong ({named})"
    unbatched.add(prog.key)
    new = program(prog.fn, prog.shapes, prog.arg_of, prog.order, prog.dtype, prog.n_out, prog.path, key=prog.key)
    if not new.unbatched:  # an unhashable fn: no cache to go through
        new = Program(prog.fn, prog.shapes, prog.arg_of, prog.order, prog.dtype, prog.n_out, prog.path, True, prog.key)
    new.batching = (
        f"WRONG ({rule}): every point of this check then ran unbatched, one at a time (lax.map), none under vmap"
    )
    eng2 = type(eng)(spec, eng.ref, new, eng.points)
    if isinstance(getattr(eng2, "fns", None), dict):  # reference=None: the float64 truth unbatched too
        eng2.fns = _unbatched_truth(new)
    failure = Failure(
        kind=kind,
        argument=None,
        argument_name=None,
        mode=", ".join(modes),
        entry=_entry(eng, mode, key, e),
        input=tuple(np.asarray(v, prog.dtype) for v in prog.unflatten(np.asarray(X[r], np.float64))),
        expected=want,
        got=got,
        error=err,
        points=len(bad_rows),
        shrunk=False,
        input_names=tuple(spec.leaf_names) if spec.pytree else (),
        confirmed_by=f"fn called point by point, without vmap (of {ROWS} points compared)",
        category="batching",
        diagnosis=f"{rule}: vmap(fn) differs from fn called one point at a time in {', '.join(modes)}; the rest of "
        "this check ran point by point (no vmap), so its verdict on the derivatives does not rest on this rule",
    )
    return eng2, new, [failure]


def _entry(eng, mode: str, key: str, e: int) -> str:
    if key == "jvp":  # along all of t: the JVPs of the leaves summed, or J t
        what = f"{eng.out_name(e)} along a random tangent ({'the leaves summed' if mode == 'jvp' else 'J t'})"
    else:
        what = eng.describe(key, e)[1] + ("" if key == mode else f" ({mode} contracted with the same directions)")
    return f"{what}: vmap(fn) against fn point by point"


def _sequential(h: Callable) -> Callable:
    """``h``, whose vmap runs it one point at a time (``lax.map``): the numerical truth vmaps it."""
    seq = custom_vmap(h)

    @seq.def_vmap
    def one_at_a_time(axis_size, in_batched, *args):
        args = tuple(a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a))) for a, b in zip(args, in_batched))
        return jax.lax.map(lambda a: h(*a), args), True

    return seq


def _unbatched_truth(prog: Program) -> dict[str, Callable]:
    """:func:`._truth64.f64_functions` without vmap: the same functions, point by point."""
    f, N = prog.flat_fn, prog.n_in
    jvp1 = lambda x, t: jax.jvp(f, (x,), (t,))[1]
    vjp1 = lambda x, c: jax.vjp(f, x)[1](c)[0]
    jvl = leaf_jvps(jvp1, prog, lambda g: lambda ms: jax.lax.map(g, ms))

    return {
        "f": _sequential(f),
        "leaves": None,  # a leaf's block is vmapped twice: the full point along a masked tangent instead
        "pull": _sequential(lambda z: vjp1(z[:N], z[N:])),
        "dot_c": _sequential(lambda z: jnp.dot(z[N:], f(z[:N]))),
        "values": jax.jit(lambda X: jax.lax.map(f, X)),
        "jvl": or_zeros(jax.jit(lambda X, T: jax.lax.map(lambda a: jvl(*a), (X, T)))),
        "vj1": or_zeros(jax.jit(lambda X, C: jax.lax.map(lambda a: vjp1(*a), (X, C)))),
        "sizes": term_sizes(jvp1, vjp1, N, prog.n_out, lambda g: lambda *a: jax.lax.map(lambda t: g(*t), a)),
    }


# ---- the modes JAX cannot run ----------------------------------------------------------------
def skipped_failures(prog: Program) -> list[Failure]:
    """Under ``strict=True``: one failure of category ``raised`` per reason a mode was skipped."""
    by_why: dict[str, list[str]] = {}
    for mode, why in prog.skipped.items():
        by_why.setdefault(why, []).append(mode)
    return [
        mode_failure(
            "second-derivative" if all(mode_kind(m) == "second-derivative" for m in modes) else "gradient",
            ", ".join(modes),
            f"skipped: JAX cannot run {'it' if len(modes) == 1 else 'them'} for fn ({why})",
            "a mode JAX itself cannot run for fn is skipped by default; strict=True counts it as a failure",
        )
        for why, modes in by_why.items()
    ]


def mode_failure(kind: str, mode: str, message: str, diagnosis: str) -> Failure:
    """A failure of a whole mode (no point, entry or value: JAX raised, or could not run it)."""
    blank = ("(whole mode)", (), math.nan, math.nan, math.inf, 0, False)
    return Failure(kind, None, None, mode, *blank, message, category="raised", diagnosis=diagnosis)


def finish(batching: list, failures: list, prog: Program, strict: bool) -> list:
    """The check's failures: the batching failure first, then the skipped modes under strict."""
    return batching + (skipped_failures(prog) if strict else []) + failures
