"""Softmax (proofs/softmax.py): thresholds, and every checker seen to reject a broken variant."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck
from gradcheck.catalogue import evidence
from gradcheck.symbolic import array_symbols
from proofs import softmax
from proofs.softmax import _identities, _stable

SETTINGS = gradcheck.Settings(max_examples=100)


# --- Jacobian ------------------------------------------------------------------------------------
def test_identity_rejects_a_jacobian_missing_the_minus_yi_yj_term():
    a = array_symbols("a", (3,))
    y = softmax.softmax_sym(a)
    assert evidence.identity(y.jacobian(a), _identities._textbook(y), "J = y_i (delta_ij - y_j)").ok
    assert not evidence.identity(y.jacobian(a), sp.diag(*y), "J = diag(y)").ok


def test_index_form_jacobian_is_derived_with_kronecker_deltas():
    d = softmax.jacobian.derivation()
    assert d["d_idx"].has(sp.KroneckerDelta) and not d["d_idx"].has(sp.Piecewise)


@jax.custom_jvp
def _softmax_no_cross_term(a):
    return jax.nn.softmax(a)


@_softmax_no_cross_term.defjvp
def _softmax_no_cross_term_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    y = jax.nn.softmax(a)
    return y, y * t  # diag(y): the -y_i y_j term is missing


def test_check_rejects_a_softmax_whose_jvp_misses_the_minus_yi_yj_term():
    report = gradcheck.check(
        _softmax_no_cross_term, softmax.softmax_sym, shapes=[(4,)], domain=(-10.0, 10.0), max_examples=100
    )
    assert not report.ok
    assert {f.kind for f in report.failures} == {"gradient"}


def test_check_accepts_the_textbook_jvp_in_float32_at_large_logits():
    report = gradcheck.check(
        softmax.softmax_textbook,
        softmax.softmax_sym,
        shapes=[(4,)],
        domain=(-1000.0, 1000.0),
        dtype="float32",
        max_examples=100,
    )
    assert report.ok, str(report)


# --- cross-entropy ---------------------------------------------------------------------------------
@jax.custom_vjp
def _xent_stray_factor(a, t):
    return -jnp.sum(t * jax.nn.log_softmax(a))


def _xent_stray_fwd(a, t):
    return _xent_stray_factor(a, t), (a, t)


def _xent_stray_bwd(res, g):
    a, t = res
    y = jax.nn.softmax(a)
    return g * (y - t) * y * (1 - y), -g * jax.nn.log_softmax(a)  # a stray softmax derivative


_xent_stray_factor.defvjp(_xent_stray_fwd, _xent_stray_bwd)


def test_check_rejects_a_cross_entropy_rule_with_a_stray_softmax_derivative():
    def fn(a, u):
        return _xent_stray_factor(a, jax.nn.softmax(u))

    report = gradcheck.check(
        fn, _identities._xent_reference, shapes=[(3,), (3,)], domain=(-10.0, 10.0), max_examples=100
    )
    assert not report.ok
    assert any(f.kind == "gradient" and f.argument == 0 for f in report.failures)
    assert "custom_vjp" in report.modes.get("forward mode", "")


def test_cross_entropy_gradient_needs_targets_that_sum_to_one():
    a, t = array_symbols("a", (3,)), array_symbols("t", (3,))
    y = softmax.softmax_sym(a)
    g = sp.Matrix([sp.diff(-sum(t[i] * sp.log(y[i]) for i in range(3)), ai) for ai in a])
    assert not evidence.identity(g, y - t, "softmax(a) - t without the constraint").ok
    assert evidence.identity(g, y * sum(t) - t, "y sum(t) - t").ok


# --- shift invariance ----------------------------------------------------------------------------
def test_shift_attack_rejects_a_softmax_that_is_not_shift_invariant():
    def not_invariant(a):
        return jax.nn.softmax(a + 1e-3 * a**2)

    el = st.floats(-30, 30, allow_subnormal=False)
    strat = st.tuples(hnp.arrays(np.float64, (4,), elements=el), el)
    with gradcheck.float64():
        found = evidence.attack(softmax.shift_violation(not_invariant, "float64"), strat, "shift invariance", SETTINGS)
    assert not found.ok and found.counterexample is not None


def test_shift_attack_accepts_the_textbook_form_in_float32():
    el = st.floats(-40, 40, width=32, allow_subnormal=False)
    strat = st.tuples(hnp.arrays(np.float32, (4,), elements=el), el)
    with jax.enable_x64(False):
        found = evidence.attack(
            softmax.shift_violation(softmax.softmax_naive, "float32"), strat, "shift invariance", SETTINGS
        )
    assert found.ok, found.counterexample


# --- overflow ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("dtype", "ln_max"), [("float64", 709.782712893384), ("float32", 88.72283905206835)])
def test_naive_softmax_overflows_exactly_above_ln_of_the_largest_float(dtype, ln_max):
    th = softmax.overflow_thresholds(dtype)
    assert th["ln(max float)"] == pytest.approx(ln_max, rel=1e-12)
    assert th["non-finite"] == pytest.approx(ln_max, rel=1e-6)
    # wrong values come earlier (the reciprocal of the sum flushed to 0 on CPU), the Jacobian at half
    assert th["wrong"] <= th["non-finite"]
    assert th["gradient wrong"] <= th["non-finite"] / 2 + 1


def test_naive_softmax_overflows_above_709_in_float64():
    report = gradcheck.check(
        softmax.softmax_naive, softmax.softmax_sym, shapes=[(4,)], domain=(-1000.0, 1000.0), max_examples=100
    )
    nonfinite = [f for f in report.failures if f.kind == "non-finite" and f.argument is None]
    assert nonfinite and nonfinite[0].shrunk
    assert float(np.max(nonfinite[0].input[0])) > 709.78
    assert math.isnan(nonfinite[0].got) and nonfinite[0].expected == pytest.approx(1.0)


def test_bisection_refuses_a_bracket_that_does_not_straddle_the_change():
    with pytest.raises(ValueError, match="bisection needs"):
        _stable._first_failing(lambda v: True, 1.0, 2.0, "float64")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_shifted_softmax_is_finite_at_the_largest_floats(dtype):
    big = np.finfo(dtype).max
    a = np.array([big, -big, 0.0, big], dtype=dtype)
    ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
    with ctx:
        y = np.asarray(softmax.softmax_shifted(jnp.asarray(a)))
        J = np.asarray(jax.jacrev(softmax.softmax_shifted)(jnp.asarray(a)))
        naive = np.asarray(softmax.softmax_naive(jnp.asarray(a)))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(J))
    np.testing.assert_allclose(y, [0.5, 0.0, 0.0, 0.5])
    assert not np.all(np.isfinite(naive))


def test_sums_to_one_check_rejects_a_softmax_normalised_by_the_wrong_sum():
    def bad(a):
        e = jnp.exp(a - jax.lax.stop_gradient(jnp.max(a)))
        return jnp.sum(e / (jnp.sum(e) + 1e-3 * e[0]))

    report = gradcheck.check(
        bad, lambda a: sum(softmax.softmax_sym(a)), shapes=[(4,)], domain=(-10.0, 10.0), max_examples=100
    )
    assert not report.ok
