"""Stage 3 of a check: ``fn`` and its derivatives over a batch, as one jitted, vmapped program.

There is one compiled program per (fn, leaf shapes, order, dtype, path, batch size); the
reference side is NumPy (no compilation), so a small check compiles exactly once.

* ``entries`` path: ``value``, ``jacfwd``, ``jacrev``, ``jvp`` along a random tangent per
  leaf, ``vjp`` along a random cotangent, and with ``order=2`` three full Hessians.
* ``probes`` path (large inputs): ``value``, ``jvp`` per leaf, ``vjp``, and with ``order=2`` the
  Hessian-vector products ``hvp fwd-over-rev`` (jvp of the vjp) and ``hvp rev-over-rev`` (vjp of
  the vjp), and ``fwd-over-fwd`` (the second directional derivative along two tangents).  Nothing
  n x n is formed: O(n) per point.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import sharding

__all__ = ["Program", "program"]

_CUSTOM_VJP_NO_FWD = "can't apply forward-mode autodiff (jvp) to a custom_vjp function"
#: Limitations of JAX itself, not of the function's rules: the mode is skipped, not failed.
_JAX_LIMITS = (
    "Reverse-mode differentiation does not work for lax.while_loop",
    "Reverse-mode differentiation does not work for lax.fori_loop",
)
_FORWARD = ("jacfwd", "jvp", "hessian fwd-over-rev", "hessian fwd-over-fwd", "hvp fwd-over-rev", "fwd-over-fwd")


class Program:
    """``fn`` and its derivatives over a batch of flat inputs, in the requested dtype."""

    def __init__(self, fn, shapes, arg_of, order, dtype, n_out, path):
        self.fn, self.shapes, self.order, self.dtype, self.path = fn, shapes, order, dtype, path
        self.sizes = [int(np.prod(s)) if s else 1 for s in shapes]
        self.offsets = np.cumsum([0] + self.sizes)
        self.n_in, self.n_out = int(self.offsets[-1]), n_out
        self.arg_of = arg_of
        self.notes: dict[str, str] = {}  # modes skipped or raising, in words
        self.broken: dict[str, str] = {}  # mode -> error raised while tracing it
        self._fns: dict[str, Callable] = {}
        self._jitted: dict[int, Callable] = {}
        self._build()

    def unflatten(self, x):
        return [x[self.offsets[i] : self.offsets[i + 1]].reshape(s) for i, s in enumerate(self.shapes)]

    def flat_fn(self, x):
        return jnp.ravel(self.fn(*self.unflatten(x)))

    def _candidates(self):
        f = self.flat_fn
        masks = [jnp.asarray((self.arg_of == a).astype(np.float64)) for a in range(len(self.shapes))]

        def jvps(x, t):
            return jnp.stack([jax.jvp(f, (x,), (t * m.astype(t.dtype),))[1] for m in masks])

        def pullback(y, c):
            return jax.vjp(f, y)[1](c)[0]

        cands = {
            "value": lambda x, t, c, s: f(x),
        }
        if self.path == "entries":
            cands["jacfwd"] = lambda x, t, c, s: jax.jacfwd(f)(x)
        cands["jvp"] = lambda x, t, c, s: jvps(x, t)
        if self.path == "entries":
            cands["jacrev"] = lambda x, t, c, s: jax.jacrev(f)(x)
        cands["vjp"] = lambda x, t, c, s: pullback(x, c)
        if self.order == 2 and self.path == "entries":
            cands["hessian fwd-over-rev"] = lambda x, t, c, s: jax.jacfwd(jax.jacrev(f))(x)
            cands["hessian rev-over-rev"] = lambda x, t, c, s: jax.jacrev(jax.jacrev(f))(x)
            cands["hessian fwd-over-fwd"] = lambda x, t, c, s: jax.jacfwd(jax.jacfwd(f))(x)
        elif self.order == 2:
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
        mode), else a finding about fn; without its value nothing can be checked."""
        msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if name == "value":
            raise e
        if _CUSTOM_VJP_NO_FWD in str(e) and name in _FORWARD:
            self.notes.setdefault(
                "forward mode",
                "skipped: fn is a jax.custom_vjp function, which has no forward mode (jacfwd/jvp raise); reverse mode checked",
            )
        elif any(lim in str(e) for lim in _JAX_LIMITS):
            self.notes[name] = f"skipped: a limitation of JAX, not of fn's rules ({msg})"
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
            hs = [m for m in self._fns if m.startswith(("hessian", "hvp", "fwd-over"))]
            shown = [h.split(" ", 1)[1] if h.startswith("hessian") else h for h in hs]
            out["second order"] = ", ".join(shown) if hs else "no second-order mode could be traced"
        return out

    @property
    def names(self):
        return list(self._fns)

    def run(self, X, T, C, S):
        B = X.shape[0]
        prog = self._jitted.get(B)
        if prog is None:
            fns = self._fns

            def batched(X, T, C, S):
                return {k: jax.vmap(g)(X, T, C, S) for k, g in fns.items()}

            prog = self._jitted[B] = jax.jit(batched)
        try:
            return prog(X, T, C, S)
        except Exception:
            if not self._isolate(X, T, C, S):
                raise
            return self.run(X, T, C, S)

    def _isolate(self, X, T, C, S) -> bool:
        """Find the modes that JAX cannot trace, compile or run (exp1's Hessian under jit raises
        a TypeError from XLA lowering although it traces) and classify them (:meth:`_classify`);
        the program is rebuilt without them."""
        found = False
        for name, g in list(self._fns.items()):
            try:
                jax.jit(jax.vmap(g))(X, T, C, S)
            except Exception as e:
                self._classify(name, e)
                found = True
        if found:
            self._jitted.clear()
        return found


_PROGRAMS: dict[tuple, Program] = {}


def program(fn, shapes, arg_of, order, dtype, n_out, path, key=None) -> Program:
    """Compiled programs are cached per (fn, shapes, order, dtype, path): a second check is warm."""
    key = (key if key is not None else fn, tuple(shapes), order, dtype, path)
    try:
        return _PROGRAMS[key]
    except KeyError:
        prog = _PROGRAMS[key] = Program(fn, shapes, arg_of, order, dtype, n_out, path)
        return prog
    except TypeError:  # an unhashable callable
        return Program(fn, shapes, arg_of, order, dtype, n_out, path)


def run_sharded(prog, X, T, C, S):
    """Run a program over the batch, its rows split over all devices when there are several.

    Returns (outputs, split) where split is :meth:`gradcheck.sharding.SweepInfo.record` or None
    on one device (the program then runs directly: no resharding cost).
    """
    if sharding.device_count() <= 1:
        return prog.run(X, T, C, S), None
    out, info = sharding.map_rows(prog.run, X, T, C, S, return_info=True)
    return out, info.record()
