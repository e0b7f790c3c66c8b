"""``reference=None``: checks with no closed form, the truth taken from ``fn`` itself.

* Values: for a float32 check, the same function evaluated in float64 (for a float64 check
  there is nothing independent to compare the values with: they are not judged).
* Derivatives: Richardson-extrapolated central differences of ``fn`` in float64 along the same
  random directions the probes use (:func:`gradcheck.oracles.numerical.directional_derivative`), each
  with an error bound.  The JVP per leaf along its tangent; the VJP through the dot test
  ``vjp(c) . t`` against ``c . (d/dt f)``, and where that fails, the whole pulled-back row at that
  point entry by entry (so the failure names its input entry); with ``order=2`` the derivative of
  the float64 gradient pull-back along t (Hessian-vector products) and the mixed second
  difference for forward-over-forward.
* A disagreement is a failure only when it exceeds the dtype's tolerance *plus* ten times the
  truth's error bound.  Where the float64 function is not finite or the extrapolation does not
  settle (a kink, a pole), the point is counted as not judged, with the reason.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..oracles import numerical
from ._engine import Engine

__all__ = ["NumericEngine", "NoReference", "MARGIN"]

#: A disagreement must exceed the tolerance plus MARGIN times the truth's error bound.
MARGIN = 10.0
_DRAWS = 3
_LOCALISE_ROWS = 4  # points per check whose VJP row is differenced entry by entry


class NoReference:
    """What the sampler and the engine need of a reference, when there is none."""

    kinks: list = []
    jumps = False

    def __init__(self, leaf_shapes, n_out):
        sizes = [int(np.prod(s)) if s else 1 for s in leaf_shapes]
        self.arg_of = np.repeat(np.arange(len(sizes)), sizes)
        self.n_in, self.n_out = int(sum(sizes)), n_out
        self.out_shape = (n_out,)

    def kink_solvers(self):
        return []


_F64: dict = {}


def _f64_functions(spec, prog):
    """fn in float64 as a function of one flat point, and its batched autodiff (for the size of
    the terms only: never as truth).  Cached per (fn, shapes)."""
    key = (spec.fn, repr(spec.shapes), spec.order)
    if key in _F64:
        return _F64[key]
    N = prog.n_in

    def f(x):
        return jnp.ravel(spec.flat_fn(*prog.unflatten(x)))

    def pull(z):  # z = (x, c): the cotangent's pull-back, differentiated along x only
        x, c = z[:N], z[N:]
        return jax.vjp(f, x)[1](c)[0]

    def dot_c(z):
        x, c = z[:N], z[N:]
        return jnp.dot(c, f(x))

    def jv(x, tr):
        return jax.vmap(lambda t: jax.jvp(f, (x,), (t,))[1])(tr)

    def vj(x, cr):
        return jax.vmap(lambda c: jax.vjp(f, x)[1](c)[0])(cr)

    def hscale(x, tr, cr):
        return jax.vmap(lambda t, c: jax.jvp(lambda y: jax.vjp(f, y)[1](c)[0], (x,), (t,))[1])(tr, cr)

    out = {
        "f": f,
        "pull": pull,
        "dot_c": dot_c,
        "values": jax.jit(jax.vmap(f)),
        "jv": _or_zeros(jax.jit(jax.vmap(jv))),
        "vj": _or_zeros(jax.jit(jax.vmap(vj))),
        "hscale": _or_zeros(jax.jit(jax.vmap(hscale))),
    }
    _F64[key] = out
    return out


def _or_zeros(g):
    """g, or zeros where fn's own autodiff cannot run (a custom_vjp has no JVP; a rule not
    linear in its tangent cannot be transposed): these only size the tolerance, never judge."""

    def run(x, d, *more):
        try:
            return np.asarray(g(x, d, *more))
        except Exception:
            return np.zeros(d.shape[:2] + (0,))

    return run


class NumericEngine(Engine):
    """The truth from ``fn`` itself: float64 values and extrapolated differences."""

    path = "numerical"

    def __init__(self, spec, ref, prog):
        super().__init__(spec, ref, prog)
        self.fns = _f64_functions(spec, prog)
        self.masks = np.stack([(ref.arg_of == a).astype(np.float64) for a in range(len(spec.leaf_shapes))])
        self.unjudged: dict[str, int] = {}
        self.bounds: list[float] = []
        self.localised = 0

    def _judge(self, mode, got, est, mag, conv, f=1.0):
        """(bad, err, exp, got) per entry; counts what could not be judged."""
        sp_ = self.spec
        g = np.asarray(got, np.float64).reshape(est.value.shape)
        with np.errstate(all="ignore"):
            diff = np.abs(g - est.value)
            tol = f * (sp_.atol + sp_.rtol * np.abs(mag)) + MARGIN * est.error
            ok_conv = conv & np.isfinite(est.value)
            bad = ok_conv & ~(diff <= tol)
            bad |= ok_conv & ~np.isfinite(g)
            err = np.where(est.value != 0, diff / np.abs(est.value), diff)
        big = ok_conv & (np.abs(est.value) > sp_.atol)
        rel = np.abs(est.error[big]) / np.abs(est.value[big])
        if rel.size:
            self.bounds.append(rel)
        return bad, err, est.value, g

    def _note_unjudged(self, mode, conv, count):
        if count:
            rows = int((~conv).reshape(conv.shape[0], -1).any(axis=1).sum())
            if rows:
                self.unjudged[mode] = self.unjudged.get(mode, 0) + rows

    def evaluate(self, X: np.ndarray, T=None, C=None, S=None, count=True, alone=False):
        with np.errstate(all="ignore"):  # range points: inf - inf and 0 * inf are judged, not warned
            return self._evaluate(X, T, C, S, count, alone)

    def _evaluate(self, X, T, C, S, count, alone):
        n = X.shape[0]
        if T is None:
            T, C, S = self.directions(n)
        got = self.run_fn(X, T, C, S, alone=alone)
        X64, T64, C64, S64 = (A.astype(np.float64) for A in (X, T, C, S))
        B, N = X64.shape
        K = self.ref.n_out
        fns = self.fns
        rng = np.random.default_rng([self.seed, 19, B])
        Tr = rng.normal(size=(B, _DRAWS, N))
        Cr = rng.normal(size=(B, _DRAWS, K))
        Z = rng.normal(size=(B, _DRAWS, N)) * X64[:, None, :]
        with jax.enable_x64(True):
            jv, vj, cz = fns["jv"](X64, Tr), fns["vj"](X64, Cr), fns["jv"](X64, Z)

        def rms(A, size=None):
            if A.shape[-1] == 0:  # not computable: no term size beyond the truth itself
                return np.zeros((B, size if size is not None else 1))
            return np.sqrt(np.mean(np.where(np.isfinite(A), A, 0.0) ** 2, axis=1))

        fails = []

        def add(mode, bad, err, exp, g, shape_entries):
            for r, e in zip(*np.nonzero(bad.reshape(B, -1))):
                fails.append(
                    (
                        int(r),
                        mode,
                        int(e),
                        float(exp.reshape(B, -1)[r, e]),
                        float(g.reshape(B, -1)[r, e]),
                        float(err.reshape(B, -1)[r, e]),
                    )
                )

        if "value" in got and self.dtype != "float64":
            with jax.enable_x64(True):
                v64 = np.asarray(fns["values"](X64))
            est = numerical.Estimate(v64, np.zeros_like(v64), np.isfinite(v64))
            self._note_unjudged("value", est.converged, count)
            with np.errstate(all="ignore"):
                mag = np.abs(v64) + 16 * self.eps / self.spec.rtol * rms(cz, K)
            add("value", *self._judge("value", got["value"], est, mag, est.converged), None)
        if "jvp" in got:
            A = self.masks.shape[0]
            ests = [numerical.directional_derivative(fns["f"], X64, T64 * self.masks[a]) for a in range(A)]
            val = np.stack([e.value for e in ests], 1)
            est = numerical.Estimate(
                val, np.stack([e.error for e in ests], 1), np.stack([e.converged for e in ests], 1)
            )
            self._note_unjudged("jvp", est.converged, count)
            mag = np.abs(val) + rms(jv, K)[:, None, :]
            add("jvp", *self._judge("jvp", got["jvp"], est, mag, est.converged), None)
        if "vjp" in got:
            # the dot test: vjp(c) . t against c . (d/dt f)
            Z1 = np.concatenate([X64, C64], 1)
            V1 = np.concatenate([T64, np.zeros_like(C64)], 1)
            e1 = numerical.directional_derivative(fns["dot_c"], Z1, V1)
            self._note_unjudged("vjp", e1.converged, count)
            g = np.sum(np.asarray(got["vjp"], np.float64) * T64, axis=1, keepdims=True)
            mag = np.abs(e1.value) + np.sum(rms(vj, N) * np.abs(T64), axis=1, keepdims=True)
            bad, err, exp, gg = self._judge("vjp", g, e1, mag, e1.converged)
            rows = np.flatnonzero(bad[:, 0])
            for r in rows[: (_LOCALISE_ROWS if count else 1)]:
                # the whole row at this point, entry by entry: d/dt c . f(x + t e_j)
                Zr = np.repeat(Z1[r : r + 1], N, 0)
                Vr = np.concatenate([np.eye(N), np.zeros((N, K))], 1)
                er = numerical.directional_derivative(fns["dot_c"], Zr, Vr)
                estr = numerical.Estimate(er.value.T, er.error.T, er.converged.T)
                gr = np.asarray(got["vjp"][r : r + 1], np.float64)
                br, errr, expr, grr = self._judge(
                    "vjp", gr, estr, np.abs(estr.value) + rms(vj, N)[r : r + 1], estr.converged
                )
                self.localised += 1
                for e in np.flatnonzero(br[0]):
                    fails.append((int(r), "vjp", int(e), float(expr[0, e]), float(grr[0, e]), float(errr[0, e])))
                if not br.any():
                    fails.append((int(r), "vjp.t", 0, float(exp[r, 0]), float(gg[r, 0]), float(err[r, 0])))
        if self.spec.order == 2:
            Z1 = np.concatenate([X64, C64], 1)
            V1 = np.concatenate([T64, np.zeros_like(C64)], 1)
            eh = numerical.directional_derivative(fns["pull"], Z1, V1)
            with jax.enable_x64(True):
                hs = fns["hscale"](X64, Tr, Cr)
            for mode in ("hvp fwd-over-rev", "hvp rev-over-rev"):
                if mode in got:
                    self._note_unjudged(mode, eh.converged, count)
                    mag = np.abs(eh.value) + rms(hs, N)
                    add(mode, *self._judge(mode, got[mode], eh, mag, eh.converged, self.spec.order2_factor), None)
            if "fwd-over-fwd" in got:
                e2 = numerical.mixed_second(fns["f"], X64, T64, S64)
                self._note_unjudged("fwd-over-fwd", e2.converged, count)
                add(
                    "fwd-over-fwd",
                    *self._judge(
                        "fwd-over-fwd", got["fwd-over-fwd"], e2, np.abs(e2.value), e2.converged, self.spec.order2_factor
                    ),
                    None,
                )
        return fails

    def describe(self, mode, e):
        if mode == "vjp.t":
            return None, "random cotangent pulled back and dotted with a random tangent"
        return super().describe(mode, e)

    def truth_note(self) -> str:
        b = np.concatenate(self.bounds) if self.bounds else np.zeros(1)
        parts = [
            "numerical (reference=None): "
            + (
                "values from fn in float64; "
                if self.dtype != "float64"
                else "values not judged (fn in float64 is the function itself); "
            )
            + "derivatives by Richardson-extrapolated central differences of fn in float64 along the "
            f"probes' directions; relative error bound median {np.median(b):.1e}, 99th percentile "
            f"{np.percentile(b, 99):.1e} (where the truth exceeds atol); a disagreement fails only beyond "
            f"the tolerance plus {MARGIN:g}x that bound"
        ]
        if self.localised:
            parts.append(f"; {self.localised} VJP row(s) differenced entry by entry to name the entry")
        return "".join(parts)
