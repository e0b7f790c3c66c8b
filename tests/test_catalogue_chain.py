"""The one-neuron chain (seed 000): gradcheck.models and the chain.* claims.

Each checker the claims use is shown to reject a deliberately broken variant: a product that
drops one sigma' factor, a per-layer rule without sigma', a wrong window width, a wrong growth
rate, a bound attacked outside its hypothesis.  The registry test (test_registry.py) asserts
every claim's expected verdict; these tests look inside.
"""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import gradcheck
from gradcheck import Derivation, Settings, models as nw
from gradcheck.symbolic import sigma
from proofs import chain
from proofs.chain import _gradients, _window

S = Settings.from_profile()
#: For broken variants: a wrong rule fails at most points, so a few dozen show it, and a failing
#: gradcheck.check spends its time shrinking; this keeps those tests to seconds.
FEW = Settings(max_examples=40, seed=0, profile=S.profile)


def _broken(d: Derivation, **objects) -> Derivation:
    return Derivation(d.statement, d.steps, {**d.objects, **objects})


def _drop_sigma_prime(expr, z):
    """The product with the factor sigma'(z) removed (set to 1)."""
    return expr.xreplace({sp.Derivative(sigma(z), z): sp.S.One})


# --- the symbolic network -------------------------------------------------------------------
@pytest.mark.parametrize("L", range(1, 9))
def test_product_of_per_layer_factors_equals_expanded_sympy_diff_of_nested_network(L):
    g = nw.chain_backward(L)
    net = nw.nested_chain(L)
    for j in range(1, L + 1):
        assert g.nested(g.grad_b(j), net) == nw.expanded_grad(net, g.s.b[j - 1]), (L, j)
    assert g.nested(g.grad_w(1), net) == nw.expanded_grad(net, g.s.w[0])
    assert g.grad_b(1) == nw.chain_textbook(L, 1)


def test_dropping_one_sigma_prime_breaks_the_equality_with_expanded_diff():
    g, net = nw.chain_backward(4), nw.nested_chain(4)
    broken = _drop_sigma_prime(g.grad_b(1), g.s.z[2])
    assert broken != g.grad_b(1)
    assert g.nested(broken, net) != nw.expanded_grad(net, g.s.b[0])
    assert not _gradients._same(g.nested(broken, net), nw.expanded_grad(net, g.s.b[0]))


def test_per_layer_rule_is_derived_with_an_undefined_downstream_function():
    rule = nw.layer_rule()
    G = sp.Function("G")
    z = rule.z
    assert rule.d_db == sp.Derivative(sigma(z), z)
    assert rule.d_dprev == rule.w * sp.Derivative(sigma(z), z)
    assert rule.d_dw == rule.a_prev * sp.Derivative(sigma(z), z)
    assert rule.d_cost == rule.a - rule.y
    assert all(raw.has(G) for raw in rule.lemma)  # the raw derivatives carry G' ...
    assert not any(f.has(G) for f in (rule.d_db, rule.d_dw, rule.d_dprev))  # ... the factors do not


@pytest.mark.parametrize("L", [64, 1024])
def test_deep_chains_are_derived_as_products_without_swell(L):
    t0 = time.perf_counter()
    d = chain.grad_b1.derivation(L=L)
    seconds = time.perf_counter() - t0
    product = d["product"]
    assert len(sp.Mul.make_args(product)) == 2 * L  # sigma'(z_1), (w_k, sigma'(z_k)) for k = 2..L, a_L - y
    assert product == nw.chain_textbook(L, 1)
    assert len(d.steps) == L + 2  # the cost, one step per layer, the unrolled product
    assert seconds < 60, f"deriving depth {L} took {seconds:.1f} s"


def test_statement_at_depth_4_is_the_seed_product():
    d = chain.grad_b1.derivation()
    s = nw.chain_symbols(4)
    factors = sp.Mul.make_args(d.statement.rhs)
    assert nw.dC(s.a[4]) in factors
    for k in range(4):
        assert sp.Derivative(sigma(s.z[k]), s.z[k]) in factors
    for k in range(1, 4):
        assert s.w[k] in factors
    assert s.w[0] not in factors


def test_bad_depth_and_layer_are_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match="L .*positive integer"):
        nw.chain_symbols(0)
    with pytest.raises(ValueError, match="L .*positive integer"):
        nw.chain_backward(True)
    with pytest.raises(ValueError, match="j .*1..4"):
        nw.chain_backward(4).grad_b(5)
    with pytest.raises(ValueError, match="n .*positive integer"):
        nw.random_chain(0, 4, 0)


# --- the claims' checkers, from both sides -----------------------------------------------------
def test_product_checker_rejects_a_derivation_that_drops_one_sigma_prime():
    d = chain.grad_b1.derivation()
    assert all(f.ok for f in _gradients._verify_products(d, S))
    broken = _broken(d, product=_drop_sigma_prime(d["product"], nw.chain_symbols(4).z[2]))
    failed = [f.what for f in _gradients._verify_products(broken, S) if not f.ok]
    assert any("textbook" in w for w in failed) and any("sympy.diff" in w for w in failed), failed


def test_gradcheck_rejects_jax_grad_against_a_product_missing_one_sigma_prime():
    d = chain.grad_b1.derivation(L=2)
    z2 = nw.chain_symbols(2).z[1]
    report = _gradients._chain_check([(1, _drop_sigma_prime(d["product"], z2))], 2, FEW)
    assert not report.ok
    assert report.failures[0].kind in ("value", "gradient")


