"""fn in float64 for the numerical path (``reference=None``): as a function of one flat point,
of one leaf at a time (:class:`~gradcheck.oracles.numerical.Block`), and its batched autodiff,
which sizes the terms a tolerance allows for and is never taken as truth."""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..oracles import numerical
from ..oracles._batched import in_chunks, row_blocks, rows_within
from ._modes import IN64
from ._rules import _subjaxprs

__all__ = ["f64_functions", "or_zeros", "term_sizes", "sign_words", "own64", "leaf_jvps", "narrows", "DRAWS"]
__all__ += ["Tier", "dot_size", "rows_of", "IN64", "Z_DOT"]

_F64: dict = {}
#: A dot test ``sum_i e_i t_i`` along a random t allows Z_DOT root-sum-squares of its terms' sizes (:func:`dot_size`).
Z_DOT = 8.0
#: Random sign directions per point that size the terms a derivative sums (their root mean square).
DRAWS = 3


def f64_functions(spec, prog):
    """fn in float64 as a function of one flat point, and its batched autodiff (for the size of
    the terms only: never as truth).  Cached per (fn, shapes)."""
    key = (spec.fn, repr(spec.shapes), spec.order)
    cache = _F64 if isinstance(spec.fn, Hashable) else None  # an unhashable callable (a dataclass instance): not cached
    if cache is not None and key in cache:
        return cache[key]
    N = prog.n_in

    def f(x):
        return jnp.ravel(spec.flat_fn(*prog.unflatten(x)))

    def block(a):  # fn of leaf a alone, the other leaves read from x as they are
        def g(x, y):
            xs = prog.unflatten(x)
            return jnp.ravel(spec.flat_fn(*xs[:a], y.reshape(xs[a].shape), *xs[a + 1 :]))

        return numerical.Block(g, int(prog.offsets[a]), int(prog.offsets[a + 1]))

    def pull(z):  # z = (x, c): the cotangent's pull-back, differentiated along x only
        x, c = z[:N], z[N:]
        return jax.vjp(f, x)[1](c)[0]

    def dot_c(z):
        x, c = z[:N], z[N:]
        return jnp.dot(c, f(x))

    def jvp1(x, t):
        return jax.jvp(f, (x,), (t,))[1]

    def vjp1(x, c):
        return jax.vjp(f, x)[1](c)[0]

    jvl = leaf_jvps(jvp1, prog)

    out = {
        "f": f,
        "leaves": [block(a) for a in range(len(prog.shapes))],
        "pull": pull,
        "dot_c": dot_c,
        # rows per call: each row's largest array (a point; a tangent per leaf) within the budget
        "values": in_chunks(jax.jit(jax.vmap(f)), rows_within(8 * N)),
        "jvl": or_zeros(in_chunks(jax.jit(jax.vmap(jvl)), rows_within(8 * N * len(prog.shapes)))),
        "vj1": or_zeros(in_chunks(jax.jit(jax.vmap(vjp1)), rows_within(8 * N))),
        "sizes": term_sizes(jvp1, vjp1, N, prog.n_out, jax.vmap),
    }
    if cache is not None:
        cache[key] = out
    return out


def _signs(words, n: int):
    """Random signs (+-1, float64), (draws, n), unpacked from (draws, >= n/32) random uint32
    words: 32 signs a word, the words drawn by NumPy outside the program (a JAX random key's
    hashing compiled in 0.8 s, more than the sizes ran; one word per sign would be 32x the draws)."""
    D = words.shape[0]
    b = (words[:, :, None] >> jnp.arange(32, dtype=jnp.uint32)) & 1
    return 2.0 * b.reshape(D, -1)[:, :n].astype(jnp.float64) - 1.0


