"""Independent references, the whole float range, and a diagnosis for every failure.

Each behaviour is seen both ways: a special function's wrong derivative is caught against a
reference that uses the same special function (its float64 values come from SciPy, never from
JAX); an unknown SymPy function is refused early; a norm's underflow at subnormal inputs is a
range limit, not a wrong rule; a float32-only precision artefact is an accuracy note, a wrong
rule a wrong rule; ``strict=True`` turns notes and range limits into failures; the audit
re-judges agreeing points against the mpmath truth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from jax.scipy.special import gammaln

import gradcheck
from gradcheck.oracles import reference


@jax.custom_jvp
def gammaln_wrong(x):
    return gammaln(x)


@gammaln_wrong.defjvp
def _gammaln_jvp(p, t):
    (x,), (tx,) = p, t
    return gammaln(x), jax.scipy.special.digamma(x) * tx * 1.001  # 0.1% off


def test_a_wrong_special_function_derivative_fails_against_the_same_special_function():
    r = gradcheck.check(gammaln_wrong, sp.loggamma, shapes=[()], domain=(0.5, 30.0), max_examples=60)
    assert not r.ok and r.failures[0].kind == "gradient", str(r)
    ok = gradcheck.check(gammaln, sp.loggamma, shapes=[()], domain=(0.5, 30.0), max_examples=60)
    assert ok.ok, str(ok)
    assert "never JAX" in ok.truth


def test_a_reference_with_an_unknown_function_is_refused_before_any_work():
    mystery = sp.Function("mystery")
    with pytest.raises(ValueError, match="mystery"):
        gradcheck.check(jnp.sin, lambda x: mystery(x), shapes=[()], max_examples=5)


def test_special_functions_without_a_jax_printer_evaluate():
    # besseli, Ei and erfi crashed with NameError before; now they are SciPy/mpmath
    # (i0's JAX derivative at exactly 0 is 1 where the truth is 0: a real defect, kept out here)
    for ref, fn, dom in (
        (lambda x: sp.besseli(0, x), jax.scipy.special.i0, (0.5, 20.0)),
        (lambda x: sp.Ei(x), jax.scipy.special.expi, (0.1, 30.0)),
    ):
        r = gradcheck.check(fn, ref, shapes=[()], domain=dom, max_examples=40)
        assert r.ok, str(r)


def norm(x):
    return jnp.sqrt(jnp.sum(x**2))


def norm_ref(a):
    return sp.sqrt(sum(a.applyfunc(lambda v: v**2)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_norm_underflowing_at_tiny_inputs_is_a_range_limit_not_a_wrong_rule(dtype):
    r = gradcheck.check(norm, norm_ref, shapes=[(3,)], dtype=dtype, max_examples=60)
    assert r.ok, str(r)
    assert r.range_limits, str(r)
    lim = r.range_limits[0]
    assert lim.category == "range limit" and "range runs out" in lim.diagnosis
    if dtype == "float32":
        assert "float64 at the same input gives" in lim.diagnosis and "(right)" in lim.diagnosis
    strict = gradcheck.check(norm, norm_ref, shapes=[(3,)], dtype=dtype, max_examples=60, strict=True)
    assert not strict.ok and strict.failures[0].category == "range limit"


@jax.custom_jvp
def sin_nan_below_1e_300(x):
    return jnp.sin(x)


sin_nan_below_1e_300.defjvp(
    lambda p, t: (jnp.sin(p[0]), jnp.where((jnp.abs(p[0]) < 1e-300) & (p[0] != 0), jnp.nan, jnp.cos(p[0])) * t[0])
)


def test_a_defect_confined_to_subnormal_inputs_is_found():
    r = gradcheck.check(sin_nan_below_1e_300, sp.sin, shapes=[()], max_examples=60)
    found = r.failures + r.range_limits
    assert found and all(abs(float(f.input[0])) < 1e-300 for f in found), str(r)
    assert found[0].kind == "non-finite"


def shifted(x):
    # float32 keeps x to ~3e-5 (ulp(1000) / 2): float64 is exact; the barrier keeps XLA from
    # folding (x + c) - c into x
    return jax.lax.optimization_barrier(x + 1000.0) - 1000.0


@jax.custom_jvp
def sigmoid_missing_factor(x):
    return jax.nn.sigmoid(x)


sigmoid_missing_factor.defjvp(lambda p, t: (jax.nn.sigmoid(p[0]), jax.nn.sigmoid(p[0]) * t[0]))


def test_a_float32_precision_artefact_is_an_accuracy_note_and_a_wrong_rule_a_wrong_rule():
    r = gradcheck.check(shifted, lambda x: x, shapes=[()], domain=(-1.0, 1.0), dtype="float32", max_examples=60)
    assert r.ok and r.accuracy_notes, str(r)
    note = r.accuracy_notes[0]
    assert note.category == "precision" and "(right)" in note.diagnosis
    strict = gradcheck.check(
        shifted, lambda x: x, shapes=[()], domain=(-1.0, 1.0), dtype="float32", max_examples=60, strict=True
    )
    assert not strict.ok and strict.failures[0].category == "precision"
    wrong = gradcheck.check(
        sigmoid_missing_factor,
        lambda x: 1 / (1 + sp.exp(-x)),
        shapes=[()],
        domain=(-10.0, 10.0),
        dtype="float32",
        max_examples=60,
    )
    # a wrong rule, and fn's only custom rule is found wrong on its own: named as such
    assert not wrong.ok and wrong.failures[0].category == "custom rule", str(wrong)
    assert "fn is its custom rule sigmoid_missing_factor (custom_jvp) itself" in wrong.failures[0].diagnosis
    assert "also wrong" in wrong.failures[0].diagnosis


def test_the_eager_run_is_left_out_where_float64_already_shows_the_rule_wrong(monkeypatch):
    """Running the failing mode without jit (op by op, seconds at model size) can only tell
    jit-only artefacts apart: it runs for a float32 failure right in float64, not for a rule
    float64 shows wrong too."""
    eager = []
    disable_jit = jax.disable_jit

    def spy(*a, **k):
        eager.append(1)
        return disable_jit(*a, **k)

    monkeypatch.setattr(jax, "disable_jit", spy)
    kw = dict(shapes=[()], domain=(-1.0, 1.0), dtype="float32", max_examples=60)
    wrong = gradcheck.check(sigmoid_missing_factor, lambda x: 1 / (1 + sp.exp(-x)), **kw)
    assert not wrong.ok and "also wrong" in wrong.failures[0].diagnosis and not eager
    strict = gradcheck.check(shifted, lambda x: x, strict=True, **kw)
    assert not strict.ok and "(right)" in strict.failures[0].diagnosis and eager


def test_the_audit_catches_an_error_shared_by_fn_and_the_float64_truth(monkeypatch):
    # make the float64 truth share fn's wrong derivative: the bulk then agrees everywhere, and
    # only the audit (the mpmath truth at agreeing points) can see it
    original = reference.Reference.float64_program

    def shared(self):
        run = original(self)

        def patched(X):
            flat, at = run(X)
            flat = flat.copy()
            flat[:, 1] = flat[:, 1] * 1.001  # d sin / dx, as wrong as the rule below
            return flat, at

        return patched

    @jax.custom_jvp
    def sin_off(x):
        return jnp.sin(x)

    sin_off.defjvp(lambda p, t: (jnp.sin(p[0]), jnp.cos(p[0]) * t[0] * 1.001))
    monkeypatch.setattr(reference.Reference, "float64_program", shared)
    reference._CACHE.clear()
    r = gradcheck.check(sin_off, sp.sin, shapes=[()], domain=(-3.0, 3.0), max_examples=60)
    reference._CACHE.clear()
    assert r.audited_points == 8
    assert not r.ok and r.failures[0].kind == "gradient", str(r)
    assert np.isclose(r.failures[0].expected, np.cos(float(r.failures[0].input[0])))


def test_the_accuracy_table_gives_the_largest_error_in_ulps_per_quantity():
    r = gradcheck.check(
        jax.nn.softplus, lambda x: sp.log(1 + sp.exp(x)), shapes=[()], domain=(-50.0, 50.0), order=2, max_examples=100
    )
    assert r.ok, str(r)
    by = {a["quantity"]: a for a in r.accuracy}
    assert set(by) == {"out", "d out / d x", "d2 out / d x d x"}
    # softplus'' far in the tail returns 0 where the truth is ~1e-16: below atol, visible here
    assert by["d2 out / d x d x"]["max_ulps"] > 1e6 and by["d2 out / d x d x"]["got"] == 0.0
    assert by["out"]["max_ulps"] < 4
    assert "max ulps" in r.accuracy_table() and r.record()["accuracy"] == r.accuracy


def test_gradcheck_accuracy_command_prints_the_table(capsys):
    from gradcheck.cli import main

    assert main(["accuracy", "jax.nn.sigmoid", "1/(1 + exp(-x))", "--domain", "-20", "20", "--examples", "50"]) == 0
    out = capsys.readouterr().out
    assert "accuracy of sigmoid" in out and "d2 out / d x d x" in out and "verdict: ok" in out
    assert main(["accuracy", "jax.nn.sigmoid", "1/(1 + exp(-y))"]) == 2  # REF may use only x


def test_a_check_that_could_judge_few_points_says_so_in_its_first_line():
    # sqrt's reference is complex (undefined) on most of (-10, 1): fn's NaN there is right, and
    # the first line says how little was judged
    r = gradcheck.check(jnp.sqrt, sp.sqrt, shapes=[()], domain=(-10.0, 1.0), max_examples=60)
    first = str(r).splitlines()[0]
    assert r.ok and r.judged_fraction < 0.9 and "could be judged" in first, str(r)
    ok = gradcheck.check(jnp.sin, sp.sin, shapes=[()], max_examples=40)
    assert ok.judged_fraction > 0.9 and "could be judged" not in str(ok).splitlines()[0]


def test_a_mode_jax_cannot_compile_is_a_finding_not_a_crash():
    # jax.scipy.special.exp1's Hessian traces but raises a TypeError when XLA lowers it
    r = gradcheck.check(
        jax.scipy.special.exp1, lambda x: sp.expint(1, x), shapes=[()], domain=(0.1, 20.0), order=2, max_examples=30
    )
    assert not r.ok and {f.category for f in r.failures} == {"raised"}, str(r)
    assert all(f.kind == "second-derivative" and "TypeError" in f.message for f in r.failures)


def test_a_second_derivative_zero_by_cancellation_is_held_to_its_condition():
    # atan2's mixed derivative (x^2 - y^2) / (x^2 + y^2)^2 is 0 at x = y, from terms of size
    # 1 / x^2 = 1e12 at x = 1e-6: float64 leaves ~1e-4 there, which the third derivatives
    # (the condition of a second derivative) allow; the absolute floor alone made it a false alarm
    near_diagonal = [(1e-6, 1.001e-6), (1e-6, 1.001e-6)]
    r = gradcheck.check(
        jnp.arctan2, lambda y, x: sp.atan2(y, x), shapes=[(), ()], domain=near_diagonal, order=2, max_examples=40
    )
    assert r.ok, str(r)

    @jax.custom_jvp
    def atan2_off(y, x):
        return jnp.arctan2(y, x)

    # a rule whose second derivative is wrong by 1e-3 relative there is still caught
    atan2_off.defjvp(
        lambda p, t: (jnp.arctan2(*p), (p[1] * t[0] - p[0] * t[1]) / (p[0] ** 2 + p[1] ** 2) * (1 + 1e-3 * p[0] / p[1]))
    )
    wrong = gradcheck.check(
        atan2_off, lambda y, x: sp.atan2(y, x), shapes=[(), ()], domain=near_diagonal, order=2, max_examples=40
    )
    assert not wrong.ok, str(wrong)


def test_one_undefined_entry_does_not_void_its_point_and_skips_are_counted_per_reason():
    def ref(x, y):
        return sp.Matrix([x / y, x + y])

    r = gradcheck.check(
        lambda x, y: jnp.stack([x / y, x + y]), ref, shapes=[(), ()], domain=(-2.0, 2.0), max_examples=60
    )
    assert r.ok, str(r)
    # the points at y = 0 are judged on x + y; NaN that x / y carries into x + y's derivatives
    # there is said apart, not called a wrong rule
    assert r.partly_judged_points > 0 and r.undefined_points == 0, str(r)
    assert all(f.category == "undefined entry" for f in r.undefined_spill)
    # a rule wrong only in the defined entry is caught at those points too
    wrong = gradcheck.check(
        lambda x, y: jnp.stack([x / y, x + 1.001 * y]), ref, shapes=[(), ()], domain=(-2.0, 2.0), max_examples=60
    )
    assert not wrong.ok and wrong.failures[0].category == "wrong rule", str(wrong)
    # a wholly undefined point is counted, with its reason, in report.not_judged
    log = gradcheck.check(jnp.log, sp.log, shapes=[()], domain=(-2.0, 2.0), max_examples=60)
    assert log.ok and any("undefined" in why for why in log.not_judged), str(log)
    assert sum(log.not_judged.values()) == log.undefined_points > 0
    assert "not judged:" in str(log)


@jax.custom_jvp
def sin_nan_at_zero(x):
    return jnp.sin(x)


sin_nan_at_zero.defjvp(lambda p, t: (jnp.sin(p[0]), jnp.where(p[0] == 0, jnp.nan, jnp.cos(p[0])) * t[0]))


def test_a_nan_at_an_ordinary_input_is_a_wrong_rule_not_a_range_limit():
    # the range explains an overflow (inf) or trouble at the range's edge, not a NaN at x = 0
    # (betainc's Hessian at 0 was mislabelled so)
    r = gradcheck.check(sin_nan_at_zero, sp.sin, shapes=[()], domain=(-1.0, 1.0), max_examples=40)
    assert not r.ok and r.failures[0].category == "custom rule", str(r)
    assert "fn is its custom rule sin_nan_at_zero (custom_jvp) itself" in r.failures[0].diagnosis
    assert float(r.failures[0].input[0]) == 0.0


def test_a_custom_rule_is_named_only_where_the_jaxpr_holds_one():
    """Only one family of modes wrong is evidence of a custom rule only where fn has one: the
    diagnosis reads fn's jaxpr and names the rule's function."""

    @jax.custom_vjp
    def sigmoid_vjp(x):
        return jax.nn.sigmoid(x)

    sigmoid_vjp.defvjp(lambda x: (jax.nn.sigmoid(x), jax.nn.sigmoid(x)), lambda s, g: (g * s,))  # no (1 - s)

    def loss(w, x):  # the rule sits inside a model, beside a right one (relu's custom_jvp)
        return jnp.sum(jax.nn.relu(sigmoid_vjp(w * x) - 0.25))

    ref = lambda w, x: sum(sp.Max(1 / (1 + sp.exp(-wi * xi)) - sp.Rational(1, 4), 0) for wi, xi in zip(w, x))
    r = gradcheck.check(loss, ref, shapes=[(3,), (3,)], domain=(-2.0, 2.0), max_examples=30)
    assert not r.ok
    f = r.failures[0]
    assert f.category == "custom rule", str(r)
    assert "custom rule sigmoid_vjp (custom_vjp) is wrong on its own" in f.diagnosis, str(r)
    assert "custom rule relu (custom_jvp) is right on its own" in f.diagnosis, str(r)
    # x / y at y = 5e-324: jvp gives NaN (0 * dy / y^2 with y^2 underflowed), vjp gives inf, and
    # fn holds no custom rule: a range limit, never "custom rule"
    ref = lambda x, y: sp.Matrix([x / y, x + y])
    q = gradcheck.check(lambda x, y: jnp.stack([x / y, x + y]), ref, shapes=[(), ()], domain=(-2.0, 2.0))
    assert all(f.category != "custom rule" for f in (*q.failures, *q.range_limits)), str(q)


def test_the_numerical_paths_float64_fact_comes_from_the_programs_its_sweep_ran(monkeypatch):
    """reference=None: "is fn right in float64 at the failing input?" is read from fn's own
    float64 JVP and VJP, whose programs the sweep already ran, not from fn's whole program
    compiled again in float64 for one point (a second of compilation at 150k parameters)."""
    from gradcheck._check import _engine

    def compiled_again(*a, **k):
        raise AssertionError("fn's program compiled again in float64 for the diagnosis")

    monkeypatch.setattr(_engine, "program", compiled_again)
    kw = dict(shapes=[(3,)], domain=(-1.0, 1.0), dtype="float32", max_examples=30)
    wrong = gradcheck.check(lambda x: jnp.sum(sigmoid_missing_factor(x)), None, **kw)
    assert not wrong.ok and "float64 at the same input gives" in wrong.failures[0].diagnosis, str(wrong)
    assert "(also wrong)" in wrong.failures[0].diagnosis


def test_the_numerical_paths_float64_derivatives_are_fns_program_in_float64(monkeypatch):
    """The same numbers both ways: at the failing point, the sweep's float64 JVP per leaf and VJP
    (what the diagnosis reads on the numerical path) against fn's whole program compiled in
    float64 (what it read before, and still reads on the other paths)."""
    from gradcheck._check._engine import Engine
    from gradcheck._check._numeric import NumericEngine

    pairs = []
    own = NumericEngine.float64_at

    def both(self, mode, x, t, c, s):
        for m in ("jvp", "vjp"):
            pairs.append((m, own(self, m, x, t, c, s), Engine.float64_at(self, m, x, t, c, s)))
        return own(self, mode, x, t, c, s)

    monkeypatch.setattr(NumericEngine, "float64_at", both)
    fn = lambda p, x: jnp.sum(sigmoid_missing_factor(p["w"] @ x + p["b"]))
    r = gradcheck.check(fn, None, shapes=[{"w": (4, 3), "b": (4,)}, (3,)], dtype="float32", max_examples=20)
    assert not r.ok and pairs, str(r)
    for m, mine, whole in pairs:
        assert mine.shape == whole.shape and np.allclose(mine, whole, rtol=1e-12, atol=1e-14), m
