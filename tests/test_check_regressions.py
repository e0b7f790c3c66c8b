"""Engine bugs found while testing the checker, each pinned by a test (from both sides)."""

import jax
import jax.numpy as jnp
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import gradcheck
from gradcheck.models.references import layer_norm_distributed_ref


def logistic(x):
    return 1 / (1 + sp.exp(-x))


def test_floor_has_a_derivative_of_zero_away_from_its_jumps():
    # SymPy leaves Derivative(floor(x), x) unevaluated; it is 0 away from the integers
    report = gradcheck.check(jnp.floor, sp.floor, shapes=[()], domain=(-5.0, 5.0), max_examples=100)
    assert report.ok, str(report)
    assert "kink" in report.kinks


def test_floor_with_a_wrong_value_between_jumps_fails():
    report = gradcheck.check(
        lambda x: jnp.floor(x) + (x > 2.5), sp.floor, shapes=[()], domain=(-5.0, 5.0), max_examples=100
    )
    assert {f.kind for f in report.failures} == {"value"}


def test_float32_domain_bounds_float32_cannot_represent_are_rounded_inward():
    report = gradcheck.check(jnp.sqrt, sp.sqrt, shapes=[()], domain=(1e-3, 1e6), dtype="float32", max_examples=100)
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
    report = gradcheck.check(
        sigmoid_wrong_sign_below_minus_25, logistic, shapes=[()], domain=(-28.0, 28.0), max_examples=200
    )
    assert {f.kind for f in report.failures} == {"gradient"}, str(report)
    assert all(float(f.input[0]) < -25 for f in report.failures)


def test_correct_sigmoid_passes_where_its_derivative_is_tiny():
    report = gradcheck.check(jax.nn.sigmoid, logistic, shapes=[()], domain=(-40.0, 40.0), max_examples=200)
    assert report.ok, str(report)


def test_float32_matmul_with_cancelling_terms_is_no_false_alarm():
    # terms of 5000 cancel to 0.01: float32 rounding of the terms is the size of the result
    report = gradcheck.check(
        lambda x, W: x @ W,
        lambda x, W: (x.T * W).T,
        shapes=[(3,), (3, 2)],
        domain=(-1e4, 1e4),
        dtype="float32",
        max_examples=500,
        seed=1,
    )
    assert report.ok, str(report)


def test_float32_matmul_with_a_wrong_entry_still_fails():
    report = gradcheck.check(
        lambda x, W: (x @ W) * jnp.array([1.0, 1.001], jnp.float32),
        lambda x, W: (x.T * W).T,
        shapes=[(3,), (3, 2)],
        domain=(-1e4, 1e4),
        dtype="float32",
        max_examples=200,
    )
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

    report = gradcheck.check(
        gelu_exact_with_tanh_derivative,
        lambda x: x / 2 * (1 + sp.erf(x / sp.sqrt(2))),
        shapes=[()],
        domain=(-10.0, 10.0),
        max_examples=100,
    )
    assert {f.kind for f in report.failures} == {"gradient"}, str(report)


def test_report_prints_the_absolute_error_where_the_truth_is_zero():
    report = gradcheck.check(lambda x: jnp.sin(x) + 1e-3, sp.sin, shapes=[()], domain=(-3.0, 3.0), max_examples=50)
    f = next(f for f in report.failures if f.kind == "value")
    assert f.expected == 0.0 or "relative" in str(f)
    zero = gradcheck.check(
        lambda x: x * 0 + 1e-3, lambda x: sp.S.Zero, shapes=[()], domain=(-3.0, 3.0), max_examples=20
    )
    assert "absolute (the truth is 0)" in str(zero)


def test_a_reference_that_itself_cancels_gets_the_digits_it_needs():
    # -log(1 - sigma(z)) at z = 500 needs over 200 digits; 50 would give log(0)
    report = gradcheck.check(
        jax.nn.softplus, lambda z: -sp.log(1 - 1 / (1 + sp.exp(-z))), shapes=[()], max_examples=200
    )
    assert report.ok, str(report)
    assert report.undefined_points == 0


