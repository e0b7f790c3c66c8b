"""Stage 2 of a check: the points.  The domain's ends, zero, +-1, points on and beside the
reference's kinks, uniform, log-uniform-magnitude and moderate draws, all from ``seed``; and
Hypothesis's own edge-case distribution, drawn up front and checked in the same batch."""

from __future__ import annotations

import functools

import hypothesis
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .._profiles import hypothesis_settings
from ._spec import TINY_INPUT

__all__ = ["sample", "hypothesis_points", "inward"]


def _specials(lo, hi, dtype) -> np.ndarray:
    tiny = 1e-30 if dtype == "float64" else 1e-12
    vals = [
        lo,
        hi,
        0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.0,
        -2.0,
        tiny,
        -tiny,
        1e-3,
        -1e-3,
        lo / 2,
        hi / 2,
        np.nextafter(lo, hi),
        np.nextafter(hi, lo),
        10.0,
        -10.0,
        100.0,
        -100.0,
    ]
    v = np.unique(np.asarray(vals, dtype=np.float64))
    return v[(v >= lo) & (v <= hi)]


def flat_domains(spec, ref) -> np.ndarray:
    """(lo, hi) of every flat input entry, (N, 2) float64: its leaf's domain."""
    return np.asarray(spec.leaf_domains, dtype=np.float64).reshape(-1, 2)[np.asarray(ref.arg_of, dtype=np.intp)]


def _kink_points(ref, domains_flat, rng, n) -> np.ndarray:
    """Points on and just beside the reference's kinks, where a kink is linear in some input."""
    rows = []
    solvers = ref.kink_solvers()
    lo, hi = domains_flat[:, 0], domains_flat[:, 1]
    for j, sol in solvers:
        for _ in range(max(1, n // (2 * max(1, len(ref.kinks))))):
            u = rng.uniform(size=lo.shape)
            base = (lo * (1 - u) + hi * u) * (10.0 ** rng.uniform(-3, 0, size=lo.shape))
            base = np.clip(base, lo, hi)
            try:
                xj = float(sol(*base))
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                continue
            for off in (0.0, 1e-6, -1e-6, 1e-3, -1e-3):
                x = base.copy()
                x[j] = xj + off * max(1.0, abs(xj))
                if lo[j] <= x[j] <= hi[j]:
                    rows.append(x)
    return np.asarray(rows).reshape(-1, ref.n_in)


def sample(ref, domains_flat, n: int, dtype: str, rng) -> np.ndarray:
    N = ref.n_in
    lo, hi = domains_flat[:, 0], domains_flat[:, 1]
    rows = [lo.copy(), hi.copy()]
    zero = np.clip(np.zeros(N), lo, hi)
    rows.append(zero)
    n_edge = max(4, n // 5)
    # per distinct (lo, hi) pair, not per entry: a model's 10^5 entries share one or two domains
    pairs, which = _pairs(lo, hi)
    table = [_specials(l, h, dtype) for l, h in pairs]
    padded = np.stack([np.resize(t, max(map(len, table))) for t in table])
    counts = np.asarray([len(t) for t in table])[which]
    for _ in range(n_edge // 2):
        # one integers call over an array of bounds draws the stream as a choice per entry does
        rows.append(padded[which, rng.integers(0, counts)])
    kink = _kink_points(ref, domains_flat, rng, n_edge)
    rows.extend(kink[:n_edge])
    n_rest = max(0, n - len(rows))
    k1, k2 = n_rest // 3, n_rest // 3
    k3 = n_rest - k1 - k2
    # lo (1 - u) + hi u: no hi - lo, which overflows for a domain of (-max, max)
    u = rng.uniform(size=(k1, N))
    uni = lo * (1 - u) + hi * u
    top = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), 1e-6)
    mag = 10.0 ** rng.uniform(-6, np.log10(top), size=(k2, N))
    logu = np.clip(mag * rng.choice([-1.0, 1.0], size=(k2, N)), lo, hi)
    mid, half = lo / 2 + hi / 2, hi / 2 - lo / 2
    moderate = np.clip(
        rng.normal(0, 1, size=(k3, N)) * np.minimum(half, 3.0) + np.where((lo <= 0) & (hi >= 0), 0.0, mid), lo, hi
    )
    X = np.vstack([np.asarray(rows).reshape(-1, N), uni, logu, moderate])[:n]
    small = (np.abs(X) < TINY_INPUT[dtype]) & (lo <= 0) & (hi >= 0)
    X = np.where(small, 0.0, X)
    return _clip_inward(X, lo, hi, dtype)


def _pairs(lo, hi):
    """The distinct (lo, hi) pairs of the entries' domains and each entry's pair.  One domain
    for every entry (a model's usual case) is told without sorting 10^5 rows twice."""
    if lo.size and np.all(lo == lo[0]) and np.all(hi == hi[0]):
        return np.asarray([[lo[0], hi[0]]]), np.zeros(lo.size, dtype=np.intp)
    pairs, which = np.unique(np.stack([lo, hi], 1), axis=0, return_inverse=True)
    return pairs, np.ravel(which)


def _clip_inward(X, lo, hi, dtype):
    """``X`` clipped to the domain rounded inward (:func:`inward`), per distinct (lo, hi) pair."""
    pairs, which = _pairs(lo, hi)
    bounds = np.asarray([inward(l, h, dtype) for l, h in pairs])[which]
    return np.clip(X, bounds[:, 0], bounds[:, 1]).astype(dtype)


def inward(lo, hi, dtype):
    """The domain rounded inward to numbers the dtype represents exactly."""
    d = np.dtype(dtype).type
    l, h = d(lo), d(hi)
    if float(l) < lo:
        l = np.nextafter(l, d(np.inf))
    if float(h) > hi:
        h = np.nextafter(h, d(-np.inf))
    return float(l), float(h)


def _strategy(shapes, domains, dtype):
    width = 64 if dtype == "float64" else 32
    tiny = TINY_INPUT[dtype]
    parts = []
    for s, (lo, hi) in zip(shapes, domains):
        lo, hi = inward(lo, hi, dtype)
        el = st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False, allow_subnormal=False)
        el = el.map(lambda v, lo=lo, hi=hi: v if abs(v) >= tiny or not (lo <= 0.0 <= hi) else 0.0)
        n = int(np.prod(s)) if s else 1
        if s == ():
            parts.append(el)
        elif n <= _SPRINKLED:
            # fill: a large array is a background value with drawn entries sprinkled in (Hypothesis's
            # own way to keep big arrays within its buffer), not 1,000 independent draws
            parts.append(hnp.arrays(np.dtype(dtype), s, elements=el, fill=el))
        else:
            # a model's leaf: the same background value with a few drawn entries, their number
            # drawn by Hypothesis's lists rather than growing as sqrt(n) as hnp.arrays' does
            # (358 draws for a 128,000-entry leaf: 6 s of a 60-example sample at 150,000 parameters)
            pairs = st.lists(st.tuples(st.integers(0, n - 1), el), max_size=_SPRINKLES)
            parts.append(st.builds(functools.partial(_sprinkled, s, dtype), el, pairs))
    return st.tuples(*parts)


#: Leaves above this many entries get at most _SPRINKLES drawn entries on a drawn background
#: (:func:`_strategy`).
_SPRINKLED, _SPRINKLES = 1024, 64


def _sprinkled(shape, dtype, fill, pairs):
    a = np.full(int(np.prod(shape)), fill, dtype=dtype)
    for i, v in pairs:
        a[i] = v
    return a.reshape(shape)


def hypothesis_points(shapes, domains, dtype: str, n: int, seed: int) -> np.ndarray:
    """``n`` points drawn by Hypothesis's strategies (its boundaries, near-boundaries and
    special floats), as flat rows.  Hypothesis runs as a *sampler*: the test body only records
    what was drawn, so no JAX call happens per example and every point joins the one batched
    sweep; what fails there is then shrunk by the engine's batched shrinker."""
    strat = _strategy(shapes, domains, dtype)
    rows: list[np.ndarray] = []

    def record(args):
        rows.append(np.concatenate([np.ravel(np.asarray(a, dtype=dtype)) for a in args]))

    test = hypothesis.settings(
        hypothesis_settings(max_examples=n),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),  # a sampler: large inputs are the point
    )(hypothesis.seed(int(seed))(hypothesis.given(strat)(record)))
    try:
        test()
    except (hypothesis.errors.Unsatisfiable, hypothesis.errors.FailedHealthCheck):
        pass  # whatever was drawn before Hypothesis gave up still joins the sweep
    if not rows:
        return np.zeros((0, sum(int(np.prod(s)) if s else 1 for s in shapes)), dtype=dtype)
    return np.asarray(rows[:n], dtype=dtype)