def _rule_without_sigma_prime():
    rule = nw.layer_rule()
    return nw.LayerRule(
        rule.a_prev,
        rule.w,
        rule.b,
        rule.z,
        rule.a,
        rule.y,
        rule.d_db,
        rule.d_dw,
        rule.w,
        rule.d_cost,
        rule.lemma,
        rule.g_prime,
    )


def test_log_space_checker_rejects_a_per_layer_rule_without_sigma_prime():
    good = chain.log_space_check(4, (1,), nw.layer_rule(), S)
    assert all(f.ok and f.verdict == "verified" for f in good)
    bad = chain.log_space_check(4, (1,), _rule_without_sigma_prime(), S)  # same shapes: compiled once
    assert not any(f.ok for f in bad)


def test_float32_autodiff_underflows_at_depth_64_where_log_space_stays_finite():
    params32 = nw.random_chain(0, 64, 64, dtype=np.float32)
    with gradcheck.float64():
        auto = np.asarray(_gradients._programs(nw.layer_rule())(*params32)[0])
        log64 = np.asarray(_gradients._programs(nw.layer_rule())(*[p.astype(np.float64) for p in params32])[1])
    assert np.all(auto[:, 0] == 0.0)  # dC/db_1 is exactly 0 in float32 (DESIGN.md's trap)
    assert np.all(np.isfinite(log64[:, 0])) and np.all(log64[:, 0] < np.log(np.finfo(np.float32).tiny))


def test_mpmath_truth_agrees_with_jax_grad_at_depth_4():
    a0, w, b, y = nw.random_chain(3, 4, 1)
    with gradcheck.float64():
        g = np.asarray(nw.chain_autodiff(a0[0], jnp.asarray(w[0]), jnp.asarray(b[0]), y[0])[1])
    logs, signs = nw.chain_truth(a0[0], w[0], b[0], y[0])
    np.testing.assert_allclose(signs * np.exp(logs), g, rtol=1e-13)


def test_term_bound_attack_finds_a_violation_once_abs_w_may_exceed_one():
    assert chain.term_bound_attack(S).ok
    bad = chain.term_bound_attack(S, w_max=1.5)
    assert not bad.ok and bad.counterexample is not None
    w, z = bad.counterexample
    assert abs(w) >= 1.0


def test_ratio_checker_rejects_a_textbook_ratio_missing_w3():
    d = chain.ratio_b1_b3.derivation()
    s = nw.chain_symbols(4)
    broken = _broken(d, textbook=d["textbook"] / s.w[2])
    first = next(iter(chain.ratio_b1_b3.verify(broken, S)))
    assert not first.ok


def test_exploding_checkers_reject_growth_25_to_the_L():
    d = chain.exploding.derivation()
    broken = _broken(d, general=d["general"] * 25)  # 25^L instead of 25^(L-1)
    findings = list(chain.exploding.verify(broken, S))
    assert [f.ok for f in findings] == [True, True, False, False]


def test_window_checkers_reject_a_width_with_one_over_abs_w():
    wrong = 1 / _window._U * sp.log(_window._U * (1 + sp.sqrt(1 - 4 / _window._U)) / 2 - 1)
    d = chain.window.derive(width=wrong)
    findings = list(chain.window.verify(d, S))
    failed = [f.what for f in findings if not f.ok]
    assert any("derived width" in w for w in failed)  # the symbolic identity
    assert any("bisection" in w for w in failed)  # the numerical width
    assert any("largest" in w for w in failed)  # the maximum


def test_window_maximum_is_0_4477_at_abs_w_6_894():
    findings = chain.window.run(S).findings
    fact = next(f for f in findings if f.record.get("w_max") is not None)
    assert fact.record["w_max"] == pytest.approx(0.447743, abs=1e-6)
    assert fact.record["w_argmax"] == pytest.approx(6.894151, abs=1e-5)
    numeric = next(f for f in findings if f.method == "bisection on the JAX function")
    assert numeric.record["numeric_argmax"] == pytest.approx(6.894151, abs=1e-3)
    assert numeric.record["max_width_error"] < 1e-9


def test_unstable_figure_is_about_one_decade_per_layer_and_rarely_balanced():
    fig = chain.measure_unstable(4, 2000, seed=1)
    assert 2.0 <= fig["median_spread_decades"] <= 4.0
    assert 0.8 <= fig["decades_per_layer"] <= 1.2
    assert fig["balanced_fraction"] < 0.01
    deeper = chain.measure_unstable(8, 2000, seed=1)
    assert deeper["median_spread_decades"] > fig["median_spread_decades"] + 2


@pytest.mark.parametrize(
    "claim",
    [chain.grad_b1, chain.grad_bj, chain.term_bound, chain.ratio_b1_b3, chain.exploding, chain.window, chain.unstable],
    ids=lambda c: c.id,
)
def test_claim_renders_as_latex_with_steps_and_as_markdown(claim):
    assert "\\label{claim:" + claim.id in claim.latex()
    assert claim.latex(steps=True).count("\\intertext") == len(claim.derivation().steps)
    assert claim.id in claim.markdown()


def test_grad_b1_renders_as_the_seed_writes_it():
    tex = chain.grad_b1.latex()
    assert (
        r"\frac{\partial C}{\partial b_{1}} = \sigma'(z_{1}) w_{2} \sigma'(z_{2}) w_{3} \sigma'(z_{3}) w_{4} "
        r"\sigma'(z_{4}) \frac{\partial C}{\partial a_{4}}"
    ) in tex
