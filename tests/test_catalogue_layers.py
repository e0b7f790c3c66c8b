"""Layers and updates (seeds 001, 002): linear.*, mlp.*, relu.*, gd.*, backprop.* from both sides.

Every checker these claims use is fed a deliberately broken variant that it must reject: a
layer Jacobian missing the diag, an error product missing a Sigma', Jacobians multiplied in the
wrong order, a ReLU Jacobian without its masks, a leaky unit that is not dead, the threshold 1/
lambda for gradient descent, a layer derivative without its input.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from gradcheck import Derivation, Settings, models as nw
from gradcheck.symbolic import sigma
from proofs import backprop, gd, linear, mlp, relu

S = Settings.from_profile()
#: For broken variants: a wrong rule fails at most points, so a few dozen show it, and a failing
#: gradcheck.check spends its time shrinking; this keeps those tests to seconds.
FEW = Settings(max_examples=40, seed=0, profile=S.profile)


def _broken(d: Derivation, **objects) -> Derivation:
    return Derivation(d.statement, d.steps, {**d.objects, **objects})


def _first(findings):
    return next(iter(findings))


# --- linear.jacobian -------------------------------------------------------------------------
def test_linear_jacobian_checkers_reject_the_transpose():
    d = linear.jacobian.derivation(shape=(3, 3))
    assert _first(linear.jacobian.verify(d, S)).ok
    assert not _first(linear.jacobian.verify(_broken(d, J=d["A"].T), S)).ok
    findings = list(linear.jacobian.verify(d, FEW, fn=lambda A, x: A.T @ x))
    report_finding = findings[1]
    assert not report_finding.ok and "gradcheck.check" in report_finding.method


# --- mlp.layer_jacobian ----------------------------------------------------------------------
def test_layer_jacobian_without_the_diag_is_rejected_symbolically_and_by_gradcheck():
    d = mlp.layer_jacobian.derivation()
    assert _first(mlp.layer_jacobian.verify(d, S)).ok
    assert not _first(mlp.layer_jacobian.verify(_broken(d, textbook=d["W"]), S)).ok
    findings = list(mlp.layer_jacobian.verify(d, FEW, fn=lambda W, b, h: W))
    assert not findings[1].ok


def test_layer_jacobian_with_the_diag_on_the_wrong_side_is_rejected():
    d = mlp.layer_jacobian.derivation(shape=(2, 2))
    W, b, h = d["W"], d["b"], d["h"]
    diag = sp.diag(*[nw.dact(sigma, zi) for zi in W * h + b])
    assert mlp._same_matrix(d["jacobian"], diag * W)
    assert not _first(mlp.layer_jacobian.verify(_broken(d, textbook=W * diag), S)).ok


def test_layer_jacobian_closed_form_in_jax_equals_jacrev():
    rng = np.random.default_rng(0)
    W, b, h = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal(3)
    import gradcheck

    with gradcheck.float64():
        np.testing.assert_allclose(
            np.asarray(mlp.layer_jacobian_jax(W, b, h)), np.asarray(mlp.layer_jacobian_closed(W, b, h)), rtol=1e-14
        )


# --- mlp.delta -------------------------------------------------------------------------------
def test_delta_checker_rejects_a_product_missing_one_sigma_prime():
    d = mlp.delta.derivation()  # sizes (2, 3, 2, 2): three layers
    net = d["net"]
    W, z, a, y = net.s.W, net.z, net.a, net.s.y

    def Sigma(l):
        return sp.diag(*[nw.dact(sigma, zi) for zi in z[l - 1]])

    # the recursion delta^1 = Sigma'(z^1) (W^2)^T delta^2 holds ...
    assert mlp._same_matrix(Sigma(1) * W[1].T * d["textbook"][2], d["textbook"][1])
    # ... and a product that skips Sigma'(z^2) is rejected
    textbook = dict(d["textbook"])
    textbook[1] = Sigma(1) * W[1].T * W[2].T * Sigma(3) * (a[3] - y)
    assert not _first(mlp.delta.verify(_broken(d, textbook=textbook), S)).ok


def test_mlp_deltas_closed_rejects_a_wrong_activation_derivative():
    params, x, y = mlp._random_mlp_batch(0, (4, 5, 3), 1)
    one = [(W[0], b[0]) for W, b in params]
    import jax

    import gradcheck

    with gradcheck.float64():
        auto = [g[1] for g in jax.grad(nw.mlp_cost)(one, x[0], y[0])]
        good = nw.mlp_deltas_closed(one, x[0], y[0])
        bad = nw.mlp_deltas_closed(one, x[0], y[0], dactivation=jax.nn.sigmoid)
    assert mlp._max_err(auto[0], good[0]) < 1e-12
    assert mlp._max_err(auto[0], bad[0]) > 1e-3


# --- mlp.product_of_jacobians ----------------------------------------------------------------
def test_product_of_jacobians_in_the_wrong_order_is_rejected():
    d = mlp.product_of_jacobians.derivation(sizes=(2, 2, 2, 2), t=1)
    assert _first(mlp.product_of_jacobians.verify(d, S)).ok
    J2, J3 = (step.rhs for step in d.steps[1:3])  # the layer Jacobians, as derived
    assert mlp._same_matrix(J3 * J2, d["product"])
    assert not _first(mlp.product_of_jacobians.verify(_broken(d, product=J2 * J3), S)).ok


# --- relu.* ----------------------------------------------------------------------------------
def test_relu_jacobian_without_masks_is_rejected():
    d = relu.jacobian_product.derivation()
    pats = {k: (J, d["all_active"]) for k, (J, _) in d["patterns"].items()}  # ignore the activity
    assert not _first(relu.jacobian_product.verify(_broken(d, patterns=pats), S)).ok


def test_inactive_unit_zeroes_its_row_of_the_layer_jacobian():
    d = relu.jacobian_product.derivation()
    J, textbook = d["patterns"][(0, 1, 1, 1)]  # unit 0 of layer 1 inactive
    s = nw.mlp_symbols((2, 2, 2))
    layer1 = sp.diag(0, 1) * s.W[0]
    assert layer1[0, :] == sp.zeros(1, 2)
    assert mlp._same_matrix(J, s.W[1] * layer1)


def test_dead_unit_checker_rejects_a_leaky_unit():
    leaky = lambda e: sp.Max(e / 100, e)
    orig = relu._relu
    try:
        relu._relu = leaky
        d = relu.dead_unit.derive()
    finally:
        relu._relu = orig
    findings = list(relu.dead_unit.verify(d, S))
    assert not findings[1].ok  # the row of the 'dead' unit is not 0


def test_sparsity_figures_units_stay_at_one_half_paths_halve_per_layer():
    units, paths = relu.sparsity_rates(seed=5, nets=16)
    assert np.all(np.abs(units - 0.5) < 0.06)
    slope = np.polyfit(np.arange(1, len(paths) + 1), np.log2(paths), 1)[0]
    assert -1.15 < slope < -0.85


def test_sparsity_refutation_needs_a_false_statement():
    from hypothesis import strategies as st

    from gradcheck.catalogue import evidence

    # 'the unit rate stays above a quarter' is true: the same search finds no counterexample
    finding = evidence.search_counterexample(
        lambda t: relu.sparsity_rates(t["seed"])[0][t["N"]] < 0.25,
        st.fixed_dictionaries({"N": st.integers(1, relu.SPARSITY_DEPTH - 1), "seed": st.integers(0, 2**16)}),
        "unit rate below 1/4",
        S,
        max_examples=20,
    )
    assert not finding.ok and finding.verdict is None


# --- gd.step_size ----------------------------------------------------------------------------
def test_gd_checker_rejects_the_threshold_one_over_lambda():
    d = gd.step_size.derivation()
    findings = list(gd.step_size.verify(_broken(d, threshold=1 / gd.lam), S))
    numeric = findings[3]
    assert not numeric.ok and "disagrees" in numeric.what
    assert not list(gd.step_size.verify(_broken(d, converges=sp.Interval.open(0, 1)), S))[1].ok


def test_gd_counterexamples_lie_on_both_sides_of_one():
    findings = list(gd.step_size.verify(gd.step_size.derivation(), S))
    above, below = findings[-2].counterexample, findings[-1].counterexample
    lam_a, alpha_a = above["lambda"], above["alpha"]
    lam_b, alpha_b = below["lambda"], below["alpha"]
    assert alpha_a > 1 and alpha_a < 2 / lam_a  # alpha > 1, still converges
    assert alpha_b < 1 and alpha_b > 2 / lam_b  # alpha < 1, diverges


# --- backprop.update -------------------------------------------------------------------------
def test_backprop_checker_rejects_a_layer_derivative_without_its_input():
    d = backprop.update.derivation()
    broken = _broken(d, layer_tb=d["layer_tb"] / backprop.f1)
    assert not _first(backprop.update.verify(broken, S)).ok


@pytest.mark.parametrize("bad", ["nested", "first_order"])
def test_backprop_symbolic_checks_reject_tampered_results(bad):
    d = backprop.update.derivation()
    tampered = _broken(d, **{bad: d[bad] * 2})
    findings = list(backprop.update.verify(tampered, S))
    assert not all(f.ok for f in findings[:3])


# --- every claim of these topics renders ------------------------------------------------------
@pytest.mark.parametrize(
    "claim",
    [
        linear.jacobian,
        mlp.delta,
        mlp.layer_jacobian,
        mlp.product_of_jacobians,
        relu.jacobian_product,
        relu.dead_unit,
        relu.sparsity,
        gd.step_size,
        backprop.update,
    ],
    ids=lambda c: c.id,
)
def test_claim_renders_as_latex_with_steps_and_as_markdown(claim):
    assert "\\label{claim:" + claim.id in claim.latex()
    assert claim.latex(steps=True).count("\\intertext") == len(claim.derivation().steps)
    assert claim.id in claim.markdown()


# --- backprop.layer_speeds: the verdict is computed from the measurement ------------------


def _training_record(**final):
    """A measured record in the shape of gradcheck.experiments.train's."""
    rec = {
        "method": "mini-batch stochastic gradient descent",
        "seeds": 8,
        "epochs": 500,
        "network": [64, 30, 30, 30, 30, 10],
        "lr": 0.1,
        "batch": 10,
        "first_epoch_median_train_accuracy_above_half": 126,
        "gap_last_over_first": {"at_init": {"median": 117.0}, "plateau_geomean": 16.3, "after_learning_geomean": 0.3},
        "final": {
            "heldout_accuracy_median": 0.9,
            "weight_change": {"median": [4.0, 3.0, 3.1, 4.4, 10.6]},
            "weight_change_first_over_last": {"median": 0.38},
        },
    }
    rec["final"].update(final)
    return rec


