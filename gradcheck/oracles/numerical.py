"""Numerical truth for derivatives: extrapolated central differences in float64, with an error bound.

For a function with no closed-form reference the truth comes from the function itself,
evaluated in float64: the directional derivative ``d/dt f(x + t v)`` at ``t = 0`` (or the
second one) is estimated from central differences at a geometric sequence of steps, improved by
Richardson extrapolation, and the best entry of the extrapolation table is chosen with Ridders'
error estimate, as numdifftools and FiniteDifferences.jl do.  JAX's ``check_grads`` uses one fixed
step (1e-4) and so cannot tell rounding from a wrong derivative (jax issue 641).

Why this is written here rather than imported: numdifftools is NumPy-only, one point at a time
and not JAX-traceable; here every evaluation of every row and every step is one jitted,
vmapped call of ``f``, and the tableau runs in the same compiled program, vectorised over all
rows and all outputs.  A gradient checker evaluates 100 points of a function of thousands of
inputs; a Python loop over points and steps would dominate the run.

Algorithm (``directional_derivative``, per row ``b`` and output ``k``):

1. **Steps.**  The direction is normalised to ``|v|_inf = 1`` (the derivative is homogeneous in
   ``v`` of degree ``order``; the result is scaled back), then ``h_i = h0 / factor**i``,
   ``i = 0 .. steps-1``, with ``h0 = base_step * max(1, log1p(|x|_inf))`` rounded down to a
   power of two (so every ``h_i`` and ``c * h_i`` is exact).  The ``log1p`` scaling is
   numdifftools's default: a step proportional to ``|x|`` (0.1 * 700 at ``exp(700)``) overflows
   and is far coarser than the function's scale, one of 0.1 is too fine for rounding at
   ``|x| ~ 1e6``.  Extrapolation allows the large start; the small end (``h0 / 2**(steps-1)``)
   keeps rounding below ~1e-12 relative.
2. **Differences.**  Order 1: ``D(h) = (f(x+hv) - f(x-hv)) / 2h``; order 2:
   ``D(h) = (f(x+hv) - 2 f(x) + f(x-hv)) / h**2``.  Both expand in even powers of ``h``.
3. **Richardson / Ridders tableau.**  ``T[i,0] = D(h_i)``,
   ``T[i,j] = (c_j T[i,j-1] - T[i-1,j-1]) / (c_j - 1)`` with ``c_j = factor**(2j)``.  Each entry's
   error estimate is Ridders' ``max(|T[i,j]-T[i,j-1]|, |T[i,j]-T[i-1,j-1]|)``, widened by the
   distance to the next row's entry of the same column ``|T[i,j]-T[i+1,j]|``, plus its carried
   rounding bound (step 4); the entry with the smallest total is kept.  Ridders' own rule
   (Numerical Recipes ``dfridr``: stop at the first row whose diagonal moved by more than twice
   the best estimate) was tried first: two large steps that agree by chance then pass for
   converged (an error of 4e-2 on tanh(Wx+b) among 1,600 draws); the full table with the
   forward-looking term has none.
4. **Rounding.**  Every difference carries a rounding bound
   ``r_i = f_eps * sum_k |a_k| |f(x + c_k h_i v)| / h_i**p`` (``f`` is accurate to ``f_eps``
   relative) plus the error from rounding the shifted point ``x + h v`` itself
   (``4 eps |x|_inf / |v|_inf * |first difference| * sum_k |a_k| / h**p``); the bound is carried
   through the tableau with the same coefficients (``R[i,j] = (c R[i,j-1] + R[i-1,j-1])/(c-1)``).
   A third term is measured, not assumed: ``f``'s rounding is relative to ``|f|`` only when
   ``f`` is no cancellation of larger terms, so the noise ``sigma`` of ``f`` is read off the
   change between the last entries of the first Richardson column at the smallest steps
   (truncation there is O(h**4), negligible) and ``sigma / h_i**p`` is added to every row.
   ``error = SAFETY * (Ridders' estimate of the chosen entry) + its carried rounding bound``.
5. **Convergence** (``converged``) is False where it cannot be judged:

   * ``f(x)`` is not finite, or fewer than ``min_rows`` of the smallest steps have every needed
     value finite (large steps whose points are non-finite are dropped, from the largest down,
     so a function undefined a little way off the point is still judged by the small steps);
   * the error does not settle: ``error > settle_rtol * scale``, where ``scale`` is the largest
     of ``|value|``, the mean ``|D(h_i)|`` and ``|f(x)| (|v|_inf / max(1, |x|_inf))**order``
     (the last keeps a derivative that is zero against a large ``f`` judgeable);
   * a kink: the one-sided estimates (forward ``(f(x+hv)-f(x))/h`` and backward, each with its
     own tableau over all powers of ``h``) disagree by more than ``kink_factor`` times their
     error bounds.  Central differences are blind to a kink at the point (``|x|`` at 0 gives 0
     at every step), the one-sided ones are not;
   * a pole closer than every step: a one-sided tableau's error bound exceeds
     :data:`ONE_SIDED_RTOL` times ``scale`` (the central differences straddle the pole and
     settle to a wrong value: ``log|x|`` at ``x = 1e-12`` gives about 0 at every step).

``mixed_second`` uses polarisation: ``u'Hv = (D2_{u+v} - D2_{u-v}) / 4``, both second
directional derivatives computed in one batched call.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ._batched import Block, run_rows

__all__ = ["Block", "Estimate", "directional_derivative", "mixed_second"]

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).smallest_subnormal)

#: Largest relative error bound of a one-sided tableau at a judged point (see ``_analyse``);
#: far looser than ``settle_rtol``: one-sided differences converge more slowly than central ones.
ONE_SIDED_RTOL = 1e-3

#: Ridders' truncation estimate is a heuristic (the distance between neighbouring entries of the
#: tableau); on 28,800 random (point, direction, output) triples of tanh/sin networks it fell
#: short of the true error once, by 5%, so it is doubled.
SAFETY = 2.0


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Directional derivatives of ``B`` rows and ``K`` outputs, with error bounds.

    ``value``: (B, K) the extrapolated derivative.  ``error``: (B, K) a bound on
    ``|value - truth|`` (truncation from the tableau + carried rounding).  ``converged``: (B, K)
    bool, False where the point cannot be judged (non-finite values, an error that did not
    settle, a kink)."""

    value: np.ndarray
    error: np.ndarray
    converged: np.ndarray


