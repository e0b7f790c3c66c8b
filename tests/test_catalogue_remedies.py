"""Remedies (proofs/remedies.py): measured figures in range, and broken variants rejected."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck
import proofs
from gradcheck.catalogue import evidence
from proofs import remedies
from proofs.remedies import _clipping

SETTINGS = gradcheck.Settings(max_examples=100)


# --- clipping ----------------------------------------------------------------------------------
def _coordinate_clip(g):
    return jnp.clip(g, -1.0, 1.0)  # clips each entry: bounded, but the direction changes


def _naive_clip(g):
    return g * jnp.minimum(1.0, 1.0 / jnp.linalg.norm(g))  # ||g|| overflows for entries above 1e154


def test_clipping_attack_rejects_coordinate_clipping_that_changes_direction():
    with gradcheck.float64():
        found = evidence.attack(
            remedies.clip_violation(_coordinate_clip),
            hnp.arrays(np.float64, (3,), elements=st.floats(-10, 10)),
            "clipping",
            SETTINGS,
        )
    assert not found.ok  # found (1, 1, 1): every entry within 1, the norm sqrt(3)
    with gradcheck.float64():
        scaled = np.array([0.3, 0.1, 0.0])  # norm below 1 after scaling both: only the direction is tested
        assert remedies.clip_violation(lambda g: _coordinate_clip(g) / 4)(np.array([3.0, 1.0, 0.0]))
        assert not remedies.clip_violation(lambda g: g / 4)(scaled * 10)


def test_clipping_attack_rejects_a_naive_norm_that_overflows():
    with gradcheck.float64():
        violates = remedies.clip_violation(_naive_clip)
        assert violates(np.array([1e200, 1e200, 0.0]))  # clipped to the zero vector
        assert not remedies.clip_violation(remedies.clip_by_norm)(np.array([1e200, 1e200, 0.0]))


def test_identity_rejects_the_direction_of_coordinate_clipping():
    g = sp.Matrix([3, 1, 0])
    clipped = g.applyfunc(lambda e: sp.Min(e, 1))
    cosine = (clipped.T * g)[0] / (_clipping._norm(clipped) * _clipping._norm(g))
    assert not evidence.identity(cosine, 1, "cosine 1").ok


def test_check_rejects_naive_clipping_at_huge_entries():
    report = gradcheck.check(
        _naive_clip, lambda v: remedies.clip_sym(v, 1), shapes=[(3,)], domain=(-1e300, 1e300), max_examples=100
    )
    assert not report.ok


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_clip_by_norm_keeps_direction_at_the_extremes_and_has_no_nan_gradient_at_zero(dtype):
    big = float(np.finfo(dtype).max)
    ctx = gradcheck.float64() if dtype == "float64" else jax.enable_x64(False)
    with ctx:
        out = np.asarray(remedies.clip_by_norm(jnp.asarray([big, -big, big], dtype=dtype)))
        J0 = np.asarray(jax.jit(jax.jacrev(remedies.clip_by_norm))(jnp.zeros(3, dtype=dtype)))
        small = np.asarray(remedies.clip_by_norm(jnp.asarray([0.1, -0.2, 0.0], dtype=dtype)))
    np.testing.assert_allclose(out, np.array([1, -1, 1]) / np.sqrt(3), rtol=1e-6)
    np.testing.assert_array_equal(J0, np.eye(3))
    np.testing.assert_allclose(small, [0.1, -0.2, 0.0], rtol=1e-7)


# --- L2 --------------------------------------------------------------------------------------------
def test_identity_rejects_an_l2_gradient_missing_the_factor_two():
    d = remedies.l2.derivation()
    W, x, alpha = d["W"], d["x"], d["alpha"]
    assert not evidence.identity(d["grad"], -2 * x * d["resid"] + alpha * W, "alpha W").ok


@jax.custom_vjp
def _l2_half_decay(W, x, y, alpha):
    return remedies.l2_loss(W, x, y, alpha)


def _l2_fwd(W, x, y, alpha):
    return _l2_half_decay(W, x, y, alpha), (W, x, y, alpha)


def _l2_bwd(res, g):
    W, x, y, alpha = res
    r = y - jnp.dot(W, x)
    return (g * (-2 * x * r + alpha * W), g * (-2 * W * r), g * 2 * r, g * jnp.sum(W**2))  # alpha W: factor 2 lost


_l2_half_decay.defvjp(_l2_fwd, _l2_bwd)


def test_check_rejects_an_l2_rule_without_the_factor_two():
    report = gradcheck.check(
        _l2_half_decay,
        _clipping._l2_reference,
        shapes=[(3,), (3,), (), ()],
        domain=[(-10.0, 10.0), (-10.0, 10.0), (-10.0, 10.0), (0.1, 10.0)],
        max_examples=100,
    )
    assert not report.ok and {f.kind for f in report.failures} == {"gradient"}


# --- residual ---------------------------------------------------------------------------------------
def test_identity_rejects_a_residual_jacobian_without_the_identity():
    d = remedies.residual.derivation()
    assert not evidence.identity(d["J_res"], d["J_F"], "dF/dx alone").ok


def test_residual_jacobian_does_not_vanish_where_the_plain_one_does():
    f = remedies.residual_contrast(depth=30, width=16, nets=16)
    assert f["plain"]["log10 largest singular value"] < -12  # about 10^-18.7: (1/4)^30 and less
    assert -1 < f["residual"]["log10 largest singular value"] < 2
    assert f["residual"]["log10 smallest singular value"] > -1


# --- batch norm --------------------------------------------------------------------------------
def test_identity_rejects_scale_invariance_of_batch_norm_with_epsilon():
    # one weight and a concrete batch keep the (slow, failing) simplification small
    w, X = sp.Matrix([sp.Symbol("w_0", real=True)]), sp.Matrix([[0], [2], [-1]])
    eps = sp.Symbol("epsilon", positive=True)

    def bn_eps(w):
        u = X * w
        mu = sum(u) / 3
        var = sum((ui - mu) ** 2 for ui in u) / 3
        return (u - sp.ones(3, 1) * mu) / sp.sqrt(var + eps)

    assert evidence.identity(remedies.bn_sym(w * remedies.c, X), remedies.bn_sym(w, X), "without epsilon").ok
    assert not evidence.identity(bn_eps(w * remedies.c), bn_eps(w), "with epsilon").ok


def test_batchnorm_attack_rejects_batch_norm_with_a_large_epsilon():
    def bn_eps(w, A):
        return remedies.batch_norm(w, jnp.asarray(remedies.OFFSETS) + A, eps=1e-2)

    strat = st.tuples(
        hnp.arrays(np.float64, (2,), elements=st.floats(-1, 1)),
        hnp.arrays(np.float64, (3, 2), elements=st.floats(-1, 1)),
        st.floats(1e-3, 1e3),
    )
    with gradcheck.float64():
        found = evidence.attack(remedies.bn_violation(bn_eps), strat, "scale invariance", SETTINGS)
    assert not found.ok


def test_batch_norm_of_a_tiny_batch_is_finite():
    with gradcheck.float64():
        out = np.asarray(remedies.batch_norm(jnp.array([1.0, 0.0]), jnp.array([[1e-200, 0.0], [0.0, 0.0], [0.0, 0.0]])))
    np.testing.assert_allclose(out, [np.sqrt(2), -1 / np.sqrt(2), -1 / np.sqrt(2)])


# --- initialisation ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def init_figures():
    return {
        name: remedies.gradient_variances(vf, act, width=64, depth=16, nets=8)
        for name, (vf, act) in remedies.INIT_SCHEMES.items()
    }


def test_he_init_keeps_relu_gradient_variance_and_plain_init_halves_it(init_figures):
    assert init_figures["He, ReLU"]["ratio"] == pytest.approx(1.0, abs=0.1)
    assert init_figures["N(0,1)/sqrt(n), ReLU"]["ratio"] == pytest.approx(0.5, abs=0.05)
    assert 0.75 < init_figures["Glorot, tanh"]["ratio"] < 1.0


def test_weight_gradients_of_plain_init_are_level_across_layers_but_shrink_overall(init_figures):
    # Var[dL/dW_l] = Var[dL/dh_l] E[h_{l-1}^2]: with 1/n weights and ReLU the forward factor
    # halves going up and the backward one halves going down, so they balance
    assert init_figures["N(0,1)/sqrt(n), ReLU"]["weight_gradient_ratio"] == pytest.approx(1.0, abs=0.1)


def test_init_measurement_rejects_unscaled_weights():
    f = remedies.gradient_variances(lambda n_in, n_out: 4.0 / n_in, jax.nn.relu, width=64, depth=16, nets=8)
    assert f["ratio"] == pytest.approx(2.0, rel=0.15)  # 4/n weights double the variance per layer


def test_pretraining_and_capsules_are_named_out_of_scope():
    assert {"pretraining", "capsules"} <= set(proofs.OUT_OF_SCOPE)
    doc = remedies.__doc__.lower()
    assert "pre-training" in doc and "capsule" in doc and "out of scope" in doc