def _layer_speed_finding(monkeypatch, record):
    import gradcheck.experiments

    monkeypatch.setattr(gradcheck.experiments, "train", lambda **kw: record)
    return _first(backprop.layer_speeds.verify(backprop.layer_speeds.derivation(), Settings()))


def test_layer_speeds_verdict_says_partly_true_with_the_numbers(monkeypatch):
    f = _layer_speed_finding(monkeypatch, _training_record())
    assert f.ok and f.verdict == "measured"
    assert f.what.startswith("The note's training statement is only partly true")
    assert "= 16.3$" in f.what and "4.00$ for $l = 1$ and 10.60 for $l = 5$" in f.what
    assert f.figure["parts"] == backprop.LAYER_SPEEDS_EXPECTED


def test_layer_speeds_claim_misses_when_the_measurement_changes(monkeypatch):
    # first-layer weights that stay near their initial values: the note would be right, and the
    # catalogue's record ("not near") is contradicted
    near = _training_record(
        weight_change={"median": [0.2, 0.5, 0.8, 1.0, 3.0]}, weight_change_first_over_last={"median": 0.07}
    )
    f = _layer_speed_finding(monkeypatch, near)
    assert not f.ok and f.figure["parts"]["first_layer_near_initial"]
    # a network that does not learn proves nothing, whatever its speeds
    f = _layer_speed_finding(monkeypatch, _training_record(heldout_accuracy_median=0.11))
    assert not f.ok
