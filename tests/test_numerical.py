"""``gradcheck.oracles.numerical``: float64 directional derivatives by extrapolated central differences.

The truth here is the analytic derivative: JAX's own ``jvp`` in float64 (exact up to rounding)
or a closed form.  Each test can fail: accuracy to 1e-10, an error bound that covers the true
error, flags at kinks, poles and NaNs, and an error small enough to tell a 1e-3 mistake apart.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck.oracles import _batched
from gradcheck.oracles.numerical import Estimate, directional_derivative, mixed_second

EPS = np.finfo(np.float64).eps


def _f64(a):
    with jax.enable_x64(True):
        return jnp.asarray(np.asarray(a, dtype=np.float64))


def _jvp_truth(f, X, V, order=1):
    """d/dt (or d2/dt2) f(x + t v) at 0 by forward-mode autodiff in float64, (B, K)."""
    with jax.enable_x64(True):

        def d1(x, v):
            return jax.jvp(f, (x,), (v,))[1]

        def d2(x, v):
            return jax.jvp(lambda y: d1(y, v), (x,), (v,))[1]

        out = jax.jit(jax.vmap(d1 if order == 1 else d2))(_f64(X), _f64(V))
        return np.asarray(out).reshape(len(X), -1)


def _weights(seed, k, n):
    rng = np.random.default_rng(seed)
    return _f64(rng.normal(size=(k, n)) / np.sqrt(n)), _f64(rng.normal(size=k))


_W16, _B16 = _weights(0, 8, 16)

SMOOTH = {
    "sin": (lambda x: jnp.sin(x), 1),
    "exp-sum": (lambda x: jnp.sum(jnp.exp(x)), 5),
    "softmax": (jax.nn.softmax, 10),
    "logsumexp": (jax.nn.logsumexp, 1024),
    "tanh(Wx+b)": (lambda x: jnp.tanh(_W16 @ x + _B16), 16),
}


def _rows(seed, B, N, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, N)) * scale, rng.normal(size=(B, N))


# --------------------------------------------------------------------------------------------
# Accuracy and error bounds on smooth functions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("name", list(SMOOTH))
def test_accuracy_on_smooth_functions(name, order):
    f, N = SMOOTH[name]
    X, V = _rows(1, 20, N)
    est = directional_derivative(f, X, V, order=order)
    truth = _jvp_truth(f, X, V, order)
    assert isinstance(est, Estimate) and est.value.shape == truth.shape
    assert est.converged.all()
    # relative to the row's size, or the batch's typical size where a row is a cancellation
    # (logsumexp's p.v can be 1e-4 of its terms, and f's rounding is relative to the terms)
    row_scale = np.abs(truth).max(axis=1, keepdims=True)
    row_scale = np.maximum(row_scale, np.median(row_scale))
    tol = 1e-10 if order == 1 else 1e-9  # second differences lose one more power of h
    assert np.all(np.abs(est.value - truth) <= tol * row_scale)
    assert np.all(np.abs(est.value - truth) <= est.error + 4 * EPS * row_scale)


def test_second_order_against_closed_forms():
    # logsumexp: v'Hv = sum p v^2 - (p.v)^2 with p = softmax(x); sin: -sin(x) v^2
    X, V = _rows(2, 30, 64)
    est = directional_derivative(jax.nn.logsumexp, X, V, order=2)
    p = np.exp(X - X.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    vhv = (p * V**2).sum(1) - (p * V).sum(1) ** 2
    assert est.converged.all()
    np.testing.assert_allclose(est.value[:, 0], vhv, rtol=1e-9)
    assert np.all(np.abs(est.value[:, 0] - vhv) <= est.error[:, 0] + 1e-15)

    x = np.linspace(-3, 3, 13)[:, None]
    est = directional_derivative(lambda y: jnp.sin(y[0]), x, np.full_like(x, 0.5), order=2)
    np.testing.assert_allclose(est.value[:, 0], -np.sin(x[:, 0]) * 0.25, rtol=1e-9, atol=1e-12)


def test_mixed_second_against_hessian():
    def f(x):
        return jnp.sin(x[0]) * jnp.exp(x[1]) + x[0] * x[2] ** 2

    rng = np.random.default_rng(3)
    X, U, V = (rng.normal(size=(10, 3)) for _ in range(3))
    est = mixed_second(f, X, U, V)
    with jax.enable_x64(True):
        H = np.asarray(jax.jit(jax.vmap(jax.hessian(f)))(_f64(X)))
    truth = np.einsum("bi,bij,bj->b", U, H, V)
    assert est.value.shape == (10, 1) and est.converged.all()
    np.testing.assert_allclose(est.value[:, 0], truth, rtol=1e-8, atol=1e-10)
    assert np.all(np.abs(est.value[:, 0] - truth) <= est.error[:, 0] + 1e-14)


_BANK = [SMOOTH["sin"][0], SMOOTH["exp-sum"][0], SMOOTH["tanh(Wx+b)"][0]]
_BANK_N = [1, 5, 16]


@settings(max_examples=12, deadline=None)
@given(
    which=st.integers(0, 2),
    order=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**32 - 1),
    x_scale=st.sampled_from([0.1, 1.0, 3.0]),
    v_scale=st.sampled_from([1e-3, 1.0, 30.0]),
)
def test_error_bound_covers_true_error_hypothesis(which, order, seed, x_scale, v_scale):
    f, N = _BANK[which], _BANK_N[which]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(16, N)) * x_scale
    V = rng.normal(size=(16, N)) * v_scale
    est = directional_derivative(f, X, V, order=order)
    truth = _jvp_truth(f, X, V, order)
    scale = np.abs(truth).max(axis=1, keepdims=True)
    assert est.converged.mean() > 0.9
    ok = np.abs(est.value - truth) <= est.error + 4 * EPS * scale
    assert ok[est.converged].all()


@settings(max_examples=10, deadline=None)
@given(
    x=hnp.arrays(np.float64, (8, 3), elements=st.floats(-4, 4)),
    v=hnp.arrays(np.float64, (8, 3), elements=st.floats(-2, 2)),
)
def test_error_bound_covers_drawn_points(x, v):
    def f(y):
        return jnp.stack([jnp.sin(y[0] * y[1]) + jnp.exp(y[2] / 2), jnp.tanh(y).sum()])

    est = directional_derivative(f, x, v)
    truth = _jvp_truth(f, x, v)
    scale = np.abs(truth).max(axis=1, keepdims=True)
    assert est.converged.all()
    # XLA on CPU flushes subnormals to zero, so where Hypothesis draws a subnormal direction
    # the jvp truth is 0 (the estimate, which normalises the direction, is not): 1e-300 slack
    assert np.all(np.abs(est.value - truth) <= est.error + 4 * EPS * scale + 1e-300)


@pytest.mark.parametrize("seed", range(4))
def test_error_bound_covers_random_networks(seed):
    rng = np.random.default_rng(100 + seed)
    N, K = int(rng.integers(1, 40)), int(rng.integers(1, 6))
    W1, b1 = _weights(seed, 12, N)
    W2, _ = _weights(seed + 50, K, 12)
    act = [jnp.tanh, jnp.sin, jax.nn.softplus][seed % 3]

    def f(x):
        return W2 @ act(W1 @ x + b1) + 0.1 * jnp.sum(x**2)

    X, V = rng.normal(size=(40, N)) * 2, rng.normal(size=(40, N))
    for order in (1, 2):
        est = directional_derivative(f, X, V, order=order)
        truth = _jvp_truth(f, X, V, order)
        scale = np.abs(truth).max(axis=1, keepdims=True)
        assert est.converged.all()
        assert np.all(np.abs(est.value - truth) <= est.error + 4 * EPS * scale)


def test_wrong_derivative_is_told_apart():
    """The error bound is far below a 1e-3 relative mistake, so a checker sees it."""
    for name, (f, N) in SMOOTH.items():
        X, V = _rows(4, 20, N)
        est = directional_derivative(f, X, V)
        truth = _jvp_truth(f, X, V)
        scale = np.abs(truth).max(axis=1, keepdims=True)
        assert np.all(est.error <= 1e-6 * scale), name
        wrong = truth * (1 + 1e-3)
        big = np.abs(truth) > 1e-2 * scale
        assert np.all(np.abs(est.value - wrong)[big] > 100 * est.error[big]), name


def test_large_magnitudes_in_relative_terms():
    cases = [
        (lambda x: jnp.exp(x[0]), [[700.0], [-700.0]], lambda x: np.exp(x)),
        (lambda x: (1e6 * x[0]) ** 2, [[3.0], [1e3]], lambda x: 2e12 * x),
    ]
    for f, x, d in cases:
        x = np.asarray(x)
        for order in (1, 2):
            est = directional_derivative(f, x, np.ones_like(x), order=order)
            truth = d(x[:, 0]) if order == 1 else None
            if order == 2:
                truth = _jvp_truth(f, x, np.ones_like(x), 2)[:, 0]
            assert est.converged.all()
            np.testing.assert_allclose(est.value[:, 0], truth, rtol=1e-9)
            assert np.all(np.abs(est.value[:, 0] - truth) <= est.error[:, 0] + 4 * EPS * np.abs(truth))
    # a function that varies on a scale far below the default steps is flagged, not misjudged;
    # a smaller base step resolves it
    x = np.array([[3e-6], [-0.2]])
    est = directional_derivative(lambda y: jnp.sin(1e6 * y[0]), x, np.ones_like(x))
    assert not est.converged.any()
    est = directional_derivative(lambda y: jnp.sin(1e6 * y[0]), x, np.ones_like(x), base_step=1e-7)
    assert est.converged.all()
    np.testing.assert_allclose(est.value[:, 0], 1e6 * np.cos(1e6 * x[:, 0]), rtol=1e-9)
    # a linear function of large slope and large argument: its derivative, exactly
    x = np.array([[3.0], [-2e5]])
    est = directional_derivative(lambda y: 1e6 * y[0], x, np.ones_like(x))
    assert est.converged.all()
    np.testing.assert_allclose(est.value[:, 0], 1e6, rtol=1e-10)


# --------------------------------------------------------------------------------------------
# Points that cannot be judged
# --------------------------------------------------------------------------------------------


def test_kinks_are_flagged():
    one = np.ones((1, 1))
    assert not directional_derivative(lambda x: jnp.abs(x[0]), [[0.0]], one).converged.any()
    assert not directional_derivative(jax.nn.relu, [[0.0]], one).converged.any()
    # relu in a vector: only the component sitting on its kink
    est = directional_derivative(jax.nn.relu, [[0.0, 1.0, -1.0]], [[1.0, 1.0, 1.0]])
    assert est.converged.tolist() == [[False, True, True]]
    # a kink within the steps, and a kink of the first derivative seen by order 2
    assert not directional_derivative(lambda x: jnp.abs(x[0]), [[1e-6]], one).converged.any()
    est = directional_derivative(lambda x: x[0] * jnp.abs(x[0]), [[0.0]], one, order=2)
    assert not est.converged.any()
    # away from the kink it is judged, and exactly
    est = directional_derivative(lambda x: jnp.abs(x[0]), [[0.3], [-0.3]], 2 * np.ones((2, 1)))
    assert est.converged.all()
    np.testing.assert_allclose(est.value[:, 0], [2.0, -2.0], rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_poles_are_flagged(order):
    x = np.array([[0.0], [1e-5], [1e-3], [-1e-4]])
    est = directional_derivative(lambda y: 1.0 / y[0], x, np.ones_like(x), order=order)
    assert not est.converged.any()
    # far enough from the pole it is judged again
    est = directional_derivative(lambda y: 1.0 / y[0], [[0.5]], [[1.0]], order=order)
    truth = -1 / 0.25 if order == 1 else 2 / 0.125
    assert est.converged.all() and abs(est.value[0, 0] - truth) < 1e-9 * abs(truth)


def test_non_finite_values_are_flagged():
    one = np.ones((1, 1))
    # NaN at the point itself, NaN everywhere, NaN on every step to one side, inf at the point
    assert not directional_derivative(lambda x: jnp.log(x[0]), [[-1.0]], one).converged.any()
    assert not directional_derivative(lambda x: x * jnp.nan, [[0.5]], one).converged.any()

    def nan_right(x):
        return jnp.where(x[0] > 0.5, jnp.nan, x[0])

    est = directional_derivative(nan_right, [[0.5]], one)
    assert not est.converged.any() and np.isinf(est.error).all()
    assert not directional_derivative(lambda x: 1 / x[0] ** 2, [[0.0]], one).converged.any()
    # NaN at the point only (a removable hole): central differences never look there
    est = directional_derivative(lambda x: jnp.where(x[0] == 0.5, jnp.nan, x[0]), [[0.5]], one)
    assert not est.converged.any()
    # undefined only beyond the largest steps: the small steps still judge it
    est = directional_derivative(lambda x: jnp.where(x[0] > 0.55, jnp.nan, jnp.sin(x[0])), [[0.5]], one)
    assert est.converged.all() and abs(est.value[0, 0] - np.cos(0.5)) < 1e-10


# --------------------------------------------------------------------------------------------
# The gradient as the function, batching, caching, scoping of float64
# --------------------------------------------------------------------------------------------


def test_gradient_function_batched():
    """Order 2 "on the gradient": d/dt grad f(x + t v) = H v, for K = N = 512, B = 100."""
    g = jax.grad(jax.nn.logsumexp)
    X, V = _rows(5, 100, 512)
    est = directional_derivative(g, X, V)
    p = np.exp(X - X.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    hv = p * V - p * (p * V).sum(1, keepdims=True)
    assert est.value.shape == (100, 512) and est.converged.all()
    scale = np.abs(hv).max(axis=1, keepdims=True)
    assert np.all(np.abs(est.value - hv) <= 1e-10 * scale)
    assert np.all(np.abs(est.value - hv) <= est.error + 4 * EPS * scale)


@pytest.mark.parametrize("order", [1, 2])
def test_numpy_and_jitted_analysis_agree(monkeypatch, order):
    """The tableau analysis run by NumPy (small batches) and jitted (large ones) gives the same
    estimates, bounds and verdicts, on outputs that are smooth, kinked, undefined on one side
    and undefined at the point."""
    from gradcheck.oracles import numerical

    def f(x):
        return jnp.stack([jnp.sin(3 * x[0]) * x[1], jnp.abs(x[0] - 0.25), jnp.log(x[1]), 1 / x[0]])

    X = np.array([[0.25, 0.5], [0.0, -0.5], [0.7, 1e-3], [-0.3, 2.0]])
    V = np.array([[1.0, -0.5], [0.3, 1.0], [-1.0, 0.0], [0.25, 4.0]])
    got = []
    for above in (10**9, 0):  # NumPy, then jitted
        monkeypatch.setattr(numerical, "JIT_ANALYSIS_ABOVE", above)
        got.append(directional_derivative(f, X, V, order=order))
    a, b = got
    np.testing.assert_array_equal(a.converged, b.converged)
    assert a.converged.any() and not a.converged.all()
    np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=0, equal_nan=True)
    # the bounds are differences of nearly equal entries: their rounding differs by a part in 1e3
    np.testing.assert_allclose(a.error, b.error, rtol=1e-2, atol=0, equal_nan=True)


def test_warm_call_is_fast_and_cached():
    X, V = _rows(6, 100, 1024)
    directional_derivative(jax.nn.logsumexp, X, V)  # compile
    before = len(_batched._CACHE)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        directional_derivative(jax.nn.logsumexp, X, V)
        times.append(time.perf_counter() - t)
    assert len(_batched._CACHE) == before
    assert min(times) < 0.5


def test_float64_is_scoped_and_scalar_outputs():
    x64_before = jax.config.jax_enable_x64
    est = directional_derivative(lambda x: jnp.sum(x**3), [[1.0, 2.0]], [[1.0, 0.0]])
    assert jax.config.jax_enable_x64 == x64_before
    assert est.value.shape == (1, 1) and est.value.dtype == np.float64
    np.testing.assert_allclose(est.value[0, 0], 3.0, rtol=1e-12)
    # a zero direction: exactly zero
    est = directional_derivative(jnp.sin, [[1.0]], [[0.0]])
    assert est.value[0, 0] == 0.0 and est.error[0, 0] == 0.0 and est.converged.all()


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="order"):
        directional_derivative(jnp.sin, [[1.0]], [[1.0]], order=3)
    with pytest.raises(ValueError, match="X and V"):
        directional_derivative(jnp.sin, [[1.0, 2.0]], [[1.0]])
    with pytest.raises(ValueError, match="steps"):
        directional_derivative(jnp.sin, [[1.0]], [[1.0]], steps=1)


def test_a_block_gives_the_full_points_estimate():
    """A direction within one block of the point, evaluated as a Block (only the block's entries
    built per evaluation), gives the estimate of the full point to rounding; a wrong block (the
    other leaf swapped in) does not."""
    rng = np.random.default_rng(7)
    W = rng.normal(size=(6, 5))

    def f(z):
        return jnp.tanh(z[:30].reshape(6, 5) @ z[30:] + 0.1 * jnp.sum(z[30:] ** 2))

    def g(x, y):  # f with x[30:35] replaced by y
        return jnp.tanh(x[:30].reshape(6, 5) @ y + 0.1 * jnp.sum(y**2))

    def wrong(x, y):  # claims to be the block 30:35, reads x's entries instead of y's
        return jnp.tanh(x[:30].reshape(6, 5) @ x[30:] + 0.1 * jnp.sum(y**2))

    X = np.concatenate([np.tile(W.ravel(), (8, 1)), rng.uniform(-1, 1, (8, 5))], 1)
    V = np.zeros_like(X)
    V[:, 30:] = rng.normal(size=(8, 5))
    full = directional_derivative(f, X, V)
    block = directional_derivative(_batched.Block(g, 30, 35), X, V)
    assert full.converged.all() and block.converged.all()
    np.testing.assert_allclose(block.value, full.value, rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(block.value - full.value) <= full.error + block.error)
    # the block's columns alone are accepted as V too
    same = directional_derivative(_batched.Block(g, 30, 35), X, V[:, 30:])
    np.testing.assert_array_equal(same.value, block.value)
    bad = directional_derivative(_batched.Block(wrong, 30, 35), X, V)
    assert np.all(np.abs(bad.value - full.value) > 1e-3 * np.abs(full.value))


def test_in_chunks_joins_what_one_call_gives_with_one_shape():
    """Rows in padded chunks of one size give back exactly the one-call result (an array or a
    tuple), trimmed of the padding; every call sees the same shape."""
    shapes = set()

    def g(A, b):
        shapes.add(A.shape)
        return A * 2.0 + b[:, None], jnp.sum(A, axis=1)

    A = np.arange(23 * 3, dtype=np.float64).reshape(23, 3)
    b = np.arange(23, dtype=np.float64)
    full = g(A, b)
    shapes.clear()
    out = _batched.in_chunks(g, 8)(A, b)
    assert shapes == {(8, 3)}
    for got, want in zip(out, full):
        np.testing.assert_array_equal(got, np.asarray(want))
    empty = _batched.in_chunks(g, 8)(A[:0], b[:0])
    assert empty[0].shape == (0, 3) and empty[1].shape == (0,)


@pytest.mark.parametrize("order", [1, 2])
def test_steps_in_groups_give_the_one_call_table(monkeypatch, order):
    """Where one row's difference table exceeds the memory budget (a 512,000-entry leaf), its
    steps run in groups: the same points in the same order, so the same values to rounding (a
    different batch size of XLA's vectorised sin may differ by an ulp); the table of a function
    differenced at the wrong steps would differ by far more (the table is compared point by
    point with ``f`` at ``x +- h_i v``)."""
    f = lambda x: jnp.stack([jnp.sum(jnp.sin(x) * x[::-1]), jnp.prod(jnp.tanh(x))])
    rng = np.random.default_rng(3)
    X, V = rng.uniform(-1, 1, (6, 40)), rng.normal(size=(6, 40))
    calls: list = []
    orig = _batched.evaluator
    monkeypatch.setattr(_batched, "evaluator", lambda *a: calls.append(a[2]) or orig(*a))
    one = directional_derivative(f, X, V, order=order)
    monkeypatch.setattr(_batched, "MEMORY_PER_CALL", 8 * (2 * 2 * order * 40 + 40))  # two steps a call
    grouped = directional_derivative(f, X, V, order=order)
    assert calls == [10, 2]  # ten steps in one program, then five calls of two
    # the extrapolation magnifies an ulp of the table: equal within the error bounds
    assert np.all(np.abs(grouped.value - one.value) <= grouped.error + one.error)
    np.testing.assert_allclose(grouped.value, one.value, rtol=1e-8, atol=1e-15)
    np.testing.assert_array_equal(grouped.converged, one.converged)
    with jax.enable_x64(True):
        f0, fs = _batched.run_rows(f, (-1.0, 1.0), 10, 2.0, X, V, np.full(6, 0.125))
        h = 0.125 / 2.0 ** np.arange(10)
        want = np.stack([[f(x + s * v) for s in (-hi, hi)] for hi in h for x, v in [(X[0], V[0])]])
        want0 = np.asarray(f(X[0]))
    np.testing.assert_allclose(fs[0], want, rtol=1e-13)
    np.testing.assert_allclose(f0[0], want0, rtol=1e-13)
