"""At the edge of the dtype's range: a truth beyond the range is a range limit, infinities that
agree agree, and a referee that meets cancellation proves its precision; a rule wrong at the
same inputs still fails (both sides, as in test_check_regressions.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from jax.scipy.special import ndtri

import gradcheck
from gradcheck.oracles.mpmath_truth import TRUTH_DIGITS, start_digits
from gradcheck.oracles.reference import build_reference


def expm1_ref(x):
    return sp.exp(x) - 1


def ndtri_ref(p):  # cancels: 2p - 1 at p = 1e-150 needs 150 digits
    return sp.sqrt(2) * sp.erfinv(2 * p - 1)


@jax.custom_jvp
def expm1_wrong_above_700(x):
    return jnp.expm1(x)


@expm1_wrong_above_700.defjvp
def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.expm1(x), jnp.exp(x) * jnp.where(x > 700, 1.001, 1.0) * t


@jax.custom_jvp
def cosh_wrong_sign_above_88(x):
    return jnp.cosh(x)


@cosh_wrong_sign_above_88.defjvp
def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.cosh(x), jnp.where(x > 88, -1.0, 1.0) * jnp.sinh(x) * t


def test_expm1_where_a_cotangent_times_e709_overflows_passes(examples):
    # the vjp c e^709 lies beyond float64: -inf is the right rounding, and the truth's sum is -inf too
    report = gradcheck.check(jnp.expm1, expm1_ref, shapes=[()], domain=(-1000.0, 709.7), max_examples=examples)
    assert report.ok, str(report)
    assert not report.range_limits, str(report)


def test_expm1_with_a_rule_wrong_at_the_same_inputs_still_fails(examples):
    report = gradcheck.check(
        expm1_wrong_above_700, expm1_ref, shapes=[()], domain=(-1000.0, 709.7), max_examples=examples
    )
    assert {f.kind for f in report.failures} == {"gradient"}, str(report)
    assert all(float(f.input[0]) > 700 for f in report.failures), str(report)


@pytest.mark.parametrize(
    "fn, ref, dtype, edge",
    [
        (jnp.cosh, sp.cosh, "float32", 89.0),
        (jnp.sinh, sp.sinh, "float32", 89.0),
        (jnp.cosh, sp.cosh, "float64", 710.0),
        (jnp.sinh, sp.sinh, "float64", 710.0),
    ],
    ids=["cosh-f32", "sinh-f32", "cosh-f64", "sinh-f64"],
)
def test_cosh_and_sinh_where_the_truth_along_a_tangent_exceeds_the_dtype_pass(fn, ref, dtype, edge):
    # sinh(89) = 2.2e38 fits float32, 1.8 sinh(89) = 4e38 does not: inf is right there
    report = gradcheck.check(fn, ref, shapes=[()], domain=(-edge, edge), dtype=dtype, max_examples=100)
    assert report.ok, str(report)


def test_cosh_with_the_wrong_sign_near_the_edge_still_fails():
    report = gradcheck.check(
        cosh_wrong_sign_above_88, sp.cosh, shapes=[()], domain=(-89.0, 89.0), dtype="float32", max_examples=100
    )
    assert not report.ok, str(report)
    assert all(float(f.input[0]) > 88 for f in report.failures), str(report)


def test_the_truth_starts_from_digits_grown_with_the_inputs_exponents():
    assert start_digits(np.array([0.5, 0.0])) == TRUTH_DIGITS
    assert start_digits(np.array([1e-150])) >= TRUTH_DIGITS + 150
    assert start_digits(np.array([3e200, 1.0])) >= TRUTH_DIGITS + 200
    ref = build_reference(ndtri_ref, [()], 1)
    value, status = ref.mp.truth(np.array([1e-150]), float(np.finfo("float64").max))
    # at 50 and at 100 digits both give erfinv(-1) = -inf: agreeing is not enough
    assert status[0] == 0 and value[0] == pytest.approx(-26.122961190593984, rel=1e-15)


def test_ndtri_over_the_whole_unit_interval_passes_with_its_range_limits_listed():
    # ndtri(1e-150) = -26.12296119059398 is right to 1 ulp; at subnormal p JAX's ndtri runs out of
    # range (listed apart); at p = 0 and 1 the value is infinite and its derivative not compared
    report = gradcheck.check(ndtri, ndtri_ref, shapes=[()], domain=(0.0, 1.0), max_examples=60)
    assert report.ok, str(report)
    assert report.range_limits and all(float(f.input[0]) < 1e-300 for f in report.range_limits), str(report)
    assert report.partly_judged_points, str(report)


def test_ndtri_wrong_at_tiny_p_still_fails():
    report = gradcheck.check(
        lambda p: ndtri(p) * (1 + 1e-6 * (p < 1e-100)), ndtri_ref, shapes=[()], domain=(0.0, 1.0), max_examples=60
    )
    values = [f for f in report.failures if f.kind == "value"]
    assert values, str(report)
    assert all(np.isfinite(f.expected) and 0 < float(f.input[0]) < 1e-100 for f in values), str(report)
