"""Engine bugs found while testing the checker, each pinned by a test (from both sides)."""

import jax
import jax.numpy as jnp
import pytest
import sympy as sp

import gradcheck


def logistic(x):
    return 1 / (1 + sp.exp(-x))


def test_floor_has_a_derivative_of_zero_away_from_its_jumps():
    # SymPy leaves Derivative(floor(x), x) unevaluated; it is 0 away from the integers
    report = gradcheck.check(jnp.floor, sp.floor, shapes=[()], domain=(-5.0, 5.0), max_examples=100)
    assert report.ok, str(report)
    assert "kink" in report.kinks


def test_floor_with_a_wrong_value_between_jumps_fails():
    report = gradcheck.check(lambda x: jnp.floor(x) + (x > 2.5), sp.floor, shapes=[()], domain=(-5.0, 5.0),
                             max_examples=100)
    assert {f.kind for f in report.failures} == {"value"}


def test_float32_domain_bounds_float32_cannot_represent_are_rounded_inward():
    report = gradcheck.check(jnp.sqrt, sp.sqrt, shapes=[()], domain=(1e-3, 1e6), dtype="float32",
                             max_examples=100)
    assert report.ok, str(report)


@jax.custom_jvp
def sigmoid_wrong_sign_below_minus_25(x):
    return jax.nn.sigmoid(x)


@sigmoid_wrong_sign_below_minus_25.defjvp
def _(primals, tangents):
    (x,), (t,) = primals, tangents
    s = jax.nn.sigmoid(x)
    return s, jnp.where(x < -25, -1.0, 1.0) * s * (1 - s) * t


def test_float64_rule_wrong_where_the_truth_is_near_1e_11_is_caught():
    # sigma'(-25.5) is about 8e-12: the float64 absolute floor (1e-12) is below it
    report = gradcheck.check(sigmoid_wrong_sign_below_minus_25, logistic, shapes=[()], domain=(-28.0, 28.0),
                             max_examples=200)
    assert {f.kind for f in report.failures} == {"gradient"}, str(report)
    assert all(float(f.input[0]) < -25 for f in report.failures)


def test_correct_sigmoid_passes_where_its_derivative_is_tiny():
    report = gradcheck.check(jax.nn.sigmoid, logistic, shapes=[()], domain=(-40.0, 40.0), max_examples=200)
    assert report.ok, str(report)


def test_float32_matmul_with_cancelling_terms_is_no_false_alarm():
    # terms of 5000 cancel to 0.01: float32 rounding of the terms is the size of the result
    report = gradcheck.check(lambda x, W: x @ W, lambda x, W: (x.T * W).T, shapes=[(3,), (3, 2)],
                             domain=(-1e4, 1e4), dtype="float32", max_examples=500, seed=1)
    assert report.ok, str(report)


def test_float32_matmul_with_a_wrong_entry_still_fails():
    report = gradcheck.check(lambda x, W: (x @ W) * jnp.array([1.0, 1.001], jnp.float32),
                             lambda x, W: (x.T * W).T, shapes=[(3,), (3, 2)], domain=(-1e4, 1e4),
                             dtype="float32", max_examples=200)
    assert "value" in {f.kind for f in report.failures}


@pytest.mark.parametrize("bad", [lambda x: sp.log(x), lambda x: x[5]])
def test_reference_that_fails_on_its_symbolic_inputs_names_reference_and_shapes(bad):
    with pytest.raises(ValueError, match=r"reference (failed|could not be differentiated).* shapes \[\(2,\)\]"):
        gradcheck.check(jnp.log, bad, shapes=[(2,)], max_examples=10)


def test_erf_reference_is_refereed_without_crashing():
    @jax.custom_jvp
    def gelu_exact_with_tanh_derivative(x):
        return jax.nn.gelu(x, approximate=False)

    @gelu_exact_with_tanh_derivative.defjvp
    def _(p, t):
        (x,), (dx,) = p, t
        return gelu_exact_with_tanh_derivative(x), jax.grad(jax.nn.gelu)(x) * dx

    report = gradcheck.check(gelu_exact_with_tanh_derivative, lambda x: x / 2 * (1 + sp.erf(x / sp.sqrt(2))),
                             shapes=[()], domain=(-10.0, 10.0), max_examples=100)
    assert {f.kind for f in report.failures} == {"gradient"}, str(report)


def test_report_prints_the_absolute_error_where_the_truth_is_zero():
    report = gradcheck.check(lambda x: jnp.sin(x) + 1e-3, sp.sin, shapes=[()], domain=(-3.0, 3.0),
                             max_examples=50)
    f = next(f for f in report.failures if f.kind == "value")
    assert f.expected == 0.0 or "relative" in str(f)
    zero = gradcheck.check(lambda x: x * 0 + 1e-3, lambda x: sp.S.Zero, shapes=[()], domain=(-3.0, 3.0),
                           max_examples=20)
    assert "absolute (the truth is 0)" in str(zero)