def sign_words(seed, B: int, n_in: int, n_out: int) -> np.ndarray:
    """The random words of :func:`term_sizes`'s directions for B points: (B, 3, DRAWS, words)."""
    w = -(-max(n_in, n_out, 1) // 32)
    return np.random.default_rng(seed).integers(0, 2**32, size=(B, 3, DRAWS, w), dtype=np.uint32)


def term_sizes(jvp1, vjp1, n_in: int, n_out: int, each):
    """``sizes(X, words, kinds)``: per point, the root mean square over :data:`DRAWS` random sign
    directions (Rademacher: the same mean square as normal ones) of fn's own autodiff in float64,
    which sizes the terms its derivatives sum (never taken as truth): ``jv`` J r (per output),
    ``cz`` J (r * x) (the terms of the values), ``vj`` c^T J (per input), ``hs`` the derivative of
    c^T J along r (order 2).  The signs are unpacked inside the programs from ``words``
    (:func:`sign_words`), never passed as (points, draws, n) arrays.  ``each(g)`` maps ``g`` over a
    leading axis: ``jax.vmap``, or a ``lax.map`` where fn's batching is not trusted.  Zeros where
    fn's autodiff cannot run (:func:`or_zeros`)."""
    N, K = n_in, n_out

    def signs_of(w):
        return _signs(w[0], N), _signs(w[1], K), _signs(w[2], N)

    def rms(A):
        return jnp.sqrt(jnp.mean(jnp.where(jnp.isfinite(A), A, 0.0) ** 2, axis=0))

    def fwd(x, s):
        tr, _, z = signs_of(s)
        return rms(each(lambda t: jvp1(x, t))(tr)), rms(each(lambda t: jvp1(x, t))(z * x))

    def rev(x, s):
        return rms(each(lambda c: vjp1(x, c))(signs_of(s)[1]))

    def hess(x, s):
        tr, cr, _ = signs_of(s)
        return rms(each(lambda t, c: jax.jvp(lambda y: vjp1(y, c), (x,), (t,))[1])(tr, cr))

    rows = rows_within(8 * max(N, K) * DRAWS)  # a row's sign directions, one of each kind at a time
    progs = {k: in_chunks(jax.jit(each(g)), rows) for k, g in (("fwd", fwd), ("rev", rev), ("hess", hess))}
    widths = {"jv": K, "cz": K, "vj": N, "hs": N}

    failed: set[str] = set()  # programs fn's autodiff cannot run: not traced again on every call

    def sizes(X, words, kinds):
        out = {}
        for prog, names in (("fwd", ("jv", "cz")), ("rev", ("vj",)), ("hess", ("hs",))):
            if any(n in kinds for n in names):
                if prog not in failed:
                    try:
                        with jax.enable_x64(True):
                            got = progs[prog](X, words)
                        got = got if isinstance(got, tuple) else (got,)
                        out.update({n: np.asarray(v) for n, v in zip(names, got)})
                        continue
                    except Exception:  # fn's autodiff cannot run there: no term size beyond the truth
                        failed.add(prog)
                out.update({n: np.zeros((X.shape[0], widths[n])) for n in names})
        return out

    return sizes


def or_zeros(g):
    """g, or zeros where fn's own autodiff cannot run (a custom_vjp has no JVP; a rule not
    linear in its tangent cannot be transposed): these only size the tolerance, never judge."""

    def run(x, d, *more):
        try:
            return np.asarray(g(x, d, *more))
        except Exception:
            return np.zeros(d.shape[:2] + (0,))

    return run


def leaf_jvps(jvp1, prog, each=jax.vmap):
    """``(x, t) -> (leaves, K)``: fn's JVP along the part of t in each leaf, the leaves' tangents
    mapped by ``each`` (vmap: the primal computed once; ``lax.map`` where fn's batching is not
    trusted)."""
    j = np.arange(prog.n_in)
    masks = np.asarray([(j >= a) & (j < b) for a, b in zip(prog.offsets[:-1], prog.offsets[1:])], np.float64)
    return lambda x, t: each(lambda m: jvp1(x, t * m))(masks)


def own64(fns, X, T, C, modes) -> dict:
    """fn's own float64 derivatives at float64 points (B, N): ``jvp`` per leaf along its part
    of T (B, leaves, K), ``vjp`` of C (B, N); those of ``modes`` that fn's autodiff can run
    (the ``jvl`` and ``vj1`` programs of :func:`f64_functions`)."""
    out = {}
    with jax.enable_x64(True):
        for mode, name, D in (("jvp", "jvl", T), ("vjp", "vj1", C)):
            if mode in modes:
                got = np.asarray(fns[name](X, D))
                if got.size:
                    out[mode] = got
    return out


_NARROW = ("float32", "float16", "bfloat16")


def narrows(f, n_in: int, n_out: int) -> bool:
    """Whether fn, traced in float64 (its value, JVP and VJP), computes any value in a narrower
    float (a cast to float32, a float32 callback): its float64 derivatives then carry that
    dtype's rounding and are not judged at float64's tolerance."""

    def narrow(jaxpr) -> bool:
        for eqn in jaxpr.eqns:
            if any(str(getattr(v.aval, "dtype", "")) in _NARROW for v in eqn.outvars):
                return True
            if any(narrow(sub) for _, _, sub, _ in _subjaxprs(eqn)):
                return True
        return False

    with jax.enable_x64(True):
        x = jax.ShapeDtypeStruct((n_in,), jnp.float64)
        c = jax.ShapeDtypeStruct((n_out,), jnp.float64)
        for g, args in (
            (f, (x,)),
            (lambda x, t: jax.jvp(f, (x,), (t,))[1], (x, x)),
            (lambda x, c: jax.vjp(f, x)[1](c)[0], (x, c)),
        ):
            try:
                jaxpr = jax.make_jaxpr(g)(*args).jaxpr
            except Exception:  # a mode fn's autodiff cannot run: nothing of it to judge
                continue
            if narrow(jaxpr):
                return True
    return False


class Tier(NamedTuple):
    """The dtype a set of fn's results is judged in, and its tolerance."""

    dtype: str
    atol: float
    rtol: float
    eps: float


def dot_size(a, t):
    """The size of ``sum_i e_i t_i`` where ``|e_i| <= a_i`` (rounding or an allowance, fixed
    before the random tangent t is drawn): ``sum a_i |t_i|``, or where smaller ``Z_DOT *
    sqrt(sum (a_i t_i)^2)``.  The signs of t are independent of e, so Hoeffding's inequality
    bounds the sum's chance of exceeding the second by ``2 exp(-Z_DOT^2 / 2)`` (3e-14): a row of
    49,152 entries (normal t) allows 22x less than the worst case, not more than its rounding can make."""
    if not np.any(a):  # no allowance (the first pass's zero rounding)
        return np.zeros(np.shape(t)[:-1] + (1,))
    a, t = np.broadcast_arrays(a, t)
    if a.ndim < 2:
        return _dot_size(a, t)
    lead, n = a.shape[:-1], a.shape[-1]
    a, t = a.reshape(-1, n), t.reshape(-1, n)
    out = np.concatenate([_dot_size(a[b], t[b]) for b in row_blocks(a.shape[0], n)])  # a few rows at a time
    return out.reshape(lead + (1,))


def _dot_size(a, t):
    at = a * np.abs(t)
    l2 = np.sqrt(np.einsum("...i,...i->...", at, at))[..., None]
    return np.minimum(np.sum(at, axis=-1, keepdims=True), Z_DOT * l2)


def rows_of(tr: dict, idx) -> dict:
    """The truths of some rows (each array, and each Estimate field, indexed by ``idx``)."""
    pick = lambda v: (
        numerical.Estimate(*(a[idx] for a in (v.value, v.error, v.converged)))
        if isinstance(v, numerical.Estimate)
        else ({k: a[idx] for k, a in v.items()} if isinstance(v, dict) else v[idx])
    )
    return {k: pick(v) for k, v in tr.items()}
