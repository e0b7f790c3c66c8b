"""Stage 3 of a check: ``fn`` and its derivatives over a batch, as one jitted, vmapped program.

There is one compiled program per (fn, leaf shapes, order, dtype, path, batch size); the
reference side is NumPy (no compilation), so a small check compiles exactly once.

* ``entries`` path: ``value``, ``jacfwd``, ``jacrev``, ``jvp`` along a random tangent per
  leaf, ``vjp`` along a random cotangent, and with ``order=2`` three full Hessians.
* ``probes`` path (large inputs): ``value``, ``jvp`` per leaf, ``vjp``, and with ``order=2`` the
  Hessian-vector products ``hvp fwd-over-rev`` (jvp of the vjp) and ``hvp rev-over-rev`` (vjp of
  the vjp), and ``fwd-over-fwd`` (the second directional derivative along two tangents).  Nothing
  n x n is formed: O(n) per point.

A mode that JAX itself cannot run for ``fn`` (forward mode of a ``custom_vjp``, reverse mode
through a ``custom_vmap`` or a ``while_loop``) is *skipped*, with the reason (``skipped``);
any other error of a mode is a finding about ``fn`` (``broken``).  A program whose batching
rule was found wrong (:mod:`._batching`) is built ``unbatched``: every point, and every basis
vector of a Jacobian, runs one at a time (``lax.map``), never under ``vmap``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import sharding
from ._modes import mode_of

__all__ = ["Program", "program"]

_CUSTOM_VJP_NO_FWD = "can't apply forward-mode autodiff (jvp) to a custom_vjp function"
#: Limitations of JAX itself, not of the function's rules: the mode is skipped, not failed.
_JAX_LIMITS = (
    "Reverse-mode differentiation does not work for lax.while_loop",
    "Reverse-mode differentiation does not work for lax.fori_loop",
)
#: what JAX raises for reverse mode through an operation with no transpose (a custom_vmap)
_NO_LINEARIZE = "Linearization failed to produce known values for all output primals"
#: the program keys (see :func:`program`) whose batching rule this check found wrong
_UNBATCHED: contextvars.ContextVar[set | frozenset] = contextvars.ContextVar("gradcheck_unbatched", default=frozenset())


def _jacfwd_seq(g: Callable) -> Callable:
    """``jax.jacfwd`` without vmap: one JVP per basis vector, in a loop (``lax.map``)."""

    def jac(x):
        cols = jax.lax.map(lambda e: jax.jvp(g, (x,), (e,))[1], jnp.eye(x.size, dtype=x.dtype))
        return jnp.moveaxis(cols, 0, -1)

    return jac


def _jacrev_seq(g: Callable) -> Callable:
    """``jax.jacrev`` without vmap: one VJP per output entry, in a loop (``lax.map``)."""

    def jac(x):
        y, pull = jax.vjp(g, x)
        rows = jax.lax.map(lambda c: pull(c.reshape(y.shape))[0], jnp.eye(y.size, dtype=y.dtype))
        return rows.reshape(y.shape + x.shape)

    return jac


class Program:
    """``fn`` and its derivatives over a batch of flat inputs, in the requested dtype."""

    def __init__(self, fn, shapes, arg_of, order, dtype, n_out, path, unbatched=False, key=None):
        self.fn, self.shapes, self.order, self.dtype, self.path = fn, shapes, order, dtype, path
        self.unbatched, self.key = unbatched, key
        self.sizes = [int(np.prod(s)) if s else 1 for s in shapes]
        self.offsets = np.cumsum([0] + self.sizes)
        self.n_in, self.n_out = int(self.offsets[-1]), n_out
        self.arg_of = arg_of
        self.notes: dict[str, str] = {}  # modes skipped or raising, in words
        self.broken: dict[str, str] = {}  # mode -> error raised while tracing it
        self.skipped: dict[str, str] = {}  # mode -> why JAX cannot run it for fn
        self.batching = ""  # the batching check's verdict, in words (:mod:`._batching`)
        self._fns: dict[str, Callable] = {}
        self._jitted: dict[int, Callable] = {}
        self._memo: tuple | None = None  # one batch and its outputs, for the sweep's first call
        self._by_point: dict[tuple, Callable] = {}
        self._build()

    def unflatten(self, x):
        return [x[self.offsets[i] : self.offsets[i + 1]].reshape(s) for i, s in enumerate(self.shapes)]

    def flat_fn(self, x):
        return jnp.ravel(self.fn(*self.unflatten(x)))

    def _candidates(self, path=None, order=None):
        path, order = path or self.path, order or self.order
        f = self.flat_fn
        jacfwd, jacrev = (_jacfwd_seq, _jacrev_seq) if self.unbatched else (jax.jacfwd, jax.jacrev)
        masks = [jnp.asarray((self.arg_of == a).astype(np.float64)) for a in range(len(self.shapes))]

        def jvps(x, t):
            return jnp.stack([jax.jvp(f, (x,), (t * m.astype(t.dtype),))[1] for m in masks])

        def pullback(y, c):
            return jax.vjp(f, y)[1](c)[0]

        cands = {
            "value": lambda x, t, c, s: f(x),
        }
        if path == "entries":
            cands["jacfwd"] = lambda x, t, c, s: jacfwd(f)(x)
        cands["jvp"] = lambda x, t, c, s: jvps(x, t)
        if path == "entries":
            cands["jacrev"] = lambda x, t, c, s: jacrev(f)(x)
        cands["vjp"] = lambda x, t, c, s: pullback(x, c)
        if order == 2 and path == "entries":
            cands["hessian fwd-over-rev"] = lambda x, t, c, s: jacfwd(jacrev(f))(x)
            cands["hessian rev-over-rev"] = lambda x, t, c, s: jacrev(jacrev(f))(x)
            cands["hessian fwd-over-fwd"] = lambda x, t, c, s: jacfwd(jacfwd(f))(x)
        elif order == 2:
            cands["hvp fwd-over-rev"] = lambda x, t, c, s: jax.jvp(lambda y: pullback(y, c), (x,), (t,))[1]
            cands["hvp rev-over-rev"] = lambda x, t, c, s: jax.vjp(lambda y: pullback(y, c), x)[1](t)[0]
            cands["fwd-over-fwd"] = lambda x, t, c, s: jax.jvp(lambda y: jax.jvp(f, (y,), (t,))[1], (x,), (s,))[1]
        return cands

    def _build(self):
        """Every candidate mode, traced with the others in one program when it first runs
        (:meth:`run`): a mode that JAX cannot trace or run is found then (:meth:`_isolate`),
        not by tracing each mode apart beforehand, which traced every mode twice (a quarter of
        a small check's cold time)."""
        self._fns = dict(self._candidates())

    def _classify(self, name: str, e: Exception) -> None:
        """A mode JAX refused: skipped where it is JAX's limit (a custom_vjp has no forward
        mode, a custom_vmap or a while_loop no reverse mode), else a finding about fn; without
        its value nothing can be checked."""
        msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if name == "value":
            raise e
        why = other = ""
        if _CUSTOM_VJP_NO_FWD in str(e) and mode_of(name).jvp:
            why, other = "fn is a jax.custom_vjp function, which has no forward mode", "reverse mode checked"
        elif _NO_LINEARIZE in str(e) and mode_of(name).vjp:
            from ._batching import no_reverse_mode  # lazily: _batching builds on this module

            why, other = no_reverse_mode(self), "forward mode checked"
        elif any(lim in str(e) for lim in _JAX_LIMITS):
            why = "a limitation of JAX, not of fn's rules: no reverse mode through a lax.while_loop"
            other = "forward mode checked"
        if why:
            self.skipped[name] = why
            family = {"jacfwd": "forward mode", "jvp": "forward mode", "jacrev": "reverse mode", "vjp": "reverse mode"}
            said = f"skipped: {why} (JAX raises {msg.split('. ')[0].rstrip('.')})" + (f"; {other}" if other else "")
            self.notes.setdefault(family.get(name, name), said if name in family else f"skipped: {why}")
        else:
            self.broken[name] = msg
            self.notes[name] = f"raised while tracing, compiling or running: {msg}"
        del self._fns[name]

    @property
    def modes(self) -> dict[str, str]:
        """What ran, in words: the modes of each family, and those skipped or raising."""
        out = dict(self.notes)
        fwd = [m for m in ("jacfwd", "jvp") if m in self._fns]
        rev = [m for m in ("jacrev", "vjp") if m in self._fns]
        if fwd:
            out["forward mode"] = " + ".join(fwd) + " (jvp along a random tangent per argument leaf)"
        if rev:
            out["reverse mode"] = " + ".join(rev) + " (vjp along a random cotangent, compared entry by entry)"
        if self.order == 2:
            hs = [m for m in self._fns if mode_of(m).order == 2]
            shown = [h.split(" ", 1)[1] if h.startswith("hessian") else h for h in hs]
            out["second order"] = ", ".join(shown) if hs else "no second-order mode could be traced"
        if self.batching:
            out["batching"] = self.batching
        return out

    @property
    def names(self):
        return list(self._fns)

    def mode_fn(self, mode: str) -> Callable:
        """Mode ``mode`` at one point, ``g(x, t, c, s)``, unjitted (the diagnosis runs it eagerly)."""
        return self._fns[mode]

    def _over_batch(self, g: Callable) -> Callable:
        """A per-point function over a batch: vmapped, or one point at a time when unbatched."""
        if self.unbatched:
            return lambda *A: jax.lax.map(lambda a: g(*a), A)
        return jax.vmap(g)

    def run(self, X, T, C, S, remember=False):
        """Every mode at every row.  ``remember``: keep this batch's outputs for the next call
        with the same arrays (the batching check runs the sweep's first batch; the sweep then
        reuses it)."""
        memo, self._memo = self._memo, None
        if memo is not None and not any(isinstance(A, jax.core.Tracer) for A in (X, T, C, S)):
            if all(np.array_equal(np.asarray(A), B) for A, B in zip((X, T, C, S), memo[0])):
                return memo[1]
        B = X.shape[0]
        prog = self._jitted.get(B)
        if prog is None:
            fns = self._fns
            over = self._over_batch

            def batched(X, T, C, S):
                return {k: over(g)(X, T, C, S) for k, g in fns.items()}

            prog = self._jitted[B] = jax.jit(batched)
        try:
            out = prog(X, T, C, S)
        except Exception:
            if not self._isolate(X, T, C, S):
                raise
            return self.run(X, T, C, S, remember)
        if remember:
            self._memo = (tuple(np.asarray(A) for A in (X, T, C, S)), out)
        return out

    def by_point(self, modes: tuple[str, ...], x, t, c, s) -> dict:
        """The directional ``modes`` (``value``, ``jvp`` along all of t, ``vjp``, ``hvp
        fwd-over-rev``, ``hvp rev-over-rev``, ``fwd-over-fwd``) at one point, never under vmap:
        one small program per tuple of modes, compiled without XLA's optimisations (it runs
        at a handful of points; compiling is most of its cost)."""
        g = self._by_point.get(modes)
        if g is None:
            cands = self._candidates("probes", 2 if any("over" in m for m in modes) else 1)
            cands["jvp"] = lambda x, t, c, s: jax.jvp(self.flat_fn, (x,), (t,))[1]
            fns = {m: cands[m] for m in modes}
            one = lambda x, t, c, s: {m: h(x, t, c, s) for m, h in fns.items()}
            g = self._by_point[modes] = jax.jit(one, compiler_options={"xla_backend_optimization_level": 0})
            try:
                return g(x, t, c, s)
            except Exception:  # a backend without that option
                g = self._by_point[modes] = jax.jit(one)
        return g(x, t, c, s)

    def _isolate(self, X, T, C, S) -> bool:
        """Find the modes that JAX cannot trace, compile or run (exp1's Hessian under jit raises
        a TypeError from XLA lowering although it traces) and classify them (:meth:`_classify`);
        the program is rebuilt without them."""
        found = False
        for name, g in list(self._fns.items()):
            try:
                jax.jit(self._over_batch(g))(X, T, C, S)
            except Exception as e:
                self._classify(name, e)
                found = True
        if found:
            self._jitted.clear()
        return found


_PROGRAMS: dict[tuple, Program] = {}


def program(fn, shapes, arg_of, order, dtype, n_out, path, key=None) -> Program:
    """Compiled programs are cached per (fn, shapes, order, dtype, path): a second check is warm.
    Within a check that found fn's batching rule wrong (:func:`unbatched`), the unbatched one."""
    key = key if key is not None else fn
    try:
        unb = key in _UNBATCHED.get()
        full = (key, tuple(shapes), order, dtype, path, unb)
        return _PROGRAMS[full]
    except KeyError:
        prog = _PROGRAMS[full] = Program(fn, shapes, arg_of, order, dtype, n_out, path, unb, key)
        return prog
    except TypeError:  # an unhashable callable: its batching can be judged per check only
        return Program(fn, shapes, arg_of, order, dtype, n_out, path, False, key)


class unbatched:
    """``with unbatched():`` a check's scope; :meth:`add` makes :func:`program` give the
    unbatched program of a key until the scope ends."""

    def __enter__(self):
        self._token = _UNBATCHED.set(set())
        return self

    def __exit__(self, *exc):
        _UNBATCHED.reset(self._token)

    @staticmethod
    def add(key) -> None:
        keys = _UNBATCHED.get()
        if isinstance(keys, set):
            try:
                keys.add(key)
            except TypeError:  # an unhashable fn: the caller builds its unbatched program itself
                pass


def run_sharded(prog, X, T, C, S):
    """Run a program over the batch, its rows split over all devices when there are several.

    Returns (outputs, split) where split is :meth:`gradcheck.sharding.SweepInfo.record` or None
    on one device (the program then runs directly: no resharding cost).
    """
    if sharding.device_count() <= 1:
        return prog.run(X, T, C, S), None
    out, info = sharding.map_rows(prog.run, X, T, C, S, return_info=True)
    return out, info.record()