def test_a_wrong_rule_is_still_caught_against_a_cancelling_reference():
    report = gradcheck.check(
        lambda z: jax.nn.softplus(z) * (1 + 1e-6 * (z > 100)),
        lambda z: -sp.log(1 - 1 / (1 + sp.exp(-z))),
        shapes=[()],
        max_examples=200,
    )
    assert {f.kind for f in report.failures} >= {"value"}
    assert all(float(f.input[0]) > 100 for f in report.failures)


def test_the_whole_float64_range_is_a_valid_domain():
    big = float(jnp.finfo(jnp.float64).max)
    report = gradcheck.check(lambda x: x * 0.5, lambda x: x / 2, shapes=[(2,)], domain=(-big, big), max_examples=50)
    assert report.ok, str(report)


@jax.custom_vjp
def product_wrong_in_both(x, y):
    return x * y


product_wrong_in_both.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (2 * g * r[1], 3 * g * r[0]))


def test_failures_in_two_arguments_are_each_named_by_their_own_argument():
    report = gradcheck.check(
        product_wrong_in_both, lambda x, y: x * y, shapes=[(), ()], domain=(-5.0, 5.0), max_examples=100
    )
    grads = [f for f in report.failures if f.kind == "gradient"]
    assert sorted(f.argument for f in grads) == [0, 1], str(report)
    assert {f.argument_name for f in grads} == {"x", "y"}


@jax.custom_jvp
def sigmoid_10_percent_off_above_2(x):
    return jax.nn.sigmoid(x)


@sigmoid_10_percent_off_above_2.defjvp
def _(primals, tangents):
    (x,), (t,) = primals, tangents
    s = jax.nn.sigmoid(x)
    return s, jnp.where(x > 2.0, 1.1, 1.0) * s * (1 - s) * t


def test_a_failure_is_reported_after_the_sweeps_referee_budget_is_spent():
    # 5000 points: more disagreements than the 256 the sweep referees with mpmath; the
    # single-point re-check of a failure must not depend on that spent budget
    report = gradcheck.check(
        sigmoid_10_percent_off_above_2, logistic, shapes=[()], domain=(-20.0, 20.0), max_examples=5000
    )
    assert report.unrefereed_points > 0
    assert {f.kind for f in report.failures} == {"gradient"}, str(report)
    assert all(float(f.input[0]) > 2 for f in report.failures)


@jax.custom_jvp
def cosh_off_by_a_thousandth_above_20(x):
    return jnp.cosh(x)


@cosh_off_by_a_thousandth_above_20.defjvp
def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.cosh(x), jnp.where(x > 20, 1.001, 1.0) * jnp.sinh(x) * t


def test_condition_of_a_derivative_widens_its_tolerance_by_eps_not_by_rtol():
    # cosh'' x / cosh' is about x = 50 here: a tolerance of rtol * 50 |truth| (1%) would hide
    # this 0.1% error in float32; 16 eps * 50 does not
    report = gradcheck.check(
        cosh_off_by_a_thousandth_above_20, sp.cosh, shapes=[()], domain=(-60.0, 60.0), dtype="float32", max_examples=200
    )
    assert {f.kind for f in report.failures} == {"gradient"}, str(report)


@settings(max_examples=3, deadline=None)
@given(st.floats(0.5, 2.0))
def test_check_inside_a_users_own_hypothesis_test_works_and_says_how(scale):
    # Hypothesis refuses a nested @given; check sweeps more points instead and says so
    report = gradcheck.check(
        lambda x: jnp.sin(x) * scale, lambda x: sp.sin(x) * scale, shapes=[()], domain=(-3.0, 3.0), max_examples=20
    )
    assert report.ok, str(report)
    assert any("inside a Hypothesis test" in n for n in report.notes)