def range_points(domains_flat: np.ndarray, dtype: str, rng, n: int = 16) -> np.ndarray:
    """Points where the dtype's range runs out, inside the domain: the smallest subnormals, the
    smallest normal, values near sqrt(tiny) and sqrt(max) (where squares leave the range) and
    near the largest float.  Half the rows put every input there, half one input, the others
    moderate.  Findings at these points that float64 (or the inputs' position) shows to be the
    dtype's range are reported as range limits, apart from wrong rules."""
    fi = np.finfo(dtype)
    sub = float(np.nextafter(np.asarray(0, dtype), np.asarray(1, dtype)))
    vals = np.asarray(
        [
            sub,
            4 * sub,
            float(fi.tiny),
            float(np.sqrt(fi.tiny)) / 2,
            float(np.sqrt(fi.tiny)) * 2,
            float(np.sqrt(fi.max)) / 2,
            float(np.sqrt(fi.max)) * 2,
            float(fi.max) / 4,
        ]
    )
    vals = np.concatenate([vals, -vals])
    lo, hi = domains_flat[:, 0], domains_flat[:, 1]
    N = lo.size
    ok = (vals[None] >= lo[:, None]) & (vals[None] <= hi[:, None])  # (N, values)
    order = np.argsort(~ok, axis=1, kind="stable")  # each entry's allowed values first, in order
    allowed = np.take_along_axis(np.broadcast_to(vals, ok.shape), order, 1)
    counts = ok.sum(axis=1)
    rows = []
    for i in range(n):
        x = np.clip(rng.uniform(-3, 3, size=N), lo, hi)
        cols = np.arange(N) if i % 2 == 0 else np.asarray([int(rng.integers(N))])
        cols = cols[counts[cols] > 0]
        # one integers call over an array of bounds draws the stream as a choice per entry does
        x[cols] = allowed[cols, rng.integers(0, counts[cols])]
        rows.append(x)
    X = np.asarray(rows).reshape(-1, N)
    return _clip_inward(X, lo, hi, dtype)