# Stencils: offsets (multiples of h, center excluded), coefficients on (center, offsets), power p.
# Central ones give the estimate; the one-sided ones only serve the kink test.
_STENCILS = {
    1: {
        "offsets": (-1.0, 1.0),
        "central": (0.0, -0.5, 0.5),
        "forward": (-1.0, 0.0, 1.0),
        "backward": (1.0, -1.0, 0.0),
    },
    2: {
        "offsets": (-2.0, -1.0, 1.0, 2.0),
        "central": (-2.0, 0.0, 1.0, 1.0, 0.0),
        "forward": (1.0, 0.0, 0.0, -2.0, 1.0),
        "backward": (1.0, 1.0, -2.0, 0.0, 0.0),
    },
}


def _ridders(xp, D, R, valid, factor, powers):
    """Richardson tableau over rows ``D[i]`` (large step first), vectorised over the rest.

    ``R[i]`` bounds the rounding of ``D[i]``; ``valid[i]`` says the row may be used (valid rows
    come first).  Every extrapolated entry ``T[i,j]`` (``j >= 1``) gets Ridders' estimate
    ``max(|T[i,j]-T[i,j-1]|, |T[i,j]-T[i-1,j-1]|)``, widened by its distance to the next row's
    entry of the same column ``|T[i,j]-T[i+1,j]|`` (so two large steps that agree by chance do
    not pass for converged) and by its carried rounding bound; the entry with the smallest total
    is returned.  Entries whose next row is not usable are not candidates.  Returns (value,
    truncation estimate, rounding bound); the estimate is inf where fewer than three rows were
    usable.  ``xp`` is NumPy or jax.numpy."""
    S = D.shape[0]
    T, Rt = [[D[0]]], [[R[0]]]
    for i in range(1, S):
        row, row_r = [D[i]], [R[i]]
        for j in range(1, i + 1):
            c = factor ** powers(j)
            row.append((c * row[j - 1] - T[i - 1][j - 1]) / (c - 1.0))
            row_r.append((c * row_r[j - 1] + Rt[i - 1][j - 1]) / (c - 1.0))
        T.append(row)
        Rt.append(row_r)
    best, best_e, best_r = D[0], xp.full(D[0].shape, xp.inf), R[0]
    best_tot = best_e
    for i in range(1, S - 1):
        ok = valid[i + 1]  # valid rows are a prefix: i+1 valid means 0..i+1 valid
        for j in range(1, i + 1):
            t = T[i][j]
            e = xp.maximum(xp.abs(t - T[i][j - 1]), xp.abs(t - T[i - 1][j - 1]))
            e = xp.maximum(e, xp.abs(t - T[i + 1][j]))
            tot = e + Rt[i][j]
            take = ok & (tot < best_tot)
            best = xp.where(take, t, best)
            best_e = xp.where(take, e, best_e)
            best_r = xp.where(take, Rt[i][j], best_r)
            best_tot = xp.where(take, tot, best_tot)
    return best, best_e, best_r