@settings(max_examples=2, deadline=None)
@given(st.just(None))
def test_check_inside_a_users_hypothesis_test_still_catches_a_wrong_rule(_):
    report = gradcheck.check(
        sigmoid_10_percent_off_above_2, logistic, shapes=[()], domain=(-20.0, 20.0), max_examples=100
    )
    assert {f.kind for f in report.failures} == {"gradient"}


def test_a_wrong_sign_where_the_truth_overflows_the_dtype_fails_and_overflow_itself_passes():
    # cosh(800) = 1e347 is beyond float64: inf is the right answer, -inf is not
    assert gradcheck.check(jnp.cosh, sp.cosh, shapes=[()], domain=(700.0, 900.0), max_examples=50).ok
    report = gradcheck.check(
        lambda x: -jnp.cosh(x) * jnp.where(x > 750, 1.0, -1.0),
        sp.cosh,
        shapes=[()],
        domain=(700.0, 900.0),
        max_examples=50,
    )
    assert not report.ok
    assert all(float(f.input[0]) > 709 for f in report.failures), str(report)


_REPLAY = """
import json, jax, jax.numpy as jnp, sympy as sp, gradcheck

@jax.custom_jvp
def maximum(x, y):
    return jnp.maximum(x, y)

@maximum.defjvp
def _(p, t):
    (x, y), (dx, dy) = p, t
    return jnp.maximum(x, y), jnp.where(x > y, dx, 1.01 * dy)

r = gradcheck.check(maximum, sp.Max, shapes=[(), ()], domain=(-5.0, 5.0), max_examples=60, hypothesis_examples=0)
print(json.dumps([(f["kind"], f["input"], f["points"]) for f in r.record()["failures"]]))
"""


def test_a_seed_replays_the_same_failures_in_another_process_whatever_the_hash_seed():
    # the kink sampler once followed set order, which depends on PYTHONHASHSEED
    import os
    import subprocess
    import sys

    outs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", _REPLAY], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        outs.append(out.stdout.strip().splitlines()[-1])
    assert outs[0] == outs[1] and outs[0] != "[]"


def test_a_reference_is_evaluated_in_the_form_it_was_written():
    # SymPy turns erfc(-x / sqrt(2)) into 2 - erfc(x / sqrt(2)) when it is built: at x = -100
    # that difference is 2 - (2 - 1e-2173), which no affordable precision resolves, and the truth
    # of log_ndtr became -inf; evaluated as written it is -5005.5
    from jax.scipy.special import log_ndtr

    def ref(x):
        return sp.log(sp.erfc(-x / sp.sqrt(2)) / 2)

    # (every point goes to the mpmath referee: erfc(70) underflows float64, so keep it small)
    report = gradcheck.check(log_ndtr, ref, shapes=[()], domain=(-100.0, -30.0), max_examples=20)
    assert report.ok, str(report)
    wrong = gradcheck.check(
        lambda x: log_ndtr(x) * (1 + 1e-6 * (x < -50)), ref, shapes=[()], domain=(-100.0, -30.0), max_examples=20
    )
    assert not wrong.ok and all(float(f.input[0]) < -50 for f in wrong.failures), str(wrong)


def _layer_norm(x):
    m = jnp.mean(x)
    return (x - m) / jnp.sqrt(jnp.mean((x - m) ** 2) + 1e-5)


def test_the_referee_evaluates_the_references_rational_constants_exactly():
    # At equal inputs x0 - mean(x) is exactly 0 and so is every second derivative.  The mpmath
    # referee took 5/6 as its float64 rounding: another function, whose second derivative there
    # is 7e-10 at every precision, so JAX's right 0 was "confirmed" wrong (fwd-over-fwd, hvp).
    kw = dict(shapes=[(6,)], domain=(-10.0, 10.0), order=2, max_examples=100, path="probes")
    report = gradcheck.check(_layer_norm, layer_norm_distributed_ref, **kw)
    assert report.ok, report

    # and a second derivative that is wrong is still caught on that path
    @jax.custom_jvp
    def wrong(x):
        return _layer_norm(x)

    @wrong.defjvp
    def _rule(primals, tangents):
        (x,), (t,) = primals, tangents
        y, dy = jax.jvp(_layer_norm, (x,), (t,))
        return y, dy * (1 + 1e-3 * jnp.tanh(x[0]))

    assert not gradcheck.check(wrong, layer_norm_distributed_ref, **kw).ok


