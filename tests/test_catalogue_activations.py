"""tanh and the ReLU family (proofs/tanh.py, proofs/activations.py): figures, and every checker
the claims use seen to reject a broken variant."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
import sympy as sp
from hypothesis import strategies as st

import gradcheck
from gradcheck.catalogue import evidence
from proofs import activations, tanh

SETTINGS = gradcheck.Settings(max_examples=100)


@pytest.fixture(scope="module")
def tanh_max():
    return tanh.max_derivative.run(SETTINGS)


@pytest.fixture(scope="module")
def tanh_vs():
    return tanh.vs_sigmoid.run(SETTINGS)


# --- tanh ---------------------------------------------------------------------------------------
def test_tanh_strict_bound_is_refuted_exactly_at_zero(tanh_max):
    refuted = [f for f in tanh_max.findings if f.verdict == "refuted"]
    assert tanh_max.ok, tanh_max.summary
    assert len(refuted) == 1 and refuted[0].counterexample == 0.0


def test_tanh_bound_attack_rejects_a_derivative_slightly_above_one():
    with gradcheck.float64():
        too_big = jax.jit(jax.grad(lambda v: 1.01 * jnp.tanh(v)))
        found = evidence.attack(
            lambda v: float(too_big(jnp.float64(v))) > 1.0, st.floats(-1e3, 1e3), "1.01 tanh'(z) <= 1", SETTINGS
        )
    assert not found.ok and abs(found.counterexample) < 0.2


def test_tanh_and_sigmoid_derivatives_cross_at_1_6629(tanh_vs):
    z_star = tanh.vs_sigmoid.derivation()["z_star"]
    assert abs(float(z_star) - 1.6628858910586) < 1e-12
    # the closed form SymPy found is 2 acosh((1 + sqrt 3) / 2)
    assert abs(float(z_star - 2 * sp.acosh((1 + sp.sqrt(3)) / 2))) < 1e-30
    assert tanh_vs.ok, tanh_vs.summary


def test_pointwise_tanh_beats_sigmoid_is_refuted_near_two(tanh_vs):
    (refuted,) = [f for f in tanh_vs.findings if f.verdict == "refuted"]
    assert 1.6629 < abs(refuted.counterexample) <= 2.0


def test_crossing_proof_rejects_a_wrong_crossing_point():
    d = tanh.vs_sigmoid.derivation()
    gap = d["dtanh"] - d["dsig"]
    # the sign argument of the claim: positive at 0, negative beyond z*; a wrong z* = 2 fails it
    assert bool(gap.subs(tanh.z, d["z_star"] - sp.Rational(1, 100)) > 0)
    assert bool(gap.subs(tanh.z, 2) < 0)
    assert not evidence.identity(d["dtanh"], 2 * d["dsig"].subs(tanh.z, 2 * tanh.z), "tanh' = 2 sigma'(2z)").ok


# --- ReLU, LeakyReLU, ELU -----------------------------------------------------------------------------
def test_jax_conventions_at_the_kink_are_stated_one_sided_derivatives():
    values = activations.jax_kink_values(0.01, 0.5)
    assert values["relu"] == (0.0, 0.0)  # left derivative
    assert values["leaky_relu"] == (1.0, 1.0)  # right derivative
    assert values["elu"] == (0.5, 0.5)  # left derivative alpha
    assert activations.kink_side(0.0, 0.0, 1.0) == "left"
    assert activations.kink_side(1.0, 0.01, 1.0) == "right"


def test_kink_convention_check_rejects_a_value_that_is_no_one_sided_derivative():
    # 1/2 is SymPy's Heaviside(0): a subgradient, but neither one-sided derivative
    assert activations.kink_side(0.5, 0.0, 1.0) == "neither"
    assert activations.kink_side(0.9, 1.0, 1.0) == "neither"


def test_piecewise_derivatives_and_one_sided_limits():
    d = activations.derivatives.derivation()
    z, p = activations.z, activations.p
    assert d["sides"]["relu"] == (0, 1)
    assert d["sides"]["elu"] == (activations.alpha, 1)
    assert sp.simplify(d["derived"]["elu"].subs(z, -p) - activations.alpha * sp.exp(-p)) == 0
    # SymPy's own kink choice: the branch whose condition holds at 0
    assert d["sympy_at_zero"]["relu"] == 1 and d["max_at_zero"] == sp.Rational(1, 2)


def test_identity_rejects_a_wrong_textbook_derivative_of_leaky_relu():
    d = activations.derivatives.derivation()
    wrong = evidence.identity(
        d["derived"]["leaky_relu"].subs(activations.z, -activations.p), 0, "leaky'(z) = 0 on z < 0"
    )
    assert not wrong.ok and wrong.verdict is None


@jax.custom_jvp
def _relu_bad_slope(x):
    return jax.nn.relu(x)


@_relu_bad_slope.defjvp
def _relu_bad_slope_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jax.nn.relu(x), jnp.where(x > 0, 1.0, 0.1) * t  # 0.1 on the negative side: wrong


@jax.custom_jvp
def _elu_bad_left(x):
    return jax.nn.elu(x, alpha=0.5)


@_elu_bad_left.defjvp
def _elu_bad_left_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jax.nn.elu(x, alpha=0.5), jnp.where(x > 0, 1.0, jnp.exp(x)) * t  # forgets alpha on the left


def test_check_rejects_relu_with_a_wrong_slope_on_the_negative_side():
    report = gradcheck.check(_relu_bad_slope, activations.relu, shapes=[()], domain=(-10.0, 10.0), max_examples=100)
    assert not report.ok
    assert any(f.kind == "gradient" and float(f.input[0]) < 0 for f in report.failures)


def test_check_rejects_elu_whose_derivative_is_wrong_only_left_of_the_kink():
    report = gradcheck.check(
        _elu_bad_left,
        lambda x: activations.elu(x, sp.Rational(1, 2)),
        shapes=[()],
        domain=(-10.0, 10.0),
        max_examples=100,
    )
    assert not report.ok
    assert all(float(f.input[0]) < 0 for f in report.failures if f.kind == "gradient")