def _analyse(xp, f0, fs, hs, xinf, vinf, *, order, factor, f_eps, settle_rtol, kink_factor, min_rows):
    """Differences, tableaux, error bounds and the convergence test; ``xp`` is NumPy or jnp.

    ``f0`` (B, K), ``fs`` (B, S, P, K), ``hs`` (B, S), ``xinf = max(1, |x|_inf)`` and
    ``vinf = |v|_inf`` (B,)."""
    st = _STENCILS[order]
    B, S, P, K = fs.shape
    fs = xp.moveaxis(fs, 1, 0)  # (S, B, P, K)
    hk = xp.moveaxis(hs, 1, 0)[:, :, None]  # (S, B, 1)
    hp = hk**order
    f0s = xp.broadcast_to(f0, (S, B, K))

    def combine(coef):
        acc = coef[0] * f0s
        mag = abs(coef[0]) * xp.abs(f0s)
        for k in range(P):
            if coef[k + 1] != 0.0:
                acc = acc + coef[k + 1] * fs[:, :, k]
                mag = mag + abs(coef[k + 1]) * xp.abs(fs[:, :, k])
        return acc / hp, mag / hp, sum(abs(a) for a in coef)

    # First difference at each step: rounding the shifted point x + h v moves f by about
    # |D1| * eps |x|_inf / |v|_inf.
    i_m, i_p = st["offsets"].index(-1.0), st["offsets"].index(1.0)
    d1 = (fs[:, :, i_p] - fs[:, :, i_m]) / (2.0 * hk)
    safe_v = xp.where(vinf > 0, vinf, 1.0)
    dirrel = xp.where(vinf > 0, EPS * xinf / safe_v, 0.0)[None, :, None]

    finite_step = xp.all(xp.isfinite(fs), axis=2)  # (S, B, K)
    # rows i .. S-1 all finite; large steps with a non-finite value are dropped
    suffix = xp.flip(xp.cumprod(xp.flip(finite_step, 0), axis=0), 0).astype(bool)
    n_ok = xp.sum(suffix, axis=0)  # (B, K)
    start = S - n_ok
    f0_ok = xp.isfinite(f0)
    rows = xp.arange(S)[:, None, None]
    idx = xp.minimum(start[None] + rows, S - 1)
    valid = (rows < n_ok[None]) & f0_ok[None]

    # Measured noise: f's rounding is relative to |f| only when f is no cancellation of larger
    # terms (tanh(-4) + tanh(4) is ~0 yet rounds like 1).  At the smallest steps the first
    # Richardson column's truncation is O(h**4), negligible, so what moves between its last
    # entries is noise; noise in D(h) grows as 1/h**p, so sigma = |change| * h**p, carried
    # to every step.  (The smallest steps are always usable ones: usable rows are a suffix.)
    dc0 = combine(st["central"])[0]
    c1 = factor**2
    t1 = (c1 * dc0[1:] - dc0[:-1]) / (c1 - 1.0)
    hps = hp[:, :, 0]
    sigma = xp.abs(t1[-1] - t1[-2]) * hps[-1][:, None]
    if S >= 4:
        sigma = xp.maximum(sigma, xp.abs(t1[-2] - t1[-3]) * hps[-2][:, None])
    sigma = xp.where(xp.isfinite(sigma), sigma, 0.0)

    def estimate(name, powers):
        d, mag, asum = combine(st[name])
        r = f_eps * mag + 4.0 * dirrel * xp.abs(d1) * asum / hp + sigma[None] / hp
        d = xp.where(xp.isfinite(d), d, 0.0)
        r = xp.where(xp.isfinite(r), r, 0.0)
        d = xp.take_along_axis(d, idx, axis=0)
        r = xp.take_along_axis(r, idx, axis=0)
        return _ridders(xp, d, r, valid, factor, powers), d

    (val, err_t, err_r), dc = estimate("central", lambda j: 2 * j)
    (fv, fe, fr), _ = estimate("forward", lambda j: j)
    (bv, be, br), _ = estimate("backward", lambda j: j)
    error = SAFETY * err_t + err_r

    mean_d = xp.sum(xp.where(valid, xp.abs(dc), 0.0), axis=0) / xp.maximum(n_ok, 1)
    fscale = xp.where(f0_ok, xp.abs(f0), 0.0) * ((vinf / xinf) ** order)[:, None]
    scale = xp.maximum(xp.maximum(xp.abs(val), mean_d), fscale)
    settled = xp.isfinite(error) & (error <= settle_rtol * scale)
    kink = xp.abs(fv - bv) > kink_factor * (fe + fr + be + br) + 64.0 * EPS * scale
    # A pole or a log singularity closer than every step: the central differences straddle it
    # and settle to a wrong value (log|x| at x = 1e-12: about x / h**2, nearly 0, at every
    # step), while each one-sided tableau grows as 1/h and settles to nothing.  Where f is
    # smooth on the steps' scale the one-sided tableaux settle too, if less tightly.
    one_sided = (fe + fr <= ONE_SIDED_RTOL * scale) & (be + br <= ONE_SIDED_RTOL * scale)
    converged = f0_ok & (n_ok >= min_rows) & settled & ~kink & one_sided
    return val, error, converged