def test_the_path_is_chosen_by_what_the_expansion_costs_and_the_report_says_why():
    from gradcheck.models.references import layer_norm_ref, logsumexp_ref

    kw = dict(domain=(-3.0, 3.0), order=2, max_examples=60)
    # 512 second-derivative entries whose trees swell to hundreds of operations each
    wide = gradcheck.check(_layer_norm, layer_norm_ref, shapes=[(8,)], **kw)
    assert wide.ok and wide.path == "probes", wide
    assert "SymPy operations" in wide.truth and "longer than the sweep" in wide.truth
    # the same count of entries, cheap ones: expanded
    cheap = gradcheck.check(jax.nn.logsumexp, logsumexp_ref, shapes=[(16,)], **kw)
    assert cheap.ok and cheap.path == "entries", cheap
    # a narrow layer norm is cheap too
    assert gradcheck.check(_layer_norm, layer_norm_ref, shapes=[(4,)], **kw).path == "entries"


def test_an_unhashable_callable_is_checked_without_a_reference():
    import dataclasses

    @dataclasses.dataclass
    class Scaled:  # eq=True makes a dataclass unhashable: the engine's caches must not need a hash
        a: float

        def __call__(self, x):
            return jnp.sin(self.a * x)

    report = gradcheck.check(Scaled(2.0), None, shapes=[(3,)], domain=(-2.0, 2.0), max_examples=30)
    assert report.ok, report


def test_the_shrinkers_measure_of_a_model_size_point_is_the_per_entry_one():
    # vectorised past 32 entries (a loop over 38,410 parameters took 0.3 s per call, hundreds of
    # calls per failing check); the same measure, up to a digit where an entry needs all 15
    import numpy as np

    from gradcheck._check._order import complexity

    rng = np.random.default_rng(3)
    x = rng.choice([-1.0, 1.0], 4000) * rng.uniform(1, 10, 4000) * 10.0 ** rng.integers(-3, 6, 4000)
    x = np.where(rng.random(4000) < 0.3, np.round(x, 2), x)
    x[::7] = 0.0
    per_entry = sum(complexity(x[i : i + 32]) for i in range(0, x.size, 32))
    assert complexity(x) == pytest.approx(per_entry, rel=1e-3)
    assert complexity(np.round(x, 1)) < complexity(x)  # fewer digits: simpler


@jax.custom_jvp
def _inv_off_by_1e3(x):
    return 1.0 / x


@_inv_off_by_1e3.defjvp
def _inv_off_by_1e3_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return 1.0 / x, -(1.0 + 1e-3) * t / (x * x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_pole_closer_than_every_difference_step_is_not_judged_and_a_wrong_rule_beside_it_fails(dtype):
    # log|x| at x = 1e-12: central differences with steps >> |x| straddle the pole and settle
    # to about 0, where the derivative is 1e12; the one-sided tableaux do not settle there
    for fn in (lambda x: jnp.log(jnp.abs(x)), lambda x: 1.0 / x):
        report = gradcheck.check(fn, None, shapes=[(3,)], domain=(-2.0, 2.0), dtype=dtype, max_examples=100)
        assert report.ok, report
    wrong = gradcheck.check(_inv_off_by_1e3, None, shapes=[(3,)], domain=(-2.0, 2.0), dtype=dtype, max_examples=100)
    assert not wrong.ok and wrong.failures[0].category == "custom rule"