_analyse_jit = jax.jit(
    functools.partial(_analyse, jnp),
    static_argnames=("order", "factor", "f_eps", "settle_rtol", "kink_factor", "min_rows"),
)

#: Above this many (row, output) pairs the analysis runs jitted (compiled once per shape);
#: below it NumPy is faster than compiling.  Measured on 2 cores: NumPy 0.23 s at 48,000 pairs
#: and 1.3 s at 160,000, the jitted analysis 1.8-2.0 s to compile (any shape) and 0.09-0.23 s
#: warm; a shape is seldom analysed more than twice in a check (a custom rule's outputs at
#: the failing point: (24, 2000) at 150,000 parameters, once).
JIT_ANALYSIS_ABOVE = 200_000


def _max_abs(A):
    """``max |A|`` per row, NaN where a row holds one, without a temporary ``|A|`` (a model's
    points are hundreds of megabytes, and each fresh array of them costs page faults)."""
    return np.maximum(np.max(A, axis=1, initial=0.0), -np.min(A, axis=1, initial=0.0))


def directional_derivative(
    f: Callable | Block,
    X,
    V,
    *,
    order: int = 1,
    steps: int = 10,
    factor: float = 2.0,
    base_step: float = 0.1,
    f_eps: float = 8 * EPS,
    settle_rtol: float = 1e-6,
    kink_factor: float = 10.0,
    min_rows: int = 4,
) -> Estimate:
    """``d/dt f(X + t V)`` (``order=1``) or ``d2/dt2`` (``order=2``) at ``t = 0``, every row.

    ``f``: a JAX-traceable function of one point (1-D array of N) to an array of K values (any
    shape, flattened; a scalar gives K = 1), evaluated in float64.  ``X``, ``V``: (B, N) points
    and directions (a 1-D array is one row).  ``steps`` steps ``h0 / factor**i`` along ``v / |v|_inf``,
    with ``h0 = base_step * max(1, log1p(|x|_inf))`` rounded down to a power of two.  ``f_eps``:
    relative accuracy assumed of ``f``'s values.  ``settle_rtol``: largest relative error
    bound still counted as converged.  ``kink_factor``: how many error bounds the one-sided
    estimates may differ by before the point is a kink.  ``min_rows``: fewest finite small
    steps needed.  All evaluations are one jitted, vmapped call (cached per ``f`` and options).
    ``f`` may be a :class:`Block` (``V`` zero outside it, or only its columns): only the block's
    entries are then built per evaluation.
    """
    if order not in _STENCILS:
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps!r}")
    if not factor > 1.0:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    V = np.atleast_2d(np.asarray(V, dtype=np.float64))
    if isinstance(f, Block) and V.shape[1:] != (f.stop - f.start,):
        V = V[:, f.start : f.stop]
    n = X.shape[1] if not isinstance(f, Block) else f.stop - f.start
    if X.ndim != 2 or V.shape != (X.shape[0], n):
        raise ValueError(f"X and V must both be (B, N); got {X.shape} and {V.shape}")
    xinf = np.maximum(1.0, _max_abs(X))
    # The derivative is homogeneous in v (degree ``order``): work with |v|_inf = 1 and scale
    # back, so tiny, subnormal or huge directions neither overflow the steps nor lose bits.
    vnorm = _max_abs(V)
    zero = ~(vnorm > 0)
    vscale = np.where(zero, 1.0, vnorm)
    V = V / vscale[:, None]
    vinf = np.where(zero, 0.0, 1.0)
    h0 = base_step * np.maximum(1.0, np.log1p(xinf)) * np.ones_like(vinf)
    h0 = np.exp2(np.floor(np.log2(h0)))
    opts = dict(
        order=order,
        factor=float(factor),
        f_eps=float(f_eps),
        settle_rtol=float(settle_rtol),
        kink_factor=float(kink_factor),
        min_rows=int(min_rows),
    )
    hs = h0[:, None] / float(factor) ** np.arange(steps)
    with jax.enable_x64(True):
        f0, fs = run_rows(f, _STENCILS[order]["offsets"], int(steps), float(factor), X, V, h0)
        if f0.size > JIT_ANALYSIS_ABOVE:
            out = _analyse_jit(f0, fs, jnp.asarray(hs), jnp.asarray(xinf), jnp.asarray(vinf), **opts)
        else:
            with np.errstate(all="ignore"):  # non-finite values are masked, not warned about
                out = _analyse(np, np.asarray(f0), np.asarray(fs), hs, xinf, vinf, **opts)
        val, err, conv = (np.array(a) for a in out)
    with np.errstate(over="ignore"):
        val = val * vscale[:, None] ** order
        # the scaling back rounds too (to a subnormal, absolutely)
        err = err * vscale[:, None] ** order + EPS * np.abs(val) + TINY
    # A zero direction: the derivative is exactly zero wherever f(x) is finite.
    if zero.any():
        f0_ok = np.isfinite(np.asarray(f0))[zero]
        val[zero], err[zero], conv[zero] = 0.0, np.where(f0_ok, 0.0, np.inf), f0_ok
    return Estimate(value=val, error=err, converged=conv)


def mixed_second(f: Callable, X, U, V, **kw) -> Estimate:
    """``d2/ds dt f(X + s U + t V)`` at 0, (B, K), by polarisation:
    ``(D2_{U+V} - D2_{U-V}) / 4`` from second directional derivatives computed in one call.
    Keywords as :func:`directional_derivative` (``order`` is fixed at 2)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    U = np.atleast_2d(np.asarray(U, dtype=np.float64))
    V = np.atleast_2d(np.asarray(V, dtype=np.float64))
    if not X.shape == U.shape == V.shape:
        raise ValueError(f"X, U, V must all be (B, N); got {X.shape}, {U.shape}, {V.shape}")
    kw.pop("order", None)
    B = X.shape[0]
    est = directional_derivative(f, np.concatenate([X, X]), np.concatenate([U + V, U - V]), order=2, **kw)
    return Estimate(
        value=(est.value[:B] - est.value[B:]) / 4.0,
        error=(est.error[:B] + est.error[B:]) / 4.0,
        converged=est.converged[:B] & est.converged[B:],
    )
